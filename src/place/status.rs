//! Shelter status (open / closed / full), set by operators from the CLI or the console, stored in SQLite.
//!
//! A shelter without a row is **unknown** ([`ShelterStatus::Unknown`], 「未設定」): the city has not said it
//! is open. Unknown is not open — an alert says 「開設中」 only for shelters the city opened, and lists a
//! designated site whose status is unknown with 「開設状況は市の発表をご確認ください」. Closed and full sites are
//! never offered. Setting a shelter back to unknown deletes its row. Every change is written to `audit_log`
//! in the same transaction; a bulk change ([`set_status_bulk_tx`]) is one transaction with one audit row.

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
    /// Opened by the city.
    Open,
    Closed,
    Full,
    /// No status stored: designated, but the city has not said it is open.
    Unknown,
}

impl ShelterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ShelterStatus::Open => "open",
            ShelterStatus::Closed => "closed",
            ShelterStatus::Full => "full",
            ShelterStatus::Unknown => "unknown",
        }
    }

    /// The names [`ShelterStatus::as_str`] gives (`open`, `closed`, `full`, `unknown`) only.
    pub fn parse(s: &str) -> Option<ShelterStatus> {
        match s {
            "open" => Some(ShelterStatus::Open),
            "closed" => Some(ShelterStatus::Closed),
            "full" => Some(ShelterStatus::Full),
            "unknown" => Some(ShelterStatus::Unknown),
            _ => None,
        }
    }

    /// 開設 / 閉鎖 / 満員 / 未設定, as shown to operators.
    pub fn label_ja(self) -> &'static str {
        match self {
            ShelterStatus::Open => "開設",
            ShelterStatus::Closed => "閉鎖",
            ShelterStatus::Full => "満員",
            ShelterStatus::Unknown => "未設定",
        }
    }

    /// Whether a shelter in this state may be offered to residents at all (open, or not yet announced).
    pub fn may_offer(self) -> bool {
        matches!(self, ShelterStatus::Open | ShelterStatus::Unknown)
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
            "unknown" | "未設定" => Ok(ShelterStatus::Unknown),
            other => Err(format!(
                "shelter status \"{other}\" is not one of open, closed, full, unknown"
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

/// The stored status of one shelter (no row: unknown).
fn stored(tx: &Connection, shelter_id: &str) -> anyhow::Result<ShelterStatus> {
    let before: Option<String> = tx
        .query_row(
            "SELECT status FROM shelter_status WHERE shelter_id = ?1",
            [shelter_id],
            |r| r.get(0),
        )
        .optional()?;
    match before {
        Some(s) => s.parse().map_err(anyhow::Error::msg),
        None => Ok(ShelterStatus::Unknown),
    }
}

/// Writes one status without auditing; returns the status it replaced, or `None` when it was already so.
fn write_status(
    tx: &Transaction<'_>,
    shelter_id: &str,
    status: ShelterStatus,
    actor: &str,
    at: &str,
) -> anyhow::Result<Option<ShelterStatus>> {
    let from = stored(tx, shelter_id)?;
    if from == status {
        return Ok(None);
    }
    if status == ShelterStatus::Unknown {
        tx.execute(
            "DELETE FROM shelter_status WHERE shelter_id = ?1",
            [shelter_id],
        )?;
    } else {
        tx.prepare_cached(
            "INSERT INTO shelter_status (shelter_id, status, changed_at, changed_by) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (shelter_id) DO UPDATE SET status = excluded.status,
                 changed_at = excluded.changed_at, changed_by = excluded.changed_by",
        )?
        .execute(rusqlite::params![shelter_id, status.as_str(), at, actor])?;
    }
    Ok(Some(from))
}

/// Sets a shelter's status inside the caller's transaction and audits it (`shelter.status`). The caller
/// checks that the id is a known shelter.
pub fn set_status_tx(
    tx: &Transaction<'_>,
    shelter_id: &str,
    status: ShelterStatus,
    actor: &str,
) -> anyhow::Result<StatusChange> {
    let at = chrono::Utc::now().to_rfc3339();
    let Some(from) = write_status(tx, shelter_id, status, actor, &at)? else {
        return Ok(StatusChange::Unchanged(status));
    };
    Store::audit(
        tx,
        actor,
        "shelter.status",
        &serde_json::json!({"shelter_id": shelter_id, "from": from, "to": status}),
    )?;
    Ok(StatusChange::Changed { from, to: status })
}

/// Sets the status of many shelters in the caller's transaction (the console's bulk open/close per
/// hazard) with **one** audit row, `shelter.status.bulk`: `what` (the operator's selection, e.g. hazard and
/// area), the new status, and every shelter that changed with its previous status. Shelters already in
/// that state are left alone. Returns the ids that changed. The caller checks that the ids are known.
pub fn set_status_bulk_tx(
    tx: &Transaction<'_>,
    shelter_ids: &[String],
    status: ShelterStatus,
    actor: &str,
    what: &serde_json::Value,
) -> anyhow::Result<Vec<String>> {
    let at = chrono::Utc::now().to_rfc3339();
    let mut changed = Vec::new();
    let mut detail = Vec::new();
    for id in shelter_ids {
        if let Some(from) = write_status(tx, id, status, actor, &at)? {
            detail.push(serde_json::json!({"shelter_id": id, "from": from}));
            changed.push(id.clone());
        }
    }
    Store::audit(
        tx,
        actor,
        "shelter.status.bulk",
        &serde_json::json!({"selection": what, "to": status, "selected": shelter_ids.len(), "changed": detail}),
    )?;
    Ok(changed)
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

/// Every shelter with a stored status (others are unknown).
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

/// Looks a status up in a loaded map (absent = [`ShelterStatus::Unknown`]). The one place that says what a
/// missing row means.
pub fn status_of(map: &HashMap<String, ShelterStatus>, id: &str) -> ShelterStatus {
    map.get(id).copied().unwrap_or(ShelterStatus::Unknown)
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
                from: ShelterStatus::Unknown,
                to: ShelterStatus::Full
            }
        );
        let r = store
            .write_blocking(|tx| set_status_tx(tx, id, ShelterStatus::Full, "operator-b"))
            .unwrap();
        assert_eq!(r, StatusChange::Unchanged(ShelterStatus::Full));
        let map = store.read_blocking(load_statuses).unwrap();
        assert_eq!(status_of(&map, id), ShelterStatus::Full);
        assert_eq!(status_of(&map, "E0000"), ShelterStatus::Unknown);
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
    fn a_bulk_change_writes_every_shelter_in_one_audit_row_and_unknown_deletes_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let ids: Vec<String> = ["E1", "E2", "E3"].map(String::from).to_vec();
        store
            .write_blocking(|tx| set_status_tx(tx, "E2", ShelterStatus::Open, "a"))
            .unwrap();
        let what = serde_json::json!({"need": "stay", "area": "all"});
        let changed = store
            .write_blocking(|tx| set_status_bulk_tx(tx, &ids, ShelterStatus::Open, "b", &what))
            .unwrap();
        assert_eq!(changed, vec!["E1".to_string(), "E3".to_string()]);
        let map = store.read_blocking(load_statuses).unwrap();
        assert!(ids
            .iter()
            .all(|i| status_of(&map, i) == ShelterStatus::Open));
        let bulk: Vec<String> = store
            .read_blocking(|c| {
                let mut s =
                    c.prepare("SELECT detail FROM audit_log WHERE action = 'shelter.status.bulk'")?;
                let v = s
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(v)
            })
            .unwrap();
        assert_eq!(bulk.len(), 1);
        assert!(
            bulk[0].contains("\"selected\":3") && bulk[0].contains("\"from\":\"unknown\""),
            "{}",
            bulk[0]
        );
        // Back to 未設定: the row goes, the status is unknown again.
        store
            .write_blocking(|tx| set_status_tx(tx, "E1", ShelterStatus::Unknown, "c"))
            .unwrap();
        let map = store.read_blocking(load_statuses).unwrap();
        assert_eq!(status_of(&map, "E1"), ShelterStatus::Unknown);
        assert!(!map.contains_key("E1"));
    }

    #[test]
    fn statuses_parse_in_english_and_japanese() {
        assert_eq!("満員".parse::<ShelterStatus>(), Ok(ShelterStatus::Full));
        assert_eq!("closed".parse::<ShelterStatus>(), Ok(ShelterStatus::Closed));
        assert_eq!(
            "未設定".parse::<ShelterStatus>(),
            Ok(ShelterStatus::Unknown)
        );
        assert!("shut".parse::<ShelterStatus>().is_err());
    }
}
