//! Raw archive: every fetched telegram, byte for byte, with its URL, fetch time and SHA-256, written **before**
//! it is parsed — a parser bug never loses a document, and every decision can be traced to the bytes behind it.
//!
//! Row life cycle (`jma_archive.status`): `stored` (written, not processed; resumed at start) →
//! `applied` | `duplicate` | `ignored` (processed) or `parse_failed` (kept, reported to operators) or
//! `unparsed` (no parser wired; processed once one is).

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveStatus {
    Stored,
    Applied,
    Duplicate,
    Ignored,
    ParseFailed,
    Unparsed,
}

impl ArchiveStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveStatus::Stored => "stored",
            ArchiveStatus::Applied => "applied",
            ArchiveStatus::Duplicate => "duplicate",
            ArchiveStatus::Ignored => "ignored",
            ArchiveStatus::ParseFailed => "parse_failed",
            ArchiveStatus::Unparsed => "unparsed",
        }
    }
}

/// One archived telegram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archived {
    pub id: i64,
    pub url: String,
    pub fetched_at: String,
    pub sha256: String,
    pub data_type: Option<String>,
    pub body: Vec<u8>,
    pub status: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Stores a telegram; returns its archive id. A URL already archived keeps its first copy (and id): the
/// archive is append-only.
pub fn insert(
    tx: &Transaction<'_>,
    url: &str,
    fetched_at: DateTime<Utc>,
    body: &[u8],
    data_type: Option<&str>,
) -> anyhow::Result<i64> {
    let n = tx.execute(
        "INSERT OR IGNORE INTO jma_archive (url, fetched_at, sha256, size, body, data_type, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'stored')",
        params![
            url,
            fetched_at.to_rfc3339(),
            sha256_hex(body),
            body.len() as i64,
            body,
            data_type
        ],
    )?;
    if n == 1 {
        return Ok(tx.last_insert_rowid());
    }
    tx.query_row("SELECT id FROM jma_archive WHERE url = ?1", [url], |r| {
        r.get(0)
    })
    .context("finding the archived copy")
}

pub fn set_status(
    tx: &Transaction<'_>,
    id: i64,
    status: ArchiveStatus,
    detail: Option<&str>,
) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE jma_archive SET status = ?2, detail = ?3 WHERE id = ?1",
        params![id, status.as_str(), detail],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: i64) -> anyhow::Result<Option<Archived>> {
    Ok(conn
        .query_row(
            "SELECT id, url, fetched_at, sha256, data_type, body, status FROM jma_archive WHERE id = ?1",
            [id],
            |r| {
                Ok(Archived {
                    id: r.get(0)?,
                    url: r.get(1)?,
                    fetched_at: r.get(2)?,
                    sha256: r.get(3)?,
                    data_type: r.get(4)?,
                    body: r.get(5)?,
                    status: r.get(6)?,
                })
            },
        )
        .optional()?)
}

/// Ids with one of `statuses`, oldest first.
pub fn ids_with_status(conn: &Connection, statuses: &[ArchiveStatus]) -> anyhow::Result<Vec<i64>> {
    let list: Vec<String> = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let sql = format!(
        "SELECT id FROM jma_archive WHERE status IN ({}) ORDER BY id",
        list.join(",")
    );
    let mut stmt = conn.prepare(&sql)?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(ids)
}

/// Every archive id, oldest first (for replay).
pub fn all_ids(conn: &Connection) -> anyhow::Result<Vec<i64>> {
    let mut stmt = conn.prepare("SELECT id FROM jma_archive ORDER BY id")?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_telegram_is_stored_byte_for_byte_with_its_hash_and_a_url_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/jma/samples/official/15_17_01_251222_VPWW55.xml"
        ))
        .unwrap();
        let now = Utc::now();
        let (a, b) = store
            .write_blocking(|tx| {
                let a = insert(tx, "http://x/a_VPWW55.xml", now, &body, Some("VPWW55"))?;
                let b = insert(tx, "http://x/a_VPWW55.xml", now, b"other", Some("VPWW55"))?;
                Ok((a, b))
            })
            .unwrap();
        assert_eq!(a, b);
        let got = store.read_blocking(|c| get(c, a)).unwrap().unwrap();
        assert_eq!(got.body, body);
        assert_eq!(got.sha256, sha256_hex(&body));
        assert_eq!(got.sha256.len(), 64);
        assert_eq!(got.status, "stored");
        assert_eq!(
            store
                .read_blocking(|c| ids_with_status(c, &[ArchiveStatus::Stored]))
                .unwrap(),
            vec![a]
        );
    }
}
