//! Archived telegram → parsed [`Report`] → [`States`] → persisted state and events, once each.
//!
//! # Design constraints
//! * **Archive order is apply order.** [`Pipeline::drain`] processes every `stored` archive row in id order
//!   under one lock, so the live state and a replay of the archive ([`replay`]) see the same sequence and end
//!   in the same state.
//! * **One transaction per report**: the touched municipalities' state, the apply-once key, the change events,
//!   the `jma_active` rows and the archive row's status commit together. A crash before the commit leaves the
//!   row `stored`, and it is processed again at the next start with the same result.
//! * The parser and the code table are injected ([`ParseFn`], [`CodeTable`]): the real ones are
//!   `jma::report::parse` and `jma::codes`; tests feed hand-built reports.
//! * Consumers (the disaster engine) read `jma_events` by id and wait on [`Pipeline::subscribe`], which carries
//!   the id of the newest event.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, Utc};
use rusqlite::{params, Connection, Transaction};
use tokio::sync::watch;

use super::archive::{self, ArchiveStatus};
use super::report::Report;
use super::state::{
    ApplyOutcome, CodeTable, Disposition, MuniState, ReportKey, Scope, States, WarningEvent,
    WarningState,
};
use crate::metrics::Metrics;
use crate::store::Store;

/// The parser: telegram bytes → report, or a one-line reason.
pub type ParseFn = Arc<dyn Fn(&[u8]) -> Result<Report, String> + Send + Sync>;

/// Apply-once keys older than this (by ReportDateTime) are forgotten; see [`WarningState::prune_applied`].
pub const APPLIED_RETENTION_DAYS: i64 = 14;

/// What happened to one archived telegram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Processed {
    Applied {
        scope: Scope,
        events: usize,
    },
    Duplicate,
    Ignored(String),
    ParseFailed(String),
    /// No parser is wired: kept as `unparsed`.
    Unparsed,
}

pub struct Pipeline {
    store: Store,
    parse: Option<ParseFn>,
    table: Arc<dyn CodeTable>,
    metrics: Option<Arc<Metrics>>,
    states: tokio::sync::Mutex<States>,
    /// (data type, code) pairs already reported as unknown, so a problem is recorded once per process.
    reported_unknown: Mutex<BTreeSet<(String, String)>>,
    last_event: watch::Sender<i64>,
}

impl Pipeline {
    /// Loads the persisted state. `parse: None` archives only (documents stay `unparsed`).
    pub async fn open(
        store: Store,
        parse: Option<ParseFn>,
        table: Arc<dyn CodeTable>,
        metrics: Option<Arc<Metrics>>,
    ) -> anyhow::Result<Pipeline> {
        let pruned = store.write(prune_applied).await?;
        if pruned > 0 {
            tracing::info!(pruned, "forgot old apply-once keys");
        }
        let (states, last_id) = store
            .read(|c| Ok((load_states(c)?, last_event_id(c)?)))
            .await?;
        Ok(Pipeline {
            store,
            parse,
            table,
            metrics,
            states: tokio::sync::Mutex::new(states),
            reported_unknown: Mutex::new(BTreeSet::new()),
            last_event: watch::channel(last_id).0,
        })
    }

