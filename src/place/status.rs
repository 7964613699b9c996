//! Shelter status (open / closed / full), set by operators from the CLI or the console, stored in SQLite.
//!
//! A shelter without a row is **open**: a designated 指定緊急避難場所 is usable until the city says otherwise,
//! and an alert that offers no shelter because nobody has clicked "open" yet would be worse than one that
//! offers a designated site. Every change is written to `audit_log` in the same transaction.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::store::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShelterStatus {
    Open,
    Closed,
    Full,
}

impl ShelterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ShelterStatus::Open => "open",
            ShelterStatus::Closed => "closed",
            ShelterStatus::Full => "full",
        }
    }

    /// The stored name (`open`, `closed`, `full`) only.
    pub fn parse(s: &str) -> Option<ShelterStatus> {
        match s {
            "open" => Some(ShelterStatus::Open),
            "closed" => Some(ShelterStatus::Closed),
            "full" => Some(ShelterStatus::Full),
            _ => None,
        }
    }

    /// 開設 / 閉鎖 / 満員, as shown to residents and operators.
    pub fn label_ja(self) -> &'static str {
        match self {
            ShelterStatus::Open => "開設",
            ShelterStatus::Closed => "閉鎖",
            ShelterStatus::Full => "満員",
        }
    }
}

impl fmt::Display for ShelterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ShelterStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "open" | "開設" => Ok(ShelterStatus::Open),
            "closed" | "閉鎖" => Ok(ShelterStatus::Closed),
            "full" | "満員" => Ok(ShelterStatus::Full),
            other => Err(format!(
                "shelter status \"{other}\" is not one of open, closed, full"
            )),
        }
    }
}

/// The result of a status change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    Changed {
        from: ShelterStatus,
        to: ShelterStatus,
    },
    /// The shelter already had that status; nothing was written.
    Unchanged(ShelterStatus),
}

/// Sets a shelter's status inside the caller's transaction and audits it (`shelter.status`). The caller
/// checks that the id is a known shelter.
pub fn set_status_tx(
    tx: &Transaction<'_>,
    shelter_id: &str,
    status: ShelterStatus,
    actor: &str,
) -> anyhow::Result<StatusChange> {
    let before: Option<String> = tx
        .query_row(
            "SELECT status FROM shelter_status WHERE shelter_id = ?1",
            [shelter_id],
            |r| r.get(0),
        )
        .optional()?;
    let from = match before {
        Some(s) => s.parse().map_err(anyhow::Error::msg)?,
        None => ShelterStatus::Open,
    };
    if from == status {
        return Ok(StatusChange::Unchanged(status));
    }
    tx.execute(
        "INSERT INTO shelter_status (shelter_id, status, changed_at, changed_by) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (shelter_id) DO UPDATE SET status = excluded.status,
             changed_at = excluded.changed_at, changed_by = excluded.changed_by",
        rusqlite::params![
            shelter_id,
            status.as_str(),
            chrono::Utc::now().to_rfc3339(),
            actor
        ],
    )?;
    Store::audit(
        tx,
        actor,
        "shelter.status",
        &serde_json::json!({"shelter_id": shelter_id, "from": from, "to": status}),
    )?;
    Ok(StatusChange::Changed { from, to: status })
}

/// Async form for the console.
pub async fn set_status(
    store: &Store,
    shelter_id: &str,
    status: ShelterStatus,
    actor: &str,
) -> anyhow::Result<StatusChange> {
    let (id, actor) = (shelter_id.to_string(), actor.to_string());
    store
        .write(move |tx| set_status_tx(tx, &id, status, &actor))
        .await
        .context("saving shelter status")
}

/// Every shelter with a stored status (others are open).
pub fn load_statuses(conn: &Connection) -> anyhow::Result<HashMap<String, ShelterStatus>> {
    let mut stmt = conn.prepare("SELECT shelter_id, status FROM shelter_status")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, s) = row?;
        out.insert(id, s.parse().map_err(anyhow::Error::msg)?);
    }
    Ok(out)
}

/// Async form for the console and the composer.
pub async fn statuses(store: &Store) -> anyhow::Result<HashMap<String, ShelterStatus>> {
    store.read(load_statuses).await
}

/// Looks a status up in a loaded map (absent = open).
pub fn status_of(map: &HashMap<String, ShelterStatus>, id: &str) -> ShelterStatus {
    map.get(id).copied().unwrap_or(ShelterStatus::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_change_is_stored_and_audited_and_a_repeat_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let id = "E0110000241202";
        let r = store
            .write_blocking(|tx| set_status_tx(tx, id, ShelterStatus::Full, "operator-a"))
            .unwrap();
        assert_eq!(
            r,
            StatusChange::Changed {
                from: ShelterStatus::Open,
                to: ShelterStatus::Full
            }
        );
        let r = store
            .write_blocking(|tx| set_status_tx(tx, id, ShelterStatus::Full, "operator-b"))
            .unwrap();
        assert_eq!(r, StatusChange::Unchanged(ShelterStatus::Full));
        let map = store.read_blocking(load_statuses).unwrap();
        assert_eq!(status_of(&map, id), ShelterStatus::Full);
        assert_eq!(status_of(&map, "E0000"), ShelterStatus::Open);
        let audits: Vec<(String, String)> = store
            .read_blocking(|c| {
                let mut s = c.prepare(
                    "SELECT actor, detail FROM audit_log WHERE action = 'shelter.status'",
                )?;
                let v = s
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(v)
            })
            .unwrap();
        assert_eq!(audits.len(), 1);
        assert_eq!(audits[0].0, "operator-a");
        assert!(audits[0].1.contains("\"to\":\"full\""), "{}", audits[0].1);
    }

    #[test]
    fn statuses_parse_in_english_and_japanese() {
        assert_eq!("満員".parse::<ShelterStatus>(), Ok(ShelterStatus::Full));
        assert_eq!("closed".parse::<ShelterStatus>(), Ok(ShelterStatus::Closed));
        assert!("shut".parse::<ShelterStatus>().is_err());
    }
}
