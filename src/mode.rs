//! The city's operating mode (平常時 / 災害モード) and the operators' manual hold, kept in the one-row
//! `mode_state` table.
//!
//! * The disaster engine decides the mode from warnings and policy and records it with [`set_mode`].
//! * An operator can **hold** disaster mode on by hand ([`set_manual_hold`]); while a hold exists the mode is
//!   disaster whatever the engine sees, and the engine must not leave disaster mode (issue 5, item 4:
//!   "Mode leaves disaster only when no trigger remains … and no manual hold exists").
//! * Releasing the hold does not switch the mode back by itself: the engine does so once no trigger remains.
//!   If the hold was the only reason for disaster mode, [`set_manual_hold`] with `false` leaves the mode as it
//!   is and the engine's next decision returns it to normal.
//! * Every change is audited in the same transaction as the change.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::store::Store;

/// The one mode type: the engine decides it, `mode_state` records it, the rich menu follows it.
/// Rich-menu templates and `line_richmenu_state` name disaster mode's menus `emergency` ([`Mode::menu_key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Normal,
    #[serde(alias = "emergency")]
    Disaster,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Disaster => "disaster",
        }
    }

    /// The name operators see.
    pub fn label_ja(self) -> &'static str {
        match self {
            Mode::Normal => "平常時",
            Mode::Disaster => "災害モード",
        }
    }

    /// The name of this mode's rich menus (templates' `mode`, `line_richmenu_state.mode`, `sonae richmenu
    /// switch MODE`).
    pub fn menu_key(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Disaster => "emergency",
        }
    }

    /// Reads [`Mode::menu_key`] (and, for the command line, `disaster`).
    pub fn from_menu_key(s: &str) -> Option<Mode> {
        match s {
            "normal" => Some(Mode::Normal),
            "emergency" | "disaster" => Some(Mode::Disaster),
            _ => None,
        }
    }

    fn parse(s: &str) -> anyhow::Result<Mode> {
        match s {
            "normal" => Ok(Mode::Normal),
            "disaster" => Ok(Mode::Disaster),
            other => anyhow::bail!("mode_state.mode has unknown value {other:?}"),
        }
    }
}

/// Serde for fields in the rich-menu world (templates, switch reports): [`Mode::menu_key`] names.
/// `#[serde(with = "crate::mode::menu_key")]`.
pub mod menu_key {
    use super::Mode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &Mode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(mode.menu_key())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        let s = String::deserialize(d)?;
        Mode::from_menu_key(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("mode \"{s}\" is not normal or emergency"))
        })
    }
}

/// The stored mode and hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModeState {
    pub mode: Mode,
    pub manual_hold: bool,
    pub mode_since: DateTime<Utc>,
    pub changed_by: String,
    pub reason: String,
    pub hold_by: Option<String>,
    pub hold_since: Option<DateTime<Utc>>,
}

impl ModeState {
    /// The mode residents get: disaster while a manual hold exists, otherwise the stored mode.
    pub fn effective(&self) -> Mode {
        if self.manual_hold {
            Mode::Disaster
        } else {
            self.mode
        }
    }
}

fn parse_time(s: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("bad timestamp {s:?} in mode_state"))?
        .with_timezone(&Utc))
}

/// Reads the mode on any connection (read pool or inside a write transaction).
pub fn current_mode(conn: &Connection) -> anyhow::Result<ModeState> {
    let row = conn
        .query_row(
            "SELECT mode, manual_hold, mode_since, changed_by, reason, hold_by, hold_since
             FROM mode_state WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            },
        )
        .optional()?
        .context("mode_state has no row; the console migration did not run")?;
    Ok(ModeState {
        mode: Mode::parse(&row.0)?,
        manual_hold: row.1,
        mode_since: parse_time(&row.2)?,
        changed_by: row.3,
        reason: row.4,
        hold_by: row.5,
        hold_since: row.6.as_deref().map(parse_time).transpose()?,
    })
}

/// What a hold/release request did. Repeating a hold that already exists is a value, not an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldOutcome {
    Changed,
    AlreadySo,
}

