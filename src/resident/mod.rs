//! Residents: a LINE user with a registered district, an active flag and opt-ins; the audience query;
//! CSV import and export for migrating from other platforms.
//!
//! # Design constraints
//! * The LINE user id is personal data: it is stored in full (needed to send) but never logged in full
//!   ([`LineUserId`] redacts itself).
//! * **Audience query** (who gets an alert): active residents of a set of districts, optionally only those
//!   who opted in to レベル3 alerts. The partial covering index `residents_audience (district_id, user_id)
//!   WHERE active = 1` answers it from the index alone, so it costs one index range per district, not a scan
//!   of 1 M rows (measured in BENCHMARKS.md, `cargo bench --bench audience`).
//! * **Import is all-or-nothing**: every row is checked first (well-formed user id, known district, no
//!   duplicate user); if any row is bad, every bad row is reported with its line number and nothing is written.
//!   A good file is written in one transaction with one audit entry.
//! * Registration replies are built by the pure functions in [`flow`]; this module only stores their effects.

pub mod flow;
pub mod menu;
pub mod service;
pub mod topics;

use std::io::Write;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::ids::LineUserId;
use crate::place::Districts;
use crate::store::Store;

/// One resident as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resident {
    pub user_id: LineUserId,
    pub district_id: Option<String>,
    pub active: bool,
    pub opt_level3: bool,
    pub registered_at: String,
}

/// What a follow event found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowOutcome {
    /// First time this user follows the account.
    New,
    /// Came back (unblocked); keeps the district registered before, if any.
    Returning { district_id: Option<String> },
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