    /// The id of the newest row in `jma_events`; changes whenever events are written.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.last_event.subscribe()
    }

    /// Waits for a running [`Pipeline::drain`] to finish and holds the next one off until the guard drops.
    ///
    /// A drain applies a batch of telegrams (everything one poll or a catch-up downloaded) one transaction per
    /// telegram, bumping [`Pipeline::subscribe`] after each. The disaster cycle takes this guard while it reads
    /// the state, so it only ever sees the state between batches: after downtime a warning issued and lifted
    /// in the same catch-up is never announced, and 警報 → 特別警報 caught up together is one issue, not an
    /// issue and an escalation (issue 5, item 4). The cycle already holds SQLite's only writer, which every
    /// drain step needs to record its result, so holding this as well delays a telegram by little more than
    /// its parse.
    pub async fn hold(&self) -> tokio::sync::MutexGuard<'_, States> {
        self.states.lock().await
    }

    /// A copy of the current state (console, tests).
    pub async fn states(&self) -> States {
        self.states.lock().await.clone()
    }

    /// Processes every archived telegram not processed yet, oldest first. With a parser, `unparsed` rows are
    /// included (they were archived while no parser was wired).
    pub async fn drain(&self) -> anyhow::Result<Vec<(i64, Processed)>> {
        let mut states = self.states.lock().await;
        let with_unparsed = self.parse.is_some();
        let ids = self
            .store
            .read(move |c| {
                let mut s = vec![ArchiveStatus::Stored];
                if with_unparsed {
                    s.push(ArchiveStatus::Unparsed);
                }
                archive::ids_with_status(c, &s)
            })
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let p = self.process_locked(&mut states, id).await?;
            out.push((id, p));
        }
        Ok(out)
    }

    async fn process_locked(&self, states: &mut States, id: i64) -> anyhow::Result<Processed> {
        let Some(doc) = self.store.read(move |c| archive::get(c, id)).await? else {
            anyhow::bail!("archive row {id} vanished");
        };
        let Some(parse) = self.parse.clone() else {
            self.store
                .write(move |tx| archive::set_status(tx, id, ArchiveStatus::Unparsed, None))
                .await?;
            self.count("unparsed");
            return Ok(Processed::Unparsed);
        };
        let body = doc.body;
        let parsed = tokio::task::spawn_blocking(move || parse(&body))
            .await
            .context("parser task panicked")?;
        let mut report = match parsed {
            Ok(r) => r,
            Err(reason) => {
                let detail = reason.clone();
                self.store
                    .write(move |tx| {
                        archive::set_status(tx, id, ArchiveStatus::ParseFailed, Some(&detail))
                    })
                    .await?;
                self.store
                    .record_problem(
                        "jma.parse",
                        format!("気象庁電文を解析できませんでした（保管番号 {id}）: {reason}"),
                        Some(doc.url.clone()),
                    )
                    .await;
                self.count("parse_failed");
                return Ok(Processed::ParseFailed(reason));
            }
        };
        if report.data_type.is_empty() {
            report.data_type = doc.data_type.clone().unwrap_or_default();
        }
        let (scope, outcome) = states.apply(&report, self.table.as_ref());
        let processed = match (&outcome.disposition, scope) {
            (Disposition::Applied, Some(scope)) => Processed::Applied {
                scope,
                events: outcome.events.len(),
            },
            (Disposition::Duplicate, _) => Processed::Duplicate,
            (Disposition::Ignored(r), _) => Processed::Ignored(format!("{r:?}")),
            (Disposition::Applied, None) => Processed::Ignored("no scope".into()),
        };
        let persisted = match scope {
            Some(scope) if outcome.disposition == Disposition::Applied => {
                let touched: Vec<(String, MuniState)> = outcome
                    .touched
                    .iter()
                    .filter_map(|m| {
                        states
                            .scope(scope)
                            .munis
                            .get(m)
                            .map(|s| (m.clone(), s.clone()))
                    })
                    .collect();
                let key = ReportKey::of(&report);
                let report_dt = report.head.report_datetime;
                let events = outcome.events.clone();
                self.store
                    .write(move |tx| {
                        persist(tx, scope, &touched, &key, report_dt, &events, id)?;
                        archive::set_status(tx, id, ArchiveStatus::Applied, None)?;
                        last_event_id(tx)
                    })
                    .await
            }
            _ => {
                let (status, detail) = match &processed {
                    Processed::Duplicate => (ArchiveStatus::Duplicate, None),
                    Processed::Ignored(r) => (ArchiveStatus::Ignored, Some(r.clone())),
                    _ => (ArchiveStatus::Ignored, None),
                };
                self.store
                    .write(move |tx| {
                        archive::set_status(tx, id, status, detail.as_deref())?;
                        last_event_id(tx)
                    })
                    .await
            }
        };
        let last_id = match persisted {
            Ok(v) => v,
            Err(e) => {
                // The in-memory state is ahead of the database: reload it, and leave the row `stored`
                // so it is processed again.
                *states = self.store.read(load_states).await?;
                return Err(e.context(format!("persisting the result of archive row {id}")));
            }
        };
        self.after_apply(&doc.url, id, &outcome).await;
        self.count(match &processed {
            Processed::Applied { .. } => "applied",
            Processed::Duplicate => "duplicate",
            _ => "ignored",
        });
        self.last_event.send_replace(last_id);
        Ok(processed)
    }

    async fn after_apply(&self, url: &str, id: i64, outcome: &ApplyOutcome) {
        if let Some(m) = &self.metrics {
            for e in &outcome.events {
                m.inc(
                    "sonae_jma_warning_events_total",
                    "Active-warning changes, by scope and kind of change.",
                    &[("scope", e.scope.as_str()), ("change", e.change.as_str())],
                );
            }
        }
        let fresh: Vec<(String, String)> = {
            let mut seen = self
                .reported_unknown
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            outcome
                .unknown_codes
                .iter()
                .filter(|c| seen.insert((*c).clone()))
                .cloned()
                .collect()
        };
        for (dt, code) in fresh {
            self.store
                .record_problem(
                    "jma.codes",
                    format!("未知の警報コード「{code}」（{dt}、保管番号 {id}）を無視しました。コード表の更新が必要です"),
                    Some(url.to_string()),
                )
                .await;
        }
        for note in &outcome.notes {
            self.store
                .record_problem(
                    "jma.state",
                    format!("{note}（保管番号 {id}）"),
                    Some(url.to_string()),
                )
                .await;
        }
    }

    fn count(&self, outcome: &'static str) {
        if let Some(m) = &self.metrics {
            m.inc(
                "sonae_jma_reports_total",
                "Archived telegrams processed, by outcome.",
                &[("outcome", outcome)],
            );
        }
    }
}