/// Sets or releases the manual hold of disaster mode, audited as `mode.hold` / `mode.release`. A hold also
/// records the mode as disaster (so `mode_since` shows when the city entered it).
pub fn set_manual_hold(
    tx: &Transaction<'_>,
    hold: bool,
    actor: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<HoldOutcome> {
    let before = current_mode(tx)?;
    if before.manual_hold == hold {
        return Ok(HoldOutcome::AlreadySo);
    }
    let now_s = now.to_rfc3339();
    if hold {
        let entering = before.mode != Mode::Disaster;
        tx.execute(
            "UPDATE mode_state SET manual_hold = 1, hold_by = ?1, hold_since = ?2,
                 mode = 'disaster',
                 mode_since = CASE WHEN ?3 THEN ?2 ELSE mode_since END,
                 changed_by = CASE WHEN ?3 THEN ?1 ELSE changed_by END,
                 reason = CASE WHEN ?3 THEN ?4 ELSE reason END
             WHERE id = 1",
            rusqlite::params![actor, now_s, entering, format!("手動保持: {reason}")],
        )?;
    } else {
        tx.execute(
            "UPDATE mode_state SET manual_hold = 0, hold_by = NULL, hold_since = NULL WHERE id = 1",
            [],
        )?;
    }
    Store::audit(
        tx,
        actor,
        if hold { "mode.hold" } else { "mode.release" },
        &serde_json::json!({
            "reason": reason,
            "mode_before": before.mode,
            "hold_before": before.manual_hold,
        }),
    )?;
    Ok(HoldOutcome::Changed)
}

/// Records the mode the engine decided, audited as `mode.set`. Refuses to leave disaster mode while a manual
/// hold exists (returns [`HoldOutcome::AlreadySo`] and changes nothing).
pub fn set_mode(
    tx: &Transaction<'_>,
    mode: Mode,
    actor: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<HoldOutcome> {
    let before = current_mode(tx)?;
    if before.mode == mode || (before.manual_hold && mode == Mode::Normal) {
        return Ok(HoldOutcome::AlreadySo);
    }
    tx.execute(
        "UPDATE mode_state SET mode = ?1, mode_since = ?2, changed_by = ?3, reason = ?4 WHERE id = 1",
        rusqlite::params![mode.as_str(), now.to_rfc3339(), actor, reason],
    )?;
    Store::audit(
        tx,
        actor,
        "mode.set",
        &serde_json::json!({ "from": before.mode, "to": mode, "reason": reason }),
    )?;
    Ok(HoldOutcome::Changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, s)
    }

    fn audit_actions(s: &Store) -> Vec<String> {
        s.read_blocking(|c| {
            let mut st = c.prepare("SELECT action FROM audit_log ORDER BY id")?;
            let v = st
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(v)
        })
        .unwrap()
    }

    #[test]
    fn a_fresh_database_is_in_normal_mode_without_hold() {
        let (_d, s) = store();
        let m = s.read_blocking(current_mode).unwrap();
        assert_eq!(m.mode, Mode::Normal);
        assert!(!m.manual_hold);
        assert_eq!(m.effective(), Mode::Normal);
    }

    #[test]
    fn a_hold_enters_disaster_mode_and_is_audited_once() {
        let (_d, s) = store();
        let now = Utc::now();
        let out = s
            .write_blocking(|tx| set_manual_hold(tx, true, "tanaka", "台風接近", now))
            .unwrap();
        assert_eq!(out, HoldOutcome::Changed);
        let again = s
            .write_blocking(|tx| set_manual_hold(tx, true, "tanaka", "台風接近", now))
            .unwrap();
        assert_eq!(again, HoldOutcome::AlreadySo);
        let m = s.read_blocking(current_mode).unwrap();
        assert_eq!(m.mode, Mode::Disaster);
        assert!(m.manual_hold);
        assert_eq!(m.hold_by.as_deref(), Some("tanaka"));
        assert_eq!(audit_actions(&s), vec!["mode.hold"]);
    }

    #[test]
    fn the_engine_cannot_leave_disaster_mode_while_a_hold_exists() {
        let (_d, s) = store();
        let now = Utc::now();
        s.write_blocking(|tx| set_manual_hold(tx, true, "tanaka", "訓練", now))
            .unwrap();
        let out = s
            .write_blocking(|tx| set_mode(tx, Mode::Normal, "system", "解除", now))
            .unwrap();
        assert_eq!(out, HoldOutcome::AlreadySo);
        assert_eq!(s.read_blocking(current_mode).unwrap().mode, Mode::Disaster);

        s.write_blocking(|tx| set_manual_hold(tx, false, "suzuki", "終了", now))
            .unwrap();
        let out = s
            .write_blocking(|tx| set_mode(tx, Mode::Normal, "system", "解除", now))
            .unwrap();
        assert_eq!(out, HoldOutcome::Changed);
        let m = s.read_blocking(current_mode).unwrap();
        assert_eq!(m.effective(), Mode::Normal);
        assert_eq!(
            audit_actions(&s),
            vec!["mode.hold", "mode.release", "mode.set"]
        );
    }
}
