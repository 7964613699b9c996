//! Tamper evidence for `audit_log`: a SHA-256 hash chain kept in `audit_seal`.
//!
//! [`seal`] links every audit row not yet sealed (a background task runs it every [`SEAL_INTERVAL_SECS`]
//! seconds, and the audit page runs it before verifying), [`verify`] walks the chain. An edited, deleted or
//! re-ordered sealed row breaks it from that row on. Whoever can write the database can also rewrite the whole
//! chain, so `/api/status` publishes the head (`audit_head`): a monitor that records it elsewhere notices a
//! rewritten history. Rows written in the last few seconds are not yet sealed.

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How often the background task seals new audit rows.
pub const SEAL_INTERVAL_SECS: u64 = 5;

fn link(prev: &str, id: i64, at: &str, actor: &str, action: &str, detail: &str) -> String {
    let mut h = Sha256::new();
    for part in [prev, &id.to_string(), at, actor, action, detail] {
        // Length-prefixed, so no two different rows hash the same input.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

type AuditFields = (i64, String, String, String, String);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditFields> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

/// Seals every audit row after the last sealed one; returns how many were sealed.
pub fn seal(tx: &Transaction<'_>) -> anyhow::Result<usize> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT audit_id, hash FROM audit_seal ORDER BY audit_id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (after, mut prev) = last.unwrap_or((0, String::new()));
    let mut st = tx
        .prepare("SELECT id, at, actor, action, detail FROM audit_log WHERE id > ?1 ORDER BY id")?;
    let rows = st.query_map([after], row)?.collect::<Result<Vec<_>, _>>()?;
    let mut ins = tx.prepare("INSERT INTO audit_seal (audit_id, hash) VALUES (?1, ?2)")?;
    for (id, at, actor, action, detail) in &rows {
        prev = link(&prev, *id, at, actor, action, detail);
        ins.execute(rusqlite::params![id, prev])?;
    }
    Ok(rows.len())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Sealed rows checked.
    pub sealed: i64,
    /// The first audit id whose row is missing or differs from what was sealed.
    pub first_break: Option<i64>,
    /// Hash of the last link (empty when nothing is sealed).
    pub head: String,
}

/// Walks the whole chain.
pub fn verify(conn: &Connection) -> anyhow::Result<Verification> {
    let mut st = conn.prepare(
        "SELECT s.audit_id, s.hash, a.at, a.actor, a.action, a.detail
         FROM audit_seal s LEFT JOIN audit_log a ON a.id = s.audit_id ORDER BY s.audit_id",
    )?;
    let mut rows = st.query([])?;
    let mut prev = String::new();
    let mut sealed = 0;
    let mut first_break = None;
    while let Some(r) = rows.next()? {
        sealed += 1;
        let id: i64 = r.get(0)?;
        let stored: String = r.get(1)?;
        let fields: Option<(String, String, String, String)> =
            match r.get::<_, Option<String>>(2)? {
                Some(at) => Some((at, r.get(3)?, r.get(4)?, r.get(5)?)),
                None => None,
            };
        let ok = match &fields {
            Some((at, actor, action, detail)) => {
                link(&prev, id, at, actor, action, detail) == stored
            }
            None => false,
        };
        if !ok && first_break.is_none() {
            first_break = Some(id);
        }
        prev = stored;
    }
    // A row deleted from the middle leaves its seal behind (caught above); rows inserted below the sealed
    // head without a seal are caught here.
    if first_break.is_none() {
        let unsealed_inside: Option<i64> = conn
            .query_row(
                "SELECT min(a.id) FROM audit_log a LEFT JOIN audit_seal s ON s.audit_id = a.id
                 WHERE s.audit_id IS NULL AND a.id < (SELECT coalesce(max(audit_id), 0) FROM audit_seal)",
                [],
                |r| r.get(0),
            )?;
        first_break = unsealed_inside;
    }
    Ok(Verification {
        sealed,
        first_break,
        head: prev,
    })
}

/// The chain head without walking it (for `/api/status`).
pub fn head(conn: &Connection) -> anyhow::Result<Option<(i64, String)>> {
    Ok(conn
        .query_row(
            "SELECT audit_id, hash FROM audit_seal ORDER BY audit_id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// The scheduled job that seals new audit rows every [`SEAL_INTERVAL_SECS`]. The daemon seals once more after
/// its tasks have drained (`app`), so a clean stop leaves nothing unsealed.
pub fn job(store: crate::store::Store) -> crate::scheduler::Job {
    crate::scheduler::Job::every(
        "console.seal_audit",
        std::time::Duration::from_secs(SEAL_INTERVAL_SECS),
        move || {
            let store = store.clone();
            async move { store.write(seal).await.map(|_| ()) }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store_with_rows(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        s.write_blocking(|tx| {
            for i in 0..n {
                Store::audit(tx, "tanaka", "test.action", &serde_json::json!({ "i": i }))?;
            }
            Ok(())
        })
        .unwrap();
        (dir, s)
    }

    fn tamper(s: &Store, sql: &str) {
        // Straight to the file, as someone with database access would.
        let c = rusqlite::Connection::open(s.path()).unwrap();
        c.execute_batch(sql).unwrap();
    }

    #[test]
    fn an_untouched_log_verifies_and_sealing_twice_adds_nothing() {
        let (_d, s) = store_with_rows(5);
        assert_eq!(s.write_blocking(seal).unwrap(), 5);
        assert_eq!(s.write_blocking(seal).unwrap(), 0);
        let v = s.read_blocking(verify).unwrap();
        assert_eq!(v.sealed, 5);
        assert_eq!(v.first_break, None);
        assert_eq!(s.read_blocking(head).unwrap().unwrap().1, v.head);
    }

    #[test]
    fn an_edited_row_breaks_the_chain_at_that_row() {
        let (_d, s) = store_with_rows(5);
        s.write_blocking(seal).unwrap();
        tamper(&s, "UPDATE audit_log SET actor = 'someone' WHERE id = 3");
        assert_eq!(s.read_blocking(verify).unwrap().first_break, Some(3));
    }

    #[test]
    fn a_deleted_row_breaks_the_chain() {
        let (_d, s) = store_with_rows(5);
        s.write_blocking(seal).unwrap();
        tamper(&s, "DELETE FROM audit_log WHERE id = 2");
        assert_eq!(s.read_blocking(verify).unwrap().first_break, Some(2));
    }

    #[test]
    fn a_row_slipped_in_below_the_head_is_found() {
        let (_d, s) = store_with_rows(5);
        s.write_blocking(seal).unwrap();
        tamper(
            &s,
            "DELETE FROM audit_seal WHERE audit_id = 4; \
             UPDATE audit_log SET detail = '{}' WHERE id = 4",
        );
        // Seal 5 now links from seal 3, so the chain breaks at 5; row 4 is unsealed inside the chain.
        let v = s.read_blocking(verify).unwrap();
        assert_eq!(v.first_break, Some(5));
    }

    #[test]
    fn rows_written_after_sealing_extend_the_chain() {
        let (_d, s) = store_with_rows(2);
        s.write_blocking(seal).unwrap();
        let h1 = s.read_blocking(verify).unwrap().head;
        s.write_blocking(|tx| Store::audit(tx, "suzuki", "mode.hold", &serde_json::json!({})))
            .unwrap();
        assert_eq!(s.write_blocking(seal).unwrap(), 1);
        let v = s.read_blocking(verify).unwrap();
        assert_eq!(v.sealed, 3);
        assert_eq!(v.first_break, None);
        assert_ne!(v.head, h1);
    }
}