fn utc(dt: DateTime<FixedOffset>) -> String {
    dt.with_timezone(&Utc).to_rfc3339()
}

fn persist(
    tx: &Transaction<'_>,
    scope: Scope,
    touched: &[(String, MuniState)],
    key: &ReportKey,
    report_dt: Option<DateTime<FixedOffset>>,
    events: &[WarningEvent],
    archive_id: i64,
) -> anyhow::Result<()> {
    let s = scope.as_str();
    for (code, muni) in touched {
        tx.execute(
            "INSERT INTO jma_state (scope, municipality, json) VALUES (?1, ?2, ?3)
             ON CONFLICT (scope, municipality) DO UPDATE SET json = excluded.json",
            params![s, code, serde_json::to_string(muni)?],
        )?;
        tx.execute(
            "DELETE FROM jma_active WHERE scope = ?1 AND municipality = ?2",
            params![s, code],
        )?;
        for w in muni.effective.values() {
            tx.execute(
                "INSERT INTO jma_active (scope, municipality, municipality_name, phenomenon, code, name, severity,
                   level, data_type, report_datetime, active_since)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    s,
                    code,
                    muni.name,
                    w.phenomenon,
                    w.code,
                    w.name,
                    format!("{:?}", w.severity),
                    w.level,
                    w.data_type,
                    w.report_datetime.to_rfc3339(),
                    w.active_since.to_rfc3339()
                ],
            )?;
        }
    }
    if let Some(dt) = report_dt {
        tx.execute(
            "INSERT OR IGNORE INTO jma_applied (scope, key, report_datetime, archive_id) VALUES (?1, ?2, ?3, ?4)",
            params![s, key.0, utc(dt), archive_id],
        )?;
    }
    let now = Utc::now().to_rfc3339();
    for e in events {
        tx.execute(
            "INSERT INTO jma_events (at, scope, municipality, phenomenon, change, code_before, code_after,
               report_datetime, archive_id, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                now,
                s,
                e.municipality,
                e.phenomenon,
                e.change.as_str(),
                e.before.as_ref().map(|w| w.code.clone()),
                e.after.as_ref().map(|w| w.code.clone()),
                e.report.report_datetime.to_rfc3339(),
                archive_id,
                serde_json::to_string(e)?
            ],
        )?;
    }
    Ok(())
}