/// Records a follow: creates the resident or marks a returning one active again.
pub fn follow_tx(tx: &Transaction<'_>, user: &LineUserId) -> anyhow::Result<FollowOutcome> {
    let existing: Option<Option<String>> = tx
        .query_row(
            "SELECT district_id FROM residents WHERE user_id = ?1",
            [user.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    let t = now();
    match existing {
        Some(district_id) => {
            tx.execute(
                "UPDATE residents SET active = 1, updated_at = ?2 WHERE user_id = ?1",
                rusqlite::params![user.as_str(), t],
            )?;
            Ok(FollowOutcome::Returning { district_id })
        }
        None => {
            tx.execute(
                "INSERT INTO residents (user_id, active, registered_at, updated_at, source)
                 VALUES (?1, 1, ?2, ?2, 'follow')",
                rusqlite::params![user.as_str(), t],
            )?;
            Ok(FollowOutcome::New)
        }
    }
}

/// Records an unfollow (the user blocked the account): the resident stays, inactive, so a later follow
/// restores the district. Returns whether a resident was known.
pub fn unfollow_tx(tx: &Transaction<'_>, user: &LineUserId) -> anyhow::Result<bool> {
    let n = tx.execute(
        "UPDATE residents SET active = 0, updated_at = ?2 WHERE user_id = ?1",
        rusqlite::params![user.as_str(), now()],
    )?;
    topics::unsubscribe_all(tx, user)?;
    Ok(n > 0)
}

/// Sets the resident's district (creating the resident if the follow event was missed).
pub fn set_district_tx(
    tx: &Transaction<'_>,
    user: &LineUserId,
    district_id: &str,
) -> anyhow::Result<()> {
    let t = now();
    tx.execute(
        "INSERT INTO residents (user_id, district_id, active, registered_at, updated_at, source)
         VALUES (?1, ?2, 1, ?3, ?3, 'follow')
         ON CONFLICT (user_id) DO UPDATE SET district_id = excluded.district_id, active = 1,
             updated_at = excluded.updated_at",
        rusqlite::params![user.as_str(), district_id, t],
    )?;
    Ok(())
}

/// Sets the レベル3 opt-in. Returns false when the user is unknown.
pub fn set_opt_level3_tx(
    tx: &Transaction<'_>,
    user: &LineUserId,
    on: bool,
) -> anyhow::Result<bool> {
    let n = tx.execute(
        "UPDATE residents SET opt_level3 = ?2, updated_at = ?3 WHERE user_id = ?1",
        rusqlite::params![user.as_str(), on, now()],
    )?;
    Ok(n > 0)
}

pub fn get(conn: &Connection, user: &LineUserId) -> anyhow::Result<Option<Resident>> {
    Ok(conn
        .query_row(
            "SELECT user_id, district_id, active, opt_level3, registered_at FROM residents WHERE user_id = ?1",
            [user.as_str()],
            |r| {
                Ok(Resident {
                    user_id: LineUserId::new(r.get::<_, String>(0)?),
                    district_id: r.get(1)?,
                    active: r.get(2)?,
                    opt_level3: r.get(3)?,
                    registered_at: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Who an alert goes to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audience {
    /// District ids (e.g. every district of the municipality the warning names).
    pub districts: Vec<String>,
    /// Only residents who opted in to レベル3 alerts.
    pub level3_opt_in_only: bool,
    /// Also the active friends who never registered a district. A resident has one district or none, so
    /// they never overlap with the districts' residents.
    pub unregistered: bool,
}

/// Calls `f` with every user id of the audience, in index order (district, opt-in, user id), without
/// allocating per row: the outbox streams a million recipients straight into batch rows this way. Uses the
/// partial covering index. Returns how many ids were passed.
pub fn for_each_audience_id(
    conn: &Connection,
    audience: &Audience,
    mut f: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let sql = if audience.level3_opt_in_only {
        "SELECT user_id FROM residents WHERE active = 1 AND district_id = ?1 AND opt_level3 = 1"
    } else {
        "SELECT user_id FROM residents WHERE active = 1 AND district_id = ?1"
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut districts: Vec<&String> = audience.districts.iter().collect();
    districts.sort();
    districts.dedup();
    let mut total = 0;
    for d in districts {
        let mut rows = stmt.query([d])?;
        while let Some(row) = rows.next()? {
            f(row.get_ref(0)?.as_str()?)?;
            total += 1;
        }
    }
    if audience.unregistered {
        // `district_id IS NULL` is an equality the partial index answers like a district.
        let sql = if audience.level3_opt_in_only {
            "SELECT user_id FROM residents WHERE active = 1 AND district_id IS NULL AND opt_level3 = 1"
        } else {
            "SELECT user_id FROM residents WHERE active = 1 AND district_id IS NULL"
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            f(row.get_ref(0)?.as_str()?)?;
            total += 1;
        }
    }
    Ok(total)
}

/// Whether the audience has nobody in it (one index seek per district).
pub fn audience_is_empty(conn: &Connection, audience: &Audience) -> anyhow::Result<bool> {
    let sql = if audience.level3_opt_in_only {
        "SELECT EXISTS (SELECT 1 FROM residents WHERE active = 1 AND district_id = ?1 AND opt_level3 = 1)"
    } else {
        "SELECT EXISTS (SELECT 1 FROM residents WHERE active = 1 AND district_id = ?1)"
    };
    let mut stmt = conn.prepare_cached(sql)?;
    for d in &audience.districts {
        if stmt.query_row([d], |r| r.get::<_, bool>(0))? {
            return Ok(false);
        }
    }
    if audience.unregistered {
        let sql = if audience.level3_opt_in_only {
            "SELECT EXISTS (SELECT 1 FROM residents WHERE active = 1 AND district_id IS NULL AND opt_level3 = 1)"
        } else {
            "SELECT EXISTS (SELECT 1 FROM residents WHERE active = 1 AND district_id IS NULL)"
        };
        if conn
            .prepare_cached(sql)?
            .query_row([], |r| r.get::<_, bool>(0))?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Calls `f` with batches of at most `batch` user ids of the audience (see [`for_each_audience_id`]);
/// memory stays at one batch however large the audience is.
pub fn for_each_audience_batch(
    conn: &Connection,
    audience: &Audience,
    batch: usize,
    mut f: impl FnMut(&[LineUserId]) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let batch = batch.max(1);
    let mut buf = Vec::with_capacity(batch);
    let total = for_each_audience_id(conn, audience, |id| {
        buf.push(LineUserId::new(id));
        if buf.len() == batch {
            f(&buf)?;
            buf.clear();
        }
        Ok(())
    })?;
    if !buf.is_empty() {
        f(&buf)?;
    }
    Ok(total)
}

/// The whole audience at once (for small audiences and tests; use [`for_each_audience_batch`] for large ones).
pub fn audience(conn: &Connection, audience: &Audience) -> anyhow::Result<Vec<LineUserId>> {
    let mut out = Vec::new();
    for_each_audience_batch(conn, audience, 10_000, |b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok(out)
}

/// Counts per state, for the console.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub active: u64,
    pub active_with_district: u64,
    pub inactive: u64,
}

pub fn counts(conn: &Connection) -> anyhow::Result<Counts> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(active = 1), 0), coalesce(sum(active = 1 AND district_id IS NOT NULL), 0),
                coalesce(sum(active = 0), 0) FROM residents",
        [],
        |r| {
            Ok(Counts {
                active: r.get::<_, i64>(0)? as u64,
                active_with_district: r.get::<_, i64>(1)? as u64,
                inactive: r.get::<_, i64>(2)? as u64,
            })
        },
    )?)
}

/// Async helpers for the webhook worker and the console.
pub async fn follow(store: &Store, user: LineUserId) -> anyhow::Result<FollowOutcome> {
    store.write(move |tx| follow_tx(tx, &user)).await
}

pub async fn unfollow(store: &Store, user: LineUserId) -> anyhow::Result<bool> {
    store.write(move |tx| unfollow_tx(tx, &user)).await
}

/// The follow handler for the webhook worker: records the follow and returns the welcome messages
/// (the caller also links the rich menu of the current mode).
pub async fn on_follow(
    store: &Store,
    districts: &Districts,
    city: &str,
    user: LineUserId,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let outcome = follow(store, user).await.context("recording a follow")?;
    let returning = match &outcome {
        FollowOutcome::Returning { district_id } => district_id.as_deref(),
        FollowOutcome::New => None,
    };
    Ok(flow::welcome(districts, city, returning))
}

/// Stores a reply's effect, then hands back its messages to send as the reply.
pub async fn settle(
    store: &Store,
    user: LineUserId,
    reply: flow::Reply,
) -> anyhow::Result<Vec<serde_json::Value>> {
    apply_effect(store, user, reply.effect).await?;
    Ok(reply.messages)
}

/// Applies what a registration reply asks for ([`flow::Effect`]).
pub async fn apply_effect(
    store: &Store,
    user: LineUserId,
    effect: flow::Effect,
) -> anyhow::Result<()> {
    match effect {
        flow::Effect::None => Ok(()),
        flow::Effect::Register { district_id } => {
            store
                .write(move |tx| set_district_tx(tx, &user, &district_id))
                .await
        }
        flow::Effect::SetLevel3(on) => {
            store
                .write(move |tx| set_opt_level3_tx(tx, &user, on).map(|_| ()))
                .await
        }
    }
    .context("saving the resident's registration")
}

/// A checked import file.
#[derive(Debug, PartialEq, Eq)]
pub struct ImportRows {
    /// User and district id (a district given by name is resolved to its id).
    pub rows: Vec<(LineUserId, String)>,
    /// The encoding the file was read in.
    pub encoding: crate::text::CsvEncoding,
}

/// Checks an import CSV (`user_id,district`, header optional; UTF-8 or Shift_JIS, [`crate::text::decode_csv`]).
/// `district` is a district id or a district name as people write it (`大通西1丁目`, `中央区 大通西一丁目`;
/// [`Districts::named`]) that names exactly one district. `Err` lists every bad row as `(line, message)`
/// (line 0: the file as a whole); a file with any bad row imports nothing.
pub fn check_import(bytes: &[u8], districts: &Districts) -> Result<ImportRows, Vec<(u64, String)>> {
    let decoded = crate::text::decode_csv(bytes).map_err(|m| vec![(0, m)])?;
    let bytes = decoded.text.as_bytes();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let lines = crate::place::LineIndex::new(bytes);
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut rec = csv::StringRecord::new();
    let mut first = true;
    loop {
        let line_before = rdr.position().line();
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let line = lines.line_of(&rec).unwrap_or(line_before);
                let is_first = std::mem::replace(&mut first, false);
                if rec.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                if is_first
                    && rec.get(0).map(str::trim) == Some("user_id")
                    && rec.get(1).map(str::trim) == Some("district")
                {
                    continue;
                }
                if rec.len() < 2 {
                    errors.push((
                        line,
                        format!("expected 2 columns user_id,district; found {}", rec.len()),
                    ));
                    continue;
                }
                let raw_user = rec.get(0).unwrap_or("").trim();
                let raw_district = rec.get(1).unwrap_or("").trim();
                let Some(user) = LineUserId::parse(raw_user) else {
                    errors.push((
                        line,
                        format!(
                            "user_id \"{}\" is not a LINE user id (U followed by 32 lowercase hex digits)",
                            crate::ids::redact_user_id(raw_user)
                        ),
                    ));
                    continue;
                };
                let district = match districts.get(raw_district) {
                    Some(d) => d.id.clone(),
                    None => match districts.named(raw_district).as_slice() {
                        [d] => d.id.clone(),
                        [] => {
                            errors.push((
                                line,
                                format!("district \"{raw_district}\" is neither a district id nor a district name of the configured districts file"),
                            ));
                            continue;
                        }
                        many => {
                            let ids: Vec<&str> =
                                many.iter().take(5).map(|d| d.id.as_str()).collect();
                            errors.push((
                                line,
                                format!(
                                    "district \"{raw_district}\" names {} districts ({}…); write the district id or the ward and the name",
                                    many.len(),
                                    ids.join(", ")
                                ),
                            ));
                            continue;
                        }
                    },
                };
                if let Some(prev) = seen.get(user.as_str()) {
                    errors.push((line, format!("user {user} repeats line {prev}")));
                    continue;
                }
                seen.insert(user.as_str().to_string(), line);
                rows.push((user, district));
            }
            Err(e) => {
                let line = lines.line_of_error(&e).unwrap_or(line_before + 1);
                // The text is decoded already, so this is the CSV structure (an unclosed quote).
                errors.push((line, format!("unreadable CSV row: {e}")));
                break;
            }
        }
    }
    if errors.is_empty() {
        Ok(ImportRows {
            rows,
            encoding: decoded.encoding,
        })
    } else {
        Err(errors)
    }
}

/// How many users of checked rows are already residents (a dry run's "updated" count).
pub fn count_known(conn: &Connection, rows: &ImportRows) -> anyhow::Result<usize> {
    let mut exists = conn.prepare_cached("SELECT 1 FROM residents WHERE user_id = ?1")?;
    let mut n = 0;
    for (user, _) in &rows.rows {
        if exists.exists([user.as_str()])? {
            n += 1;
        }
    }
    Ok(n)
}

/// Writes checked rows in the caller's transaction: new users are created active, known users get the
/// district and become active. Audited once (`residents.import`) with the counts. `progress` is told the
/// number of rows written so far (every 1,000 and at the end). Returns (created, updated).
pub fn import_tx(
    tx: &Transaction<'_>,
    rows: &ImportRows,
    actor: &str,
    file: &str,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<(usize, usize)> {
    let t = now();
    let mut created = 0;
    let mut updated = 0;
    let mut exists = tx.prepare_cached("SELECT 1 FROM residents WHERE user_id = ?1")?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO residents (user_id, district_id, active, registered_at, updated_at, source)
         VALUES (?1, ?2, 1, ?3, ?3, 'import')
         ON CONFLICT (user_id) DO UPDATE SET district_id = excluded.district_id, active = 1,
             updated_at = excluded.updated_at",
    )?;
    for (user, district) in &rows.rows {
        if exists.exists([user.as_str()])? {
            updated += 1;
        } else {
            created += 1;
        }
        upsert.execute(rusqlite::params![user.as_str(), district, t])?;
        let done = created + updated;
        if done % 1000 == 0 || done == rows.rows.len() {
            progress(done);
        }
    }
    Store::audit(
        tx,
        actor,
        "residents.import",
        &serde_json::json!({"file": file, "rows": rows.rows.len(), "created": created, "updated": updated}),
    )?;
    Ok((created, updated))
}

/// Writes every resident as CSV (`user_id,district,active,opt_level3,registered_at`; the first two columns
/// are the import format, so an export can be imported elsewhere), UTF-8 starting with a byte-order mark so
/// Excel opens it as UTF-8. Returns the number of rows.
pub fn export(conn: &Connection, mut out: impl Write) -> anyhow::Result<usize> {
    out.write_all(crate::text::UTF8_BOM)?;
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "user_id",
        "district",
        "active",
        "opt_level3",
        "registered_at",
    ])?;
    let mut stmt = conn.prepare(
        "SELECT user_id, coalesce(district_id, ''), active, opt_level3, registered_at FROM residents ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let active: bool = r.get(2)?;
        let opt: bool = r.get(3)?;
        w.write_record([
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            (active as u8).to_string(),
            (opt as u8).to_string(),
            r.get::<_, String>(4)?,
        ])?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u32) -> LineUserId {
        LineUserId::parse(&format!("U{n:032x}")).unwrap()
    }

    fn districts() -> Districts {
        let gj = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{"id":"d1","name":"一丁目","jma_code":"0620100"},
           "geometry":{"type":"Polygon","coordinates":[[[140.0,38.0],[140.1,38.0],[140.1,38.1],[140.0,38.0]]]}},
          {"type":"Feature","properties":{"id":"d2","name":"二丁目","jma_code":"0620100"},
           "geometry":{"type":"Polygon","coordinates":[[[140.1,38.0],[140.2,38.0],[140.2,38.1],[140.1,38.0]]]}}]}"#;
        Districts::from_geojson_str(gj).unwrap().0
    }

    #[test]
    fn audience_holds_active_residents_of_the_districts_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        store
            .write_blocking(|tx| {
                for i in 0..10 {
                    follow_tx(tx, &user(i))?;
                    set_district_tx(tx, &user(i), if i < 6 { "d1" } else { "d2" })?;
                }
                follow_tx(tx, &user(99))?; // no district yet
                unfollow_tx(tx, &user(2))?;
                set_opt_level3_tx(tx, &user(3), true)?;
                set_opt_level3_tx(tx, &user(7), true)?;
                Ok(())
            })
            .unwrap();
        let d1 = Audience {
            districts: vec!["d1".into()],
            ..Default::default()
        };
        let mut got = store.read_blocking(|c| audience(c, &d1)).unwrap();
        got.sort();
        assert_eq!(got, vec![user(0), user(1), user(3), user(4), user(5)]);
        let l3 = Audience {
            districts: vec!["d1".into(), "d2".into(), "d1".into()],
            level3_opt_in_only: true,
            ..Default::default()
        };
        assert_eq!(
            store.read_blocking(|c| audience(c, &l3)).unwrap(),
            vec![user(3), user(7)]
        );
        let mut sizes = Vec::new();
        let all = Audience {
            districts: vec!["d1".into(), "d2".into()],
            ..Default::default()
        };
        let total = store
            .read_blocking(|c| {
                for_each_audience_batch(c, &all, 4, |b| {
                    sizes.push(b.len());
                    Ok(())
                })
            })
            .unwrap();
        assert_eq!(total, 9);
        assert_eq!(sizes, vec![4, 4, 1]);
        let c = store.read_blocking(counts).unwrap();
        assert_eq!(
            c,
            Counts {
                active: 10,
                active_with_district: 9,
                inactive: 1
            }
        );
        // Friends without a district: only the active one, and never a registered resident.
        let none = Audience {
            unregistered: true,
            ..Default::default()
        };
        assert_eq!(
            store.read_blocking(|c| audience(c, &none)).unwrap(),
            vec![user(99)]
        );
        assert!(!store
            .read_blocking(|c| audience_is_empty(c, &none))
            .unwrap());
        let both = Audience {
            districts: vec!["d2".into()],
            unregistered: true,
            ..Default::default()
        };
        let mut got = store.read_blocking(|c| audience(c, &both)).unwrap();
        got.sort();
        assert_eq!(got, vec![user(6), user(7), user(8), user(9), user(99)]);
    }

    #[test]
    fn the_unregistered_audience_is_read_from_the_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let plan: String = store
            .read_blocking(|c| {
                let mut st = c.prepare(
                    "EXPLAIN QUERY PLAN SELECT user_id FROM residents WHERE active = 1 AND district_id IS NULL",
                )?;
                let rows = st
                    .query_map([], |r| r.get::<_, String>(3))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows.join("; "))
            })
            .unwrap();
        assert!(
            plan.contains("USING COVERING INDEX residents_audience (district_id=?)"),
            "{plan}"
        );
    }

    #[test]
    fn the_audience_query_uses_the_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let plan: String = store
            .read_blocking(|c| {
                let mut v = Vec::new();
                for sql in [
                    "EXPLAIN QUERY PLAN SELECT user_id FROM residents WHERE active = 1 AND district_id = ?1",
                    "EXPLAIN QUERY PLAN SELECT user_id FROM residents WHERE active = 1 AND district_id = ?1 AND opt_level3 = 1",
                ] {
                    let mut s = c.prepare(sql)?;
                    let plan: Vec<String> = s
                        .query_map(["d1"], |r| r.get::<_, String>(3))?
                        .collect::<Result<_, _>>()?;
                    v.push(plan.join(" "));
                }
                Ok(v.join("; "))
            })
            .unwrap();
        assert_eq!(
            plan.matches("USING COVERING INDEX residents_audience")
                .count(),
            2,
            "{plan}"
        );
        assert!(!plan.contains("SCAN"), "{plan}");
    }

    #[test]
    fn a_returning_follower_keeps_the_district() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let out = store
            .write_blocking(|tx| {
                assert_eq!(follow_tx(tx, &user(1))?, FollowOutcome::New);
                set_district_tx(tx, &user(1), "d2")?;
                unfollow_tx(tx, &user(1))?;
                follow_tx(tx, &user(1))
            })
            .unwrap();
        assert_eq!(
            out,
            FollowOutcome::Returning {
                district_id: Some("d2".into())
            }
        );
        let r = store.read_blocking(|c| get(c, &user(1))).unwrap().unwrap();
        assert!(r.active);
    }

    #[test]
    fn import_reports_every_bad_row_with_its_line() {
        let csv = format!(
            "user_id,district\r\n{},d1\r\nnot-a-user,d1\r\n{},d9\r\n{},d2\r\n{}\r\n",
            user(1).as_str(),
            user(2).as_str(),
            user(1).as_str(),
            user(3).as_str()
        );
        let errs = check_import(csv.as_bytes(), &districts()).unwrap_err();
        let lines: Vec<u64> = errs.iter().map(|e| e.0).collect();
        assert_eq!(lines, vec![3, 4, 5, 6], "{errs:?}");
        assert!(errs[1].1.contains("district \"d9\""));
        assert!(errs[2].1.contains("repeats line 2"));
        assert!(errs[3].1.contains("expected 2 columns"));
        assert!(
            !errs.iter().any(|e| e.1.contains(user(1).as_str())),
            "user ids are redacted in messages"
        );
    }

    #[test]
    fn a_district_is_found_by_its_name_as_written_and_an_ambiguous_name_is_refused() {
        let gj = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{"id":"a","name":"桜ケ丘一丁目","group":"北区","jma_code":"0620100"},
           "geometry":{"type":"Polygon","coordinates":[[[140.0,38.0],[140.1,38.0],[140.1,38.1],[140.0,38.0]]]}},
          {"type":"Feature","properties":{"id":"b","name":"本町","group":"北区","jma_code":"0620100"},
           "geometry":{"type":"Polygon","coordinates":[[[140.1,38.0],[140.2,38.0],[140.2,38.1],[140.1,38.0]]]}},
          {"type":"Feature","properties":{"id":"c","name":"本町","group":"南区","jma_code":"0620100"},
           "geometry":{"type":"Polygon","coordinates":[[[140.2,38.0],[140.3,38.0],[140.3,38.1],[140.2,38.0]]]}}]}"#;
        let d = Districts::from_geojson_str(gj).unwrap().0;
        let csv = format!(
            "{},さくらが丘1丁目\n{},桜ヶ丘１丁目\n{},南区 本町\n",
            user(1).as_str(),
            user(2).as_str(),
            user(3).as_str()
        );
        let errs = check_import(csv.as_bytes(), &d).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0]
                .1
                .contains("neither a district id nor a district name"),
            "{errs:?}"
        );
        let csv = format!(
            "{},桜ヶ丘１丁目\n{},南区 本町\n{},本町\n",
            user(2).as_str(),
            user(3).as_str(),
            user(4).as_str()
        );
        let errs = check_import(csv.as_bytes(), &d).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, 3);
        assert!(errs[0].1.contains("names 2 districts (b, c"), "{errs:?}");
        let ok = check_import(&csv.as_bytes()[..csv.rfind("U").unwrap()], &d).unwrap();
        assert_eq!(
            ok.rows.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
            vec!["a", "c"]
        );
        assert_eq!(ok.encoding, crate::text::CsvEncoding::Utf8);
    }

    #[test]
    fn import_then_export_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        store
            .write_blocking(|tx| {
                follow_tx(tx, &user(1))?;
                unfollow_tx(tx, &user(1))?;
                Ok(())
            })
            .unwrap();
        let csv = format!("{},d1\n{},d2\n", user(1).as_str(), user(2).as_str());
        let rows = check_import(csv.as_bytes(), &districts()).unwrap();
        let (created, updated) = store
            .write_blocking(|tx| import_tx(tx, &rows, "cli", "x.csv", |_| {}))
            .unwrap();
        assert_eq!((created, updated), (1, 1));
        let mut out = Vec::new();
        store.read_blocking(|c| export(c, &mut out)).unwrap();
        let text = String::from_utf8(out).unwrap();
        let text = text
            .strip_prefix('\u{feff}')
            .expect("the export starts with a BOM for Excel");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "user_id,district,active,opt_level3,registered_at");
        assert!(lines[1].starts_with(&format!("{},d1,1,0,", user(1).as_str())));
        assert!(lines[2].starts_with(&format!("{},d2,1,0,", user(2).as_str())));
        // The export is a valid import file.
        assert_eq!(
            check_import(text.as_bytes(), &districts())
                .unwrap()
                .rows
                .len(),
            2
        );
    }
}
