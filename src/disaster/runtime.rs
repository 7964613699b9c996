//! The disaster runtime: the glue that runs the pure engine on the real state and turns its decision into
//! outbox rows and a rich-menu switch.
//!
//! One *cycle* (the scheduled job `disaster.cycle`: on every JMA pipeline bump, and every [`TICK`] for manual
//! holds and the quiet period) runs in ONE `BEGIN IMMEDIATE` transaction:
//! 1. read the active-warning state (`jma_state`), the change events since the last cycle (`jma_events`, by
//!    the cursor in `disaster_runtime`), the manual hold (`mode_state`) and the engine memory;
//! 2. adapt them to the engine's types ([`warnings_of`], [`change_of`]) and call [`engine::decide`];
//! 3. compose every step's messages per district ([`super::plan_step`]) with up to 3 shelters suited to the
//!    hazard ([`Phenomenon::shelter_need`]) near the district's centre (within `disaster.shelter_max_km`, of
//!    the district's municipality; opened ones first) and the hazard links centred on the district, resolve
//!    recipients (active residents of the district, opted-in only where the policy says so; drills go to the
//!    drill audience), and one municipality-level message for friends without a district when the step
//!    reaches them (`disaster.unregistered`);
//! 4. write memory, mode (`disaster_state`, `mode_state`, audit), the cursor and every alert with its batches.
//!
//! Then the sender is woken and the rich menu is reconciled with the mode: whenever the account's menu mode
//! (`line_richmenu_state`) differs from the engine's, the account is switched (retried every
//! [`SWITCH_RETRY`] on failure, each failure recorded as a problem). Because the switch is a reconciliation
//! and not an event, a crash between the commit and the switch is repaired at the next start.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction};

use tokio::sync::Notify;

use super::compose::{self, Templates};
use super::engine::{
    self, ActiveWarning, Audience, ChangeKind, DistrictRef, Family, ManualHold, Mode, Phenomenon,
    ReportStatus, Severity, WarningChange,
};
use crate::delivery::{Enqueued, Outbox, Recipients};
use crate::health::Status;
use crate::infra::Infra;
use crate::jma::pipeline::{events_after, load_states, Pipeline};
use crate::jma::state::{self as js, Scope, WarningEvent};
use crate::line::client::LineClient;
use crate::line::richmenu;
use crate::place::links::LinkTemplates;
use crate::place::status::{self as shelter_status, load_statuses, ShelterStatus};
use crate::place::{LatLon, Need, PlaceData};

/// Cycle period without a pipeline bump: picks up manual holds and ends the quiet period.
pub const TICK: Duration = Duration::from_secs(5);
/// After a failed rich-menu switch, try again after this long.
pub const SWITCH_RETRY: Duration = Duration::from_secs(60);
/// Shelters per district in an alert (issue 5, item 5).
pub const SHELTERS_PER_ALERT: usize = 3;

// ------------------------------------------------------------------------------------------ adapters (pure)

/// Engine phenomenon of a `jma::state` phenomenon key (the names `jma::codes` gives).
pub fn phenomenon_of(key: &str) -> Phenomenon {
    match key {
        "大雨" => Phenomenon::HeavyRain,
        "土砂災害" => Phenomenon::Landslide,
        "洪水" => Phenomenon::Flood,
        "高潮" => Phenomenon::StormSurge,
        "暴風" => Phenomenon::Storm,
        "暴風雪" => Phenomenon::Snowstorm,
        "大雪" => Phenomenon::HeavySnow,
        "波浪" => Phenomenon::Waves,
        "津波" => Phenomenon::Tsunami,
        "地震" => Phenomenon::Earthquake,
        "火山" => Phenomenon::Volcano,
        _ => Phenomenon::Other,
    }
}

/// Engine family (policy selectors `weather:33`, `landslide:3` …) of a telegram data type.
pub fn family_of(data_type: &str) -> Family {
    match data_type {
        "VXWW50" => Family::Landslide,
        t if t.starts_with("VXKO") => Family::Flood,
        t if t.starts_with("VTSE") => Family::Tsunami,
        t if t.starts_with("VXSE") => Family::Intensity,
        t if t.starts_with("VFVO") => Family::Volcano,
        _ => Family::Weather,
    }
}