fn last_event_id(c: &Connection) -> anyhow::Result<i64> {
    Ok(
        c.query_row("SELECT coalesce(max(id), 0) FROM jma_events", [], |r| {
            r.get(0)
        })?,
    )
}

/// Events with an id above `after`, oldest first, for consumers (the disaster engine) that remember the last
/// id they handled. A row that does not read as an event comes back as its error, so the consumer can move
/// past it and tell operators instead of stalling on it.
pub fn events_after(
    c: &Connection,
    after: i64,
) -> anyhow::Result<Vec<(i64, Result<WarningEvent, String>)>> {
    let mut stmt = c.prepare("SELECT id, json FROM jma_events WHERE id > ?1 ORDER BY id")?;
    let rows = stmt
        .query_map([after], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .map(|(id, json)| {
            let e = serde_json::from_str::<WarningEvent>(&json).map_err(|e| e.to_string());
            (id, e)
        })
        .collect())
}

/// Deletes apply-once keys older than [`APPLIED_RETENTION_DAYS`] before the newest one.
pub fn prune_applied(tx: &Transaction<'_>) -> anyhow::Result<usize> {
    let newest: Option<String> =
        tx.query_row("SELECT max(report_datetime) FROM jma_applied", [], |r| {
            r.get(0)
        })?;
    let Some(cut) = newest
        .and_then(|n| DateTime::parse_from_rfc3339(&n).ok())
        .map(|n| n.with_timezone(&Utc) - chrono::Duration::days(APPLIED_RETENTION_DAYS))
    else {
        return Ok(0);
    };
    Ok(tx.execute(
        "DELETE FROM jma_applied WHERE report_datetime < ?1",
        [cut.to_rfc3339()],
    )?)
}

/// Reads the persisted state, dropping apply-once keys older than [`APPLIED_RETENTION_DAYS`].
pub fn load_states(c: &Connection) -> anyhow::Result<States> {
    let mut states = States::default();
    let mut stmt = c.prepare("SELECT scope, municipality, json FROM jma_state")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (scope, code, json) = row?;
        let muni: MuniState = serde_json::from_str(&json)
            .with_context(|| format!("jma_state row ({scope}, {code}) is not valid state JSON"))?;
        scope_of(&mut states, &scope)?.munis.insert(code, muni);
    }
    // Relative to the newest applied report, not the wall clock: the cut-off is a function of the data, so a
    // restart gives the same state whatever the date.
    let newest: Option<String> =
        c.query_row("SELECT max(report_datetime) FROM jma_applied", [], |r| {
            r.get(0)
        })?;
    let cutoff = newest
        .and_then(|n| DateTime::parse_from_rfc3339(&n).ok())
        .map(|n| n.with_timezone(&Utc) - chrono::Duration::days(APPLIED_RETENTION_DAYS));
    let mut stmt = c.prepare("SELECT scope, key, report_datetime FROM jma_applied")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (scope, key, at) = row?;
        let at = DateTime::parse_from_rfc3339(&at)
            .with_context(|| format!("jma_applied report_datetime {at:?}"))?;
        if cutoff.is_some_and(|cut| at.with_timezone(&Utc) < cut) {
            continue;
        }
        scope_of(&mut states, &scope)?
            .applied
            .insert(ReportKey(key), at);
    }
    Ok(states)
}