fn severity_of(s: js::Severity) -> Severity {
    match s {
        js::Severity::Advisory => Severity::Advisory,
        js::Severity::Warning => Severity::Warning,
        js::Severity::Danger => Severity::Danger,
        js::Severity::Emergency => Severity::Emergency,
    }
}

fn status_of(scope: Scope) -> ReportStatus {
    match scope {
        Scope::Real => ReportStatus::Actual,
        Scope::Drill => ReportStatus::Exercise,
    }
}

fn utc(t: DateTime<chrono::FixedOffset>) -> DateTime<Utc> {
    t.with_timezone(&Utc)
}

/// Every effective warning of both scopes, in the engine's terms. The issue time is when the current kind
/// took effect (`kind_since`), so a warning announced after downtime carries its original time.
pub fn warnings_of(states: &js::States) -> Vec<ActiveWarning> {
    let mut out = Vec::new();
    for scope in [Scope::Real, Scope::Drill] {
        for (code, muni) in &states.scope(scope).munis {
            for w in muni.effective.values() {
                out.push(ActiveWarning {
                    status: status_of(scope),
                    municipality: code.clone(),
                    municipality_name: muni.name.clone(),
                    phenomenon: phenomenon_of(&w.phenomenon),
                    family: family_of(&w.data_type),
                    code: w.code.clone(),
                    name: w.name.clone(),
                    severity: severity_of(w.severity),
                    level: w.level,
                    issued_at: utc(w.kind_since),
                    report_datetime: utc(w.report_datetime),
                    report_key: format!(
                        "{}/{}/{}",
                        w.data_type,
                        w.report_datetime.to_rfc3339(),
                        w.code
                    ),
                });
            }
        }
    }
    out
}

/// One change event in the engine's terms (`changed` — same level, other code — is a continuation).
pub fn change_of(e: &WarningEvent) -> WarningChange {
    let r = &e.report;
    WarningChange {
        status: status_of(e.scope),
        municipality: e.municipality.clone(),
        phenomenon: phenomenon_of(&e.phenomenon),
        kind: match e.change {
            js::Change::Issued => ChangeKind::Issued,
            js::Change::Escalated => ChangeKind::Escalated,
            js::Change::Downgraded => ChangeKind::Downgraded,
            js::Change::Changed => ChangeKind::Continued,
            js::Change::Lifted => ChangeKind::Lifted,
            js::Change::Corrected => ChangeKind::Corrected,
            js::Change::Cancelled => ChangeKind::Cancelled,
        },
        report_key: format!(
            "{}/{}/{}/{}/{}/{}",
            r.data_type,
            r.office,
            r.report_datetime.to_rfc3339(),
            r.info_type,
            r.event_id,
            r.serial
        ),
        report_datetime: utc(r.report_datetime),
    }
}

/// The engine's districts from the place data.
pub fn districts_of(place: &PlaceData) -> Vec<DistrictRef> {
    place
        .districts
        .all()
        .iter()
        .map(|d| DistrictRef {
            id: d.id.clone(),
            name: d.name.clone(),
            municipality: d.jma_code.clone(),
        })
        .collect()
}

/// A map link for one shelter (地理院地図 centred on it).
pub fn shelter_map_link(at: LatLon) -> String {
    format!("https://maps.gsi.go.jp/#17/{:.6}/{:.6}/", at.lat, at.lon)
}

// ------------------------------------------------------------------------------------------ the cycle

/// What one cycle did.
#[derive(Clone, Debug, Default)]
pub struct CycleReport {
    pub mode: Option<Mode>,
    /// The rich-menu variant the mode should show ([`super::menu_variant`]; `None`: keep what is shown).
    pub menu_variant: Option<&'static str>,
    pub mode_changed: bool,
    pub steps: usize,
    pub alerts_created: usize,
    pub recipients: usize,
    pub problems: Vec<String>,
    /// Time spent composing messages and resolving recipients, and writing the outbox rows.
    pub plan_time: std::time::Duration,
    pub commit_time: std::time::Duration,
}

/// Everything a cycle needs that does not change while the daemon runs.
pub struct Runtime {
    /// `[disaster]`: policy, drill audience, report age, quiet period.
    pub config: super::DisasterConfig,
    /// `server.public_url`: where residents' links point.
    pub public_url: String,
    /// `place.links`: キキクル, hazard-map and JMA warning links.
    pub links: LinkTemplates,
    pub place: Arc<PlaceData>,
    pub districts: Vec<DistrictRef>,
    pub templates: Templates,
}

impl Runtime {
    /// Runs one cycle in one write transaction (see the module docs).
    pub fn cycle_tx(
        &self,
        tx: &Transaction<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<CycleReport> {
        let mut report = CycleReport::default();
        let states = load_states(tx).context("loading the active-warning state")?;
        let warnings = warnings_of(&states);

        let cursor: i64 = tx
            .query_row(
                "SELECT last_event_id FROM disaster_runtime WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let mut changes = Vec::new();
        let mut last = cursor;
        for (id, event) in events_after(tx, cursor)? {
            last = last.max(id);
            match event {
                Ok(e) => changes.push(change_of(&e)),
                Err(e) => report
                    .problems
                    .push(format!("jma_events の {id} 行目を読めませんでした: {e}")),
            }
        }

        let holds = match crate::mode::current_mode(tx) {
            Ok(m) if m.manual_hold => vec![ManualHold {
                id: "console".into(),
                by: m.hold_by.unwrap_or_default(),
                since: m.hold_since.unwrap_or(now),
                note: m.reason,
            }],
            Ok(_) => Vec::new(),
            Err(e) => {
                report
                    .problems
                    .push(format!("手動保持の状態を読めませんでした: {e:#}"));
                Vec::new()
            }
        };

        let memory = super::load_state(tx)?;
        let decision = engine::decide(
            &self.config,
            &memory,
            engine::EngineInput {
                now,
                warnings: &warnings,
                changes: &changes,
                holds: &holds,
                districts: &self.districts,
            },
        );

        let planning = std::time::Instant::now();
        let statuses = load_statuses(tx)?;
        let status = |id: &str| shelter_status::status_of(&statuses, id);
        let mut planned = Vec::with_capacity(decision.steps.len());
        for step in &decision.steps {
            let need = step.phenomenon.shelter_need();
            let plans = super::plan_step(
                &self.templates,
                step,
                &self.public_url,
                &self.config.drill_audience,
                self.config.shelter_max_km,
                |d, _| self.shelters_for(d, need, &status),
                |muni, d| self.links_for(muni, d, need),
                |d, a| {
                    let audience = crate::resident::Audience {
                        districts: d.map(|d| vec![d.id.clone()]).unwrap_or_default(),
                        level3_opt_in_only: a == Audience::OptedIn,
                        unregistered: d.is_none(),
                    };
                    Ok(if crate::resident::audience_is_empty(tx, &audience)? {
                        Recipients::nobody()
                    } else {
                        Recipients::Residents(audience)
                    })
                },
            )
            .with_context(|| format!("composing {}", super::summary(step)))?;
            planned.push((step.clone(), plans));
        }

        report.plan_time = planning.elapsed();
        let committing = std::time::Instant::now();
        let enqueued = super::commit(tx, &decision, &planned, now.timestamp_millis())?;
        report.commit_time = committing.elapsed();
        if decision.mode_changed() {
            let reason = match decision.mode {
                Mode::Disaster => "警報等の発表により災害モードへ",
                Mode::Normal => "警報等の解除により平常時へ",
            };
            crate::mode::set_mode(tx, decision.mode, "engine", reason, now)?;
        }
        tx.execute(
            "INSERT INTO disaster_runtime (id, last_event_id) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET last_event_id = excluded.last_event_id",
            [last],
        )?;

        report.mode = Some(decision.mode);
        report.menu_variant = super::menu_variant(&decision);
        report.mode_changed = decision.mode_changed();
        report.steps = decision.steps.len();
        for e in enqueued {
            if let Enqueued::Created { recipients, .. } = e {
                report.alerts_created += 1;
                report.recipients += recipients;
            }
        }
        Ok(report)
    }

    /// The shelters a district's alert names: [`crate::place::Shelters::suggest`] from the district's label
    /// point within `disaster.shelter_max_km` (and its municipality when `shelter_same_municipality`).
    pub fn shelters_for(
        &self,
        d: &DistrictRef,
        need: Need,
        status: &impl Fn(&str) -> ShelterStatus,
    ) -> Vec<compose::ShelterRef> {
        let Some(district) = self.place.districts.get(&d.id) else {
            return Vec::new();
        };
        let reach = self.config.shelter_reach();
        let limits = self
            .place
            .limits_for(district, reach.max_km, reach.same_municipality);
        self.place
            .shelters
            .suggest(
                district.label_point,
                need,
                SHELTERS_PER_ALERT,
                &limits,
                status,
            )
            .into_iter()
            .map(|s| compose::ShelterRef {
                name: s.shelter.name.clone(),
                distance_m: s.distance_m,
                map_url: shelter_map_link(s.shelter.at),
                opened: s.status == ShelterStatus::Open,
            })
            .collect()
    }

    /// Hazard links centred on the district's own label point (`None`: on the municipality's centre, for the
    /// message to friends without a district).
    pub fn links_for(
        &self,
        municipality: &str,
        district: Option<&DistrictRef>,
        need: Need,
    ) -> compose::HazardLinks {
        let at = match district {
            Some(d) => self.place.districts.get(&d.id).map(|d| d.label_point),
            None => self.place.districts.centre_of(municipality),
        };
        let Some(at) = at else {
            return compose::HazardLinks::default();
        };
        let hazard = match need {
            Need::Flee(h) => Some(h),
            Need::Stay => None,
        };
        let l = self.links.links(hazard, at, municipality);
        compose::HazardLinks {
            kikikuru: l.kikikuru,
            hazard_map: Some(l.hazard_map),
            jma: Some(l.jma_warning),
        }
    }
}

/// What the disaster cycle needs besides the infrastructure.
pub struct Deps {
    pub config: super::DisasterConfig,
    pub public_url: String,
    pub links: LinkTemplates,
    /// `None` when `place.districts` is not configured: disaster mode is not decided.
    pub place: Option<Arc<PlaceData>>,
    pub client: LineClient,
    pub outbox: Outbox,
    pub pipeline: Option<Arc<Pipeline>>,
}

/// Schedules the disaster cycle (`disaster.cycle`: every [`TICK`] and on every JMA pipeline bump) when the
/// city's districts are loaded (always, unless `place.enabled = false`).
pub fn spawn(infra: &Infra, deps: Deps) -> anyhow::Result<()> {
    let Some(place) = deps.place else {
        tracing::warn!("place.enabled = false: no districts, so disaster mode is not decided");
        infra.health.set(
            "disaster",
            Status::Degraded,
            "地区・避難所データを使わない設定（place.enabled = false）のため、災害モードの判定を行っていません",
        );
        return Ok(());
    };
    let templates =
        Templates::from_config(&deps.config.templates_dir).context("loading alert templates")?;
    let rt = Arc::new(Runtime {
        districts: districts_of(&place),
        config: deps.config,
        public_url: deps.public_url,
        links: deps.links,
        place,
        templates,
    });
    let cycle = Arc::new(Cycle {
        rt,
        infra: infra.clone(),
        client: deps.client,
        outbox: deps.outbox,
        pipeline: deps.pipeline.clone(),
        next_switch_try: tokio::sync::Mutex::new(tokio::time::Instant::now()),
    });
    let wake = Arc::new(Notify::new());
    if let Some(p) = &deps.pipeline {
        // The pipeline announces new events on a watch channel; the job is woken through a Notify.
        let (mut bump, w, token) = (p.subscribe(), wake.clone(), infra.shutdown.clone());
        infra.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    changed = bump.changed() => match changed {
                        Ok(()) => w.notify_one(),
                        Err(_) => return,
                    },
                }
            }
        });
    }
    infra.scheduler.add(
        crate::scheduler::Job::every("disaster.cycle", TICK, move || {
            let c = cycle.clone();
            async move {
                c.run_once().await;
                Ok(())
            }
        })
        .woken_by(wake),
    );
    Ok(())
}