fn scope_of<'a>(states: &'a mut States, scope: &str) -> anyhow::Result<&'a mut WarningState> {
    match scope {
        "real" => Ok(&mut states.real),
        "drill" => Ok(&mut states.drill),
        other => anyhow::bail!("unknown state scope {other:?}"),
    }
}

/// Rebuilds the state from the archive alone, in archive order, with the given parser and table. Used to
/// audit the live state (they must be equal) and to rebuild after a parser or code-table fix.
pub fn replay(c: &Connection, parse: &ParseFn, table: &dyn CodeTable) -> anyhow::Result<States> {
    let mut states = States::default();
    for id in archive::all_ids(c)? {
        let Some(doc) = archive::get(c, id)? else {
            continue;
        };
        let Ok(mut report) = parse(&doc.body) else {
            continue;
        };
        if report.data_type.is_empty() {
            report.data_type = doc.data_type.clone().unwrap_or_default();
        }
        states.apply(&report, table);
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::jma::report::{DocStatus, InfoType};
    use crate::jma::state::tests::{report, table};

    /// A parser over a fixed set of documents: the body is the document's name.
    fn parser(docs: Vec<(&str, Report)>) -> ParseFn {
        let map: HashMap<Vec<u8>, Report> = docs
            .into_iter()
            .map(|(n, r)| (n.as_bytes().to_vec(), r))
            .collect();
        Arc::new(move |b: &[u8]| {
            map.get(b)
                .cloned()
                .ok_or_else(|| "not a JMA document: root element <html>".to_string())
        })
    }

    fn docs() -> Vec<(&'static str, Report)> {
        let r = |dt: &str, at: &str, kinds: &'static [(&'static str, &'static str)]| {
            report(
                dt,
                DocStatus::Normal,
                InfoType::Issue,
                at,
                &[("0620100", "山形市", kinds)],
            )
        };
        vec![
            ("a", r("VPWW55", "10:00", &[("03", "発表")])),
            ("b", r("VPWW54", "10:03", &[("03", "発表")])),
            ("c", r("VPWW55", "11:00", &[("43", "発表")])),
            ("d", r("VPWW55", "12:00", &[("43", "解除")])),
            (
                "drill",
                report(
                    "VPWW54",
                    DocStatus::Drill,
                    InfoType::Issue,
                    "10:00",
                    &[("0620100", "山形市", &[("33", "発表")])],
                ),
            ),
        ]
    }

    async fn archive_doc(store: &Store, url: &str, body: &str) -> i64 {
        let (u, b) = (url.to_string(), body.as_bytes().to_vec());
        store
            .write(move |tx| archive::insert(tx, &u, Utc::now(), &b, None))
            .await
            .unwrap()
    }

    fn events(store: &Store) -> Vec<(String, String, String, i64)> {
        store
            .read_blocking(|c| {
                let mut s = c.prepare(
                    "SELECT scope, phenomenon, change, archive_id FROM jma_events ORDER BY id",
                )?;
                let rows = s
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .unwrap()
    }

    #[tokio::test]
    async fn a_restart_resumes_the_persisted_state_and_a_replay_of_the_archive_gives_the_same_state(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let parse = parser(docs());
        let p = Pipeline::open(store.clone(), Some(parse.clone()), Arc::new(table), None)
            .await
            .unwrap();
        let mut rx = p.subscribe();
        for (i, name) in ["a", "b", "drill"].iter().enumerate() {
            archive_doc(&store, &format!("http://x/{i}.xml"), name).await;
        }
        p.drain().await.unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 2);
        let live = p.states().await;
        drop(p);

        // Restart: the state is loaded, not rebuilt; the next report continues from it.
        let p = Pipeline::open(store.clone(), Some(parse.clone()), Arc::new(table), None)
            .await
            .unwrap();
        assert_eq!(p.states().await, live);
        archive_doc(&store, "http://x/c.xml", "c").await;
        // The same document under another URL (e.g. a mirror) is a duplicate.
        archive_doc(&store, "http://mirror/c.xml", "c").await;
        let out = p.drain().await.unwrap();
        assert_eq!(
            out[0].1,
            Processed::Applied {
                scope: Scope::Real,
                events: 1
            }
        );
        assert_eq!(out[1].1, Processed::Duplicate);
        let ev = events(&store);
        assert_eq!(
            ev.iter()
                .map(|e| (e.0.as_str(), e.2.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("real", "issued"),
                ("drill", "issued"),
                ("real", "escalated")
            ]
        );
        assert_eq!(ev[2].3, 4, "events carry the archive id of their telegram");
        let typed = store.read_blocking(|c| events_after(c, 2)).unwrap();
        assert_eq!(typed.len(), 1);
        let e = typed[0].1.as_ref().unwrap();
        assert_eq!(e.after.as_ref().unwrap().code, "43");
        assert_eq!(
            e.before.as_ref().unwrap().active_since,
            crate::jma::state::tests::t("10:00")
        );
        let active: Vec<(String, String)> = store
            .read_blocking(|c| {
                let mut s = c.prepare("SELECT scope, code FROM jma_active ORDER BY scope")?;
                let rows = s
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .unwrap();
        assert_eq!(
            active,
            vec![("drill".into(), "33".into()), ("real".into(), "43".into())]
        );

        let replayed = store.read_blocking(|c| replay(c, &parse, &table)).unwrap();
        assert_eq!(replayed, p.states().await);
        assert_eq!(
            replayed.real.get("0620100", "大雨").unwrap().active_since,
            crate::jma::state::tests::t("10:00")
        );
    }

    #[tokio::test]
    async fn a_parse_failure_is_kept_in_the_archive_and_recorded_as_a_problem_with_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let p = Pipeline::open(store.clone(), Some(parser(docs())), Arc::new(table), None)
            .await
            .unwrap();
        let id = archive_doc(&store, "http://x/bad.xml", "<html>").await;
        let out = p.drain().await.unwrap();
        assert!(matches!(&out[0].1, Processed::ParseFailed(r) if r.contains("not a JMA document")));
        let (status, body): (String, Vec<u8>) = store
            .read_blocking(move |c| {
                Ok(c.query_row(
                    "SELECT status, body FROM jma_archive WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .unwrap();
        assert_eq!(
            (status.as_str(), body.as_slice()),
            ("parse_failed", b"<html>".as_slice())
        );
        let msg: String = store
            .read_blocking(|c| {
                Ok(c.query_row(
                    "SELECT message FROM problems WHERE source = 'jma.parse'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert!(msg.contains(&format!("保管番号 {id}")), "{msg}");
        // Draining again does not retry or re-report it.
        assert!(p.drain().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn telegrams_archived_before_the_parser_was_wired_or_before_a_crash_are_processed_at_the_next_start(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let p = Pipeline::open(store.clone(), None, Arc::new(table), None)
            .await
            .unwrap();
        archive_doc(&store, "http://x/a.xml", "a").await;
        assert_eq!(p.drain().await.unwrap()[0].1, Processed::Unparsed);
        drop(p);
        // "Crash": archived, never processed.
        archive_doc(&store, "http://x/c.xml", "c").await;
        let p = Pipeline::open(store.clone(), Some(parser(docs())), Arc::new(table), None)
            .await
            .unwrap();
        let out = p.drain().await.unwrap();
        assert_eq!(out.len(), 2);
        let ev = events(&store);
        assert_eq!(
            ev.iter().map(|e| e.2.as_str()).collect::<Vec<_>>(),
            vec!["issued", "escalated"]
        );
        assert_eq!(
            p.states().await.real.get("0620100", "大雨").unwrap().code,
            "43"
        );
    }
}