/// One scheduled run of the cycle and its follow-ups (wake the sender, reconcile the rich menu).
struct Cycle {
    rt: Arc<Runtime>,
    infra: Infra,
    client: LineClient,
    outbox: Outbox,
    pipeline: Option<Arc<Pipeline>>,
    next_switch_try: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Cycle {
    async fn run_once(&self) {
        let store = &self.infra.store;
        // Never decide on the middle of a batch of telegrams (see `Pipeline::hold`).
        let held = match &self.pipeline {
            Some(p) => Some(p.hold().await),
            None => None,
        };
        let rt = self.rt.clone();
        let res = store.write(move |tx| rt.cycle_tx(tx, Utc::now())).await;
        drop(held);
        match res {
            Ok(r) => {
                for p in r.problems {
                    store.record_problem("disaster", p, None).await;
                }
                if r.alerts_created > 0 {
                    tracing::info!(
                        alerts = r.alerts_created,
                        recipients = r.recipients,
                        plan_ms = r.plan_time.as_millis() as u64,
                        outbox_ms = r.commit_time.as_millis() as u64,
                        "disaster alerts enqueued"
                    );
                    self.outbox.wake();
                }
                if r.mode_changed {
                    tracing::warn!(mode = ?r.mode, "disaster mode changed");
                }
                self.infra.health.set("disaster", Status::Ok, "");
                if let Some(mode) = r.mode {
                    let mut next = self.next_switch_try.lock().await;
                    if tokio::time::Instant::now() >= *next
                        && !self.reconcile_menu(mode, r.menu_variant).await
                    {
                        *next = tokio::time::Instant::now() + SWITCH_RETRY;
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "disaster cycle failed");
                self.infra.health.set(
                    "disaster",
                    Status::Degraded,
                    "災害モードの判定に失敗しました",
                );
                store
                    .record_problem(
                        "disaster",
                        "災害モードの判定に失敗しました".into(),
                        Some(format!("{e:#}")),
                    )
                    .await;
            }
        }
    }

    /// Switches the account's rich menu when its mode (or the variant of it) differs from the engine's
    /// (`variant` `None`: keep the variant shown while the mode stays). Returns false on failure.
    async fn reconcile_menu(&self, mode: Mode, variant: Option<&str>) -> bool {
        let store = &self.infra.store;
        let shown = match richmenu::current_menu_set(store).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "rich-menu mode unknown; switching");
                None
            }
        };
        let want = richmenu::MenuSet {
            mode,
            variant: match (variant, &shown) {
                (Some(v), _) => v.to_string(),
                (None, Some(s)) if s.mode == mode => s.variant.clone(),
                (None, _) => String::new(),
            },
        };
        // Compare with what the account would really show (a variant without a synced menu falls back to
        // the mode's own), so a missing variant does not switch again every cycle.
        let resolved = match richmenu::entry_of(store, &want).await {
            Ok(Some((set, _))) => set,
            _ => want.clone(),
        };
        if shown.as_ref() == Some(&resolved) {
            return true;
        }
        let want = resolved;
        match richmenu::switch_account_to(&self.client, store, &want).await {
            Ok(report) => {
                let detail = serde_json::to_value(&report).unwrap_or_default();
                let _ = store
                    .write(move |tx| {
                        crate::store::Store::audit(tx, "system", "richmenu.switch", &detail)?;
                        Ok(())
                    })
                    .await;
                tracing::info!(menu = %want.label(), "rich menu switched");
                true
            }
            Err(e) => {
                store
                    .record_problem(
                        "richmenu",
                        format!(
                            "リッチメニューを「{}」に切り替えられませんでした（{}秒後に再試行します）",
                            if want.variant == "snow" {
                                "災害モード（雪）"
                            } else {
                                want.mode.label_ja()
                            },
                            SWITCH_RETRY.as_secs()
                        ),
                        Some(format!("{e:#}")),
                    )
                    .await;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::LineUserId;
    use crate::store::Store;

    const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/demo");
    const TELEGRAMS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/feeds/demo-heavy-rain/telegrams"
    );

    fn runtime() -> Runtime {
        let place_cfg = crate::place::PlaceConfig {
            city_name: "札幌市".into(),
            districts: format!("{DEMO}/sapporo-districts.geojson").into(),
            shelters: vec![format!("{DEMO}/sapporo-01100-shitei-kinkyu-hinanbasho.csv").into()],
            ..Default::default()
        };
        let place = Arc::new(PlaceData::load(&place_cfg).expect("demo place data loads"));
        Runtime {
            config: Default::default(),
            public_url: "http://127.0.0.1:8080".into(),
            links: place_cfg.links.clone(),
            districts: districts_of(&place),
            place,
            templates: Templates::embedded().expect("embedded templates"),
        }
    }

    /// Applies the demo telegrams with the real parser and code table and stores the state the way the
    /// pipeline does (`jma_state`).
    async fn apply_telegrams(store: &Store, files: &[&str]) {
        let parse = crate::jma::daemon_parser().expect("parser wired");
        let table = crate::jma::daemon_code_table();
        let mut states = store.read(load_states).await.unwrap();
        for f in files {
            let bytes = std::fs::read(format!("{TELEGRAMS}/{f}")).unwrap();
            let report = parse(&bytes).unwrap();
            states.apply(&report, table.as_ref());
        }
        store
            .write(move |tx| {
                for (scope, ws) in [("real", &states.real), ("drill", &states.drill)] {
                    for (code, muni) in &ws.munis {
                        tx.execute(
                            "INSERT OR REPLACE INTO jma_state (scope, municipality, json) VALUES (?1, ?2, ?3)",
                            rusqlite::params![scope, code, serde_json::to_string(muni)?],
                        )?;
                    }
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// (alert kind, user id) → how many times the user is a recipient of that alert.
    fn recipients_per_alert(c: &rusqlite::Connection) -> Vec<(i64, String, Vec<String>)> {
        let mut st = c
            .prepare("SELECT a.id, a.kind, b.recipients FROM delivery_alerts a JOIN delivery_batches b ON b.alert_id = a.id ORDER BY a.id")
            .unwrap();
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)))
            .unwrap();
        let mut out: Vec<(i64, String, Vec<String>)> = Vec::new();
        for row in rows {
            let (id, kind, rec): (i64, String, String) = row.unwrap();
            let users = rec.lines().map(str::to_string);
            match out.last_mut() {
                Some(last) if last.0 == id => last.2.extend(users),
                _ => out.push((id, kind, users.collect())),
            }
        }
        out
    }

    #[tokio::test]
    async fn a_level4_warning_alerts_each_registered_resident_once_switches_the_mode_and_is_not_repeated(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let rt = Arc::new(runtime());
        let d1 = rt.districts[0].id.clone();
        let d2 = rt.districts[rt.districts.len() - 1].id.clone();
        store
            .write(move |tx| {
                let u = |s: &str| LineUserId::new(format!("U{s:0>32}"));
                crate::resident::follow_tx(tx, &u("1"))?;
                crate::resident::set_district_tx(tx, &u("1"), &d1)?;
                crate::resident::follow_tx(tx, &u("2"))?;
                crate::resident::set_district_tx(tx, &u("2"), &d2)?;
                // Following but not registered (gets the municipality-level copy), and registered but gone
                // (gets nothing).
                crate::resident::follow_tx(tx, &u("3"))?;
                crate::resident::follow_tx(tx, &u("4"))?;
                crate::resident::set_district_tx(tx, &u("4"), &d1)?;
                crate::resident::unfollow_tx(tx, &u("4"))?;
                Ok(())
            })
            .await
            .unwrap();

        // 大雨注意報 → 大雨警報 → 土砂災害危険警報 (レベル4): the policy switches to disaster mode.
        apply_telegrams(&store, &["01_VPWW55.xml", "02_VPWW55.xml", "03_VPWW56.xml"]).await;
        let now = at("2026-09-12T10:15:00+09:00");
        let rt2 = rt.clone();
        let r = store.write(move |tx| rt2.cycle_tx(tx, now)).await.unwrap();
        assert_eq!(r.mode, Some(Mode::Disaster));
        assert!(r.mode_changed);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(r.alerts_created >= 1);

        let alerts = store.read(|c| Ok(recipients_per_alert(c))).await.unwrap();
        let u = |s: &str| format!("U{s:0>32}");
        let everyone: Vec<_> = alerts
            .iter()
            .filter(|(_, _, users)| users.contains(&u("1")))
            .collect();
        assert!(
            !everyone.is_empty(),
            "no alert reached resident 1: {alerts:?}"
        );
        for (id, _, users) in &alerts {
            for who in ["1", "2", "3"] {
                assert!(
                    users.iter().filter(|x| **x == u(who)).count() <= 1,
                    "alert {id} lists resident {who} twice"
                );
            }
            assert!(!users.contains(&u("4")), "alert {id}: {users:?}");
        }
        for (_, _, users) in &everyone {
            assert!(users.contains(&u("2")), "both districts are in 札幌市");
            assert!(users.contains(&u("3")), "the unregistered friend too");
        }
        // 札幌市 has thousands of districts; only the two with a registered resident got a message composed,
        // plus the one for friends without a district.
        let per_alert: Vec<(i64, i64)> = store
            .read(|c| {
                let mut s = c.prepare(
                    "SELECT a.id, count(m.id) FROM delivery_alerts a
                     LEFT JOIN delivery_messages m ON m.alert_id = a.id GROUP BY a.id",
                )?;
                let v = s
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(v)
            })
            .await
            .unwrap();
        for (id, _, _) in &everyone {
            assert_eq!(
                per_alert.iter().find(|(a, _)| a == id).map(|(_, n)| *n),
                Some(3),
                "alert {id}: {per_alert:?}"
            );
        }
        let mode = store.read(crate::mode::current_mode).await.unwrap();
        assert_eq!(mode.mode, crate::mode::Mode::Disaster);

        // The same state a minute later: nothing new.
        let rt3 = rt.clone();
        let later = now + chrono::Duration::minutes(1);
        let again = store
            .write(move |tx| rt3.cycle_tx(tx, later))
            .await
            .unwrap();
        assert_eq!(again.alerts_created, 0);
        assert_eq!(again.mode, Some(Mode::Disaster));
    }

    /// Issue 12 item 11: a friend who never registered a district must still hear a 特別警報 for the
    /// city (the municipality-level message), exactly once, and never a second copy on top of a district one.
    #[tokio::test]
    async fn an_unregistered_friend_gets_the_special_warning_once_and_registered_residents_only_their_districts_copy(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let rt = Arc::new(runtime());
        let d1 = rt.districts[0].id.clone();
        let u = |s: &str| LineUserId::new(format!("U{s:0>32}"));
        store
            .write(move |tx| {
                crate::resident::follow_tx(tx, &u("1"))?;
                crate::resident::set_district_tx(tx, &u("1"), &d1)?;
                // Friends who never registered: one following, one who blocked the account.
                crate::resident::follow_tx(tx, &u("a"))?;
                crate::resident::follow_tx(tx, &u("b"))?;
                crate::resident::unfollow_tx(tx, &u("b"))?;
                Ok(())
            })
            .await
            .unwrap();
        // 大雨注意報 → 大雨警報 → 土砂災害危険警報 → 大雨特別警報 (レベル5).
        apply_telegrams(
            &store,
            &[
                "01_VPWW55.xml",
                "02_VPWW55.xml",
                "03_VPWW56.xml",
                "04_VPWW55.xml",
            ],
        )
        .await;
        let now = at("2026-09-12T11:45:00+09:00");
        let rt2 = rt.clone();
        let r = store.write(move |tx| rt2.cycle_tx(tx, now)).await.unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        // (summary, recipients, message body) of every batch.
        let batches: Vec<(String, Vec<String>, String)> = store
            .read(|c| {
                let mut st = c.prepare(
                    "SELECT a.summary, b.recipients, m.body FROM delivery_batches b
                     JOIN delivery_alerts a ON a.id = b.alert_id JOIN delivery_messages m ON m.id = b.message_id",
                )?;
                let v = st
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?.lines().map(str::to_string).collect(),
                            r.get::<_, String>(2)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(v)
            })
            .await
            .unwrap();
        let id = |s: &str| format!("U{s:0>32}");
        let special: Vec<_> = batches
            .iter()
            .filter(|(summary, _, _)| summary.contains("大雨特別警報"))
            .collect();
        let count = |who: &str| {
            special
                .iter()
                .map(|(_, users, _)| users.iter().filter(|x| **x == id(who)).count())
                .sum::<usize>()
        };
        assert_eq!(
            count("a"),
            1,
            "the unregistered friend gets the 特別警報 once: {special:?}"
        );
        assert_eq!(
            count("1"),
            1,
            "the registered resident only their district's copy"
        );
        assert_eq!(count("b"), 0, "a friend who blocked the account");
        // The copy for friends without a district: municipality-level, no district shelters, the shelter
        // map and a one-tap 「地区を登録」.
        let (summary, _, body) = special
            .iter()
            .find(|(_, users, _)| users.contains(&id("a")))
            .unwrap();
        assert!(summary.contains("地区未登録"), "{summary}");
        let msg: serde_json::Value = serde_json::from_str(body).unwrap();
        let text = msg.to_string();
        assert!(text.contains("札幌市 全域"), "{text}");
        assert!(text.contains("お住まいの地区を登録すると"), "{text}");
        assert!(
            !text.contains("maps.gsi.go.jp"),
            "no district shelters: {text}"
        );
        assert!(
            text.contains("\"data\":\"action=register\"") && text.contains("地区を登録"),
            "{text}"
        );
        assert!(
            text.contains("/shelters?hazard=flood") && !text.contains("district="),
            "{text}"
        );
    }

    /// Issue 12 item 11: each district's キキクル and hazard-map links are centred on that district, not on the
    /// municipality's first one (札幌市's real demo districts).
    #[test]
    fn each_districts_links_are_centred_on_its_own_point() {
        let rt = runtime();
        let picks = [1, 2_000, 5_000];
        let mut seen = Vec::new();
        for i in picks {
            let d = &rt.districts[i];
            let at = rt.place.districts.get(&d.id).unwrap().label_point;
            let l = rt.links_for("0110000", Some(d), Need::Flee(crate::place::Hazard::Flood));
            let (lat, lon) = (format!("{:.6}", at.lat), format!("{:.6}", at.lon));
            let kikikuru = l.kikikuru.unwrap();
            assert!(
                kikikuru.contains(&format!("lat:{lat}/lon:{lon}"))
                    && kikikuru.ends_with("elements:flood"),
                "{} {kikikuru}",
                d.name
            );
            let map = l.hazard_map.unwrap();
            assert!(map.contains(&format!("ll={lat},{lon}")), "{} {map}", d.name);
            seen.push(map);
        }
        let first = rt.place.districts.all()[0].label_point;
        for m in &seen {
            assert!(!m.contains(&format!("ll={:.6},{:.6}", first.lat, first.lon)));
        }
        seen.dedup();
        assert_eq!(seen.len(), picks.len());
        // Without a district (friends who never registered one): the municipality's centre.
        let centre = rt.place.districts.centre_of("0110000").unwrap();
        let l = rt.links_for("0110000", None, Need::Stay);
        assert!(
            l.kikikuru.is_none(),
            "no キキクル layer for weather that keeps people indoors"
        );
        assert!(l
            .hazard_map
            .unwrap()
            .contains(&format!("ll={:.6},{:.6}", centre.lat, centre.lon)));
    }

    #[test]
    fn adapters_map_the_state_vocabulary_onto_the_engine_one() {
        assert_eq!(phenomenon_of("大雨"), Phenomenon::HeavyRain);
        assert_eq!(phenomenon_of("土砂災害"), Phenomenon::Landslide);
        assert_eq!(phenomenon_of("未知"), Phenomenon::Other);
        assert_eq!(family_of("VXWW50"), Family::Landslide);
        assert_eq!(family_of("VPWW55"), Family::Weather);
        assert_eq!(family_of("VXKO50"), Family::Flood);
    }
}
