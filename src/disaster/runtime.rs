//! The disaster runtime: the glue that runs the pure engine on the real state and turns its decision into
//! outbox rows and a rich-menu switch.
//!
//! One *cycle* (on every JMA pipeline bump, and every [`TICK`] for manual holds and the quiet period) runs in
//! ONE `BEGIN IMMEDIATE` transaction:
//! 1. read the active-warning state (`jma_state`), the change events since the last cycle (`jma_events`, by
//!    the cursor in `disaster_runtime`), the manual hold (`mode_state`) and the engine memory;
//! 2. adapt them to the engine's types ([`warnings_of`], [`change_of`]) and call [`engine::decide`];
//! 3. compose every step's messages per district ([`super::plan_step`]) with the 3 nearest open shelters
//!    suited to the hazard from the district's centre and the hazard links, resolve recipients (active
//!    residents of the district, opted-in only where the policy says so; drills go to the drill audience);
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
use serde_json::Value;
use tokio::sync::Notify;

use super::compose::{self, Templates};
use super::engine::{
    self, ActiveWarning, Audience, ChangeKind, DistrictRef, Family, ManualHold, Mode, Phenomenon,
    ReportStatus, Severity, WarningChange,
};
use crate::app::Context;
use crate::delivery::sender::{SendOutcome, Sender};
use crate::delivery::Enqueued;
use crate::delivery::Recipients;
use crate::health::Status;
use crate::ids::LineUserId;
use crate::jma::pipeline::{load_states, Pipeline};
use crate::jma::state::{self as js, Scope, WarningEvent};
use crate::line::client::{self, LineClient, RetryKey};
use crate::line::message::Message;
use crate::line::richmenu;
use crate::place::shelter::Need;
use crate::place::status::{load_statuses, ShelterStatus};
use crate::place::{Hazard, LatLon, PlaceData};

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
    pub config: Arc<crate::config::Config>,
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
        {
            let mut stmt =
                tx.prepare("SELECT id, json FROM jma_events WHERE id > ?1 ORDER BY id")?;
            let rows = stmt.query_map([cursor], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (id, json) = row?;
                last = last.max(id);
                match serde_json::from_str::<WarningEvent>(&json) {
                    Ok(e) => changes.push(change_of(&e)),
                    Err(e) => report
                        .problems
                        .push(format!("jma_events の {id} 行目を読めませんでした: {e}")),
                }
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
            &self.config.disaster,
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
        let status = |id: &str| statuses.get(id).copied().unwrap_or(ShelterStatus::Open);
        let mut planned = Vec::with_capacity(decision.steps.len());
        for step in &decision.steps {
            let hazard = Hazard::parse(step.phenomenon.shelter_hazard());
            let plans = super::plan_step(
                &self.templates,
                step,
                &self.config.server.public_url,
                &self.config.disaster.drill_audience,
                |d, _| self.shelters_for(d, hazard, &status),
                |muni| self.links_for(muni, hazard),
                |d, a| {
                    let audience = crate::resident::Audience {
                        districts: vec![d.id.clone()],
                        level3_opt_in_only: a == Audience::OptedIn,
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
            let (mode, reason) = match decision.mode {
                Mode::Disaster => (
                    crate::mode::Mode::Disaster,
                    "警報等の発表により災害モードへ",
                ),
                Mode::Normal => (crate::mode::Mode::Normal, "警報等の解除により平常時へ"),
            };
            crate::mode::set_mode(tx, mode, "engine", reason, now)?;
        }
        tx.execute(
            "INSERT INTO disaster_runtime (id, last_event_id) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET last_event_id = excluded.last_event_id",
            [last],
        )?;

        report.mode = Some(decision.mode);
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

    fn shelters_for(
        &self,
        d: &DistrictRef,
        hazard: Option<Hazard>,
        status: &impl Fn(&str) -> ShelterStatus,
    ) -> Vec<compose::ShelterRef> {
        let (Some(district), Some(h)) = (self.place.districts.get(&d.id), hazard) else {
            return Vec::new();
        };
        self.place
            .shelters
            .nearest_open(
                district.label_point,
                Need::Flee(h),
                SHELTERS_PER_ALERT,
                status,
            )
            .into_iter()
            .map(|(s, m)| compose::ShelterRef {
                name: s.name.clone(),
                distance_m: m,
                map_url: shelter_map_link(s.at),
            })
            .collect()
    }

    fn links_for(&self, municipality: &str, hazard: Option<Hazard>) -> compose::HazardLinks {
        let Some(at) = self
            .place
            .districts
            .all()
            .iter()
            .find(|d| d.jma_code == municipality)
            .map(|d| d.label_point)
        else {
            return compose::HazardLinks::default();
        };
        let l = self.config.place.links.links(hazard, at, municipality);
        compose::HazardLinks {
            kikikuru: l.kikikuru,
            hazard_map: Some(l.hazard_map),
            jma: Some(l.jma_warning),
        }
    }
}

/// The outbox sender over the real LINE client: multicast with the batch's retry key.
pub struct LineSender {
    pub client: LineClient,
}

impl Sender for LineSender {
    async fn multicast(
        &self,
        retry_key: uuid::Uuid,
        recipients: &[String],
        messages: &[Value],
    ) -> SendOutcome {
        let mut typed = Vec::with_capacity(messages.len());
        for m in messages {
            match serde_json::from_value::<Message>(m.clone()) {
                Ok(m) => typed.push(m),
                Err(e) => {
                    return SendOutcome::Rejected {
                        status: 0,
                        message: format!("stored message is not a LINE message object: {e}"),
                    }
                }
            }
        }
        let to: Vec<LineUserId> = recipients.iter().map(LineUserId::new).collect();
        let Some(key) = RetryKey::parse(&retry_key.hyphenated().to_string()) else {
            return SendOutcome::Rejected {
                status: 0,
                message: format!("retry key {retry_key} is not a UUID"),
            };
        };
        match self.client.multicast(&to, typed, key).await {
            Ok(client::SendOutcome::Accepted { request_id, .. }) => {
                SendOutcome::Accepted { request_id }
            }
            Ok(client::SendOutcome::AlreadyAccepted { request_id }) => {
                SendOutcome::AlreadyAccepted { request_id }
            }
            Ok(client::SendOutcome::Rejected { status, body }) => SendOutcome::Rejected {
                status,
                message: body.message,
            },
            Ok(client::SendOutcome::QuotaExhausted { .. }) => SendOutcome::QuotaExhausted,
            Ok(client::SendOutcome::GaveUp {
                attempts,
                last_error,
            }) => SendOutcome::Transient {
                message: format!("{attempts} attempt(s): {last_error}"),
            },
            Err(e) => SendOutcome::Rejected {
                status: 0,
                message: e.to_string(),
            },
        }
    }
}

/// Spawns the outbox sender (always: other features enqueue too) and, when the city's districts load, the
/// disaster cycle. Returns the sender's wake-up.
pub async fn spawn(ctx: &Context, pipeline: Option<Arc<Pipeline>>) -> anyhow::Result<Arc<Notify>> {
    let wake = Arc::new(Notify::new());
    ctx.tasks.spawn({
        let (store, cfg, metrics, health, wake, token) = (
            ctx.store.clone(),
            ctx.config.delivery.clone(),
            ctx.metrics.clone(),
            ctx.health.clone(),
            wake.clone(),
            ctx.shutdown.clone(),
        );
        let sender = Arc::new(LineSender {
            client: ctx.line.client.clone(),
        });
        async move {
            if let Err(e) = crate::delivery::sender::run_sender(
                store, sender, cfg, metrics, health, wake, token,
            )
            .await
            {
                tracing::error!(error = %format!("{e:#}"), "outbox sender stopped");
            }
        }
    });

    if !ctx.config.place.districts.is_file() {
        tracing::info!(
            districts = %ctx.config.place.districts.display(),
            "place.districts is not a file; disaster mode is not running"
        );
        ctx.health.set(
            "disaster",
            Status::Degraded,
            "地区データ（place.districts）がないため災害モードの判定を行っていません",
        );
        return Ok(wake);
    }
    let place = Arc::new(PlaceData::load(&ctx.config.place).context("loading place data")?);
    for p in &place.problems {
        ctx.store
            .record_problem("place", format!("地区・避難所データの不正な行: {p}"), None)
            .await;
    }
    register_resident_handlers(ctx, place.clone());
    let templates = Templates::from_config(&ctx.config.disaster.templates_dir)
        .context("loading alert templates")?;
    let rt = Arc::new(Runtime {
        config: ctx.config.clone(),
        districts: districts_of(&place),
        place,
        templates,
    });
    let ctx2 = ctx.clone();
    let w = wake.clone();
    ctx.tasks
        .spawn(async move { run(ctx2, rt, pipeline, w).await });
    Ok(wake)
}

async fn run(ctx: Context, rt: Arc<Runtime>, pipeline: Option<Arc<Pipeline>>, wake: Arc<Notify>) {
    let mut bump = pipeline.as_ref().map(|p| p.subscribe());
    let mut next_switch_try = tokio::time::Instant::now();
    loop {
        // Never decide on the middle of a batch of telegrams (see `Pipeline::hold`).
        let held = match &pipeline {
            Some(p) => Some(p.hold().await),
            None => None,
        };
        let rt2 = rt.clone();
        let res = ctx
            .store
            .write(move |tx| rt2.cycle_tx(tx, Utc::now()))
            .await;
        drop(held);
        match res {
            Ok(r) => {
                for p in r.problems {
                    ctx.store.record_problem("disaster", p, None).await;
                }
                if r.alerts_created > 0 {
                    tracing::info!(
                        alerts = r.alerts_created,
                        recipients = r.recipients,
                        plan_ms = r.plan_time.as_millis() as u64,
                        outbox_ms = r.commit_time.as_millis() as u64,
                        "disaster alerts enqueued"
                    );
                    wake.notify_one();
                }
                if r.mode_changed {
                    tracing::warn!(mode = ?r.mode, "disaster mode changed");
                }
                ctx.health.set("disaster", Status::Ok, "");
                if let Some(mode) = r.mode {
                    if tokio::time::Instant::now() >= next_switch_try
                        && !reconcile_menu(&ctx, mode).await
                    {
                        next_switch_try = tokio::time::Instant::now() + SWITCH_RETRY;
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "disaster cycle failed");
                ctx.health.set(
                    "disaster",
                    Status::Degraded,
                    "災害モードの判定に失敗しました",
                );
                ctx.store
                    .record_problem(
                        "disaster",
                        "災害モードの判定に失敗しました".into(),
                        Some(format!("{e:#}")),
                    )
                    .await;
            }
        }
        // Cancel-safety: every branch only waits; the cycle above is not part of the select, so a shutdown
        // never interrupts a transaction.
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = async {
                match bump.as_mut() {
                    Some(b) => { if b.changed().await.is_err() { std::future::pending::<()>().await } }
                    None => std::future::pending::<()>().await,
                }
            } => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

/// Switches the account's rich menu when its mode differs from the engine's. Returns false on failure.
async fn reconcile_menu(ctx: &Context, mode: Mode) -> bool {
    let want = match mode {
        Mode::Disaster => richmenu::Mode::Emergency,
        Mode::Normal => richmenu::Mode::Normal,
    };
    match richmenu::current_mode(&ctx.store).await {
        Ok(m) if m == want => return true,
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "rich-menu mode unknown; switching");
        }
    }
    match richmenu::switch_account(ctx, want).await {
        Ok(report) => {
            let detail = serde_json::to_value(&report).unwrap_or_default();
            let _ = ctx
                .store
                .write(move |tx| {
                    crate::store::Store::audit(tx, "system", "richmenu.switch", &detail)?;
                    Ok(())
                })
                .await;
            tracing::info!(mode = want.as_str(), "rich menu switched");
            true
        }
        Err(e) => {
            ctx.store
                .record_problem(
                    "richmenu",
                    format!(
                        "リッチメニューを「{}」に切り替えられませんでした（{}秒後に再試行します）",
                        want.as_str(),
                        SWITCH_RETRY.as_secs()
                    ),
                    Some(format!("{e:#}")),
                )
                .await;
            false
        }
    }
}

// ------------------------------------------------------------------------------------------ resident handlers

/// Registers the resident handlers (`resident::flow`) in the LINE event router: follow → welcome and district
/// registration, unfollow → inactive, location / postback / text → registration steps. Replies use the
/// event's reply token (free, single use); in standby mode nothing is sent.
pub fn register_resident_handlers(ctx: &Context, place: Arc<PlaceData>) {
    use crate::line::events::{handler_fn, Event, Route};
    use crate::resident::{self, flow};

    async fn reply(ctx: &Context, ev: &Event, messages: Vec<Value>) -> anyhow::Result<()> {
        let Some(token) = ev.reply_token.as_deref() else {
            return Ok(());
        };
        if ev.mode == "standby" || messages.is_empty() {
            return Ok(());
        }
        let typed = messages
            .into_iter()
            .map(serde_json::from_value::<Message>)
            .collect::<Result<Vec<_>, _>>()
            .context("registration reply is not a LINE message")?;
        let outcome = ctx.line.client.reply(token, typed).await?;
        if !outcome.is_success() {
            tracing::warn!(outcome = outcome.label(), "registration reply not accepted");
        }
        Ok(())
    }

    let city = ctx.config.place.city_name.clone();
    let router = ctx.line.events.clone();
    {
        let (place, city) = (place.clone(), city.clone());
        router.register(
            Route::Follow,
            handler_fn(move |ctx: Context, ev: Event| {
                let (place, city) = (place.clone(), city.clone());
                async move {
                    let Some(user) = ev.user_id().cloned() else {
                        return Ok(());
                    };
                    let returning = match resident::follow(&ctx.store, user).await? {
                        resident::FollowOutcome::New => None,
                        resident::FollowOutcome::Returning { district_id } => district_id,
                    };
                    let msgs = flow::welcome(&place.districts, &city, returning.as_deref());
                    reply(&ctx, &ev, msgs).await
                }
            }),
        );
    }
    router.register(
        Route::Unfollow,
        handler_fn(|ctx: Context, ev: Event| async move {
            if let Some(user) = ev.user_id().cloned() {
                resident::unfollow(&ctx.store, user).await?;
            }
            Ok(())
        }),
    );
    let answer = |which: &'static str, place: Arc<PlaceData>, city: String| {
        handler_fn(move |ctx: Context, ev: Event| {
            let (place, city) = (place.clone(), city.clone());
            async move {
                let Some(user) = ev.user_id().cloned() else {
                    return Ok(());
                };
                let d = &place.districts;
                let r = match which {
                    "location" => ev
                        .message
                        .as_ref()
                        .and_then(|m| LatLon::new(m.latitude?, m.longitude?))
                        .map(|at| flow::on_location(d, &city, at)),
                    "postback" => ev
                        .postback
                        .as_ref()
                        .and_then(|p| flow::on_postback(d, &p.data)),
                    _ => ev
                        .message
                        .as_ref()
                        .and_then(|m| m.text.as_deref())
                        .and_then(|t| flow::on_text(d, t)),
                };
                let Some(r) = r else { return Ok(()) };
                resident::apply_effect(&ctx.store, user, r.effect).await?;
                reply(&ctx, &ev, r.messages).await
            }
        })
    };
    router.register(
        Route::Location,
        answer("location", place.clone(), city.clone()),
    );
    router.register(
        Route::Postback,
        answer("postback", place.clone(), city.clone()),
    );
    router.register(Route::Text, answer("text", place, city));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/demo");
    const TELEGRAMS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/feeds/demo-heavy-rain/telegrams"
    );

    fn runtime() -> Runtime {
        let mut config = crate::config::Config::default();
        config.place.city_name = "札幌市".into();
        config.place.districts = format!("{DEMO}/sapporo-districts.geojson").into();
        config.place.shelters =
            vec![format!("{DEMO}/sapporo-01100-shitei-kinkyu-hinanbasho.csv").into()];
        let place = Arc::new(PlaceData::load(&config.place).expect("demo place data loads"));
        Runtime {
            config: Arc::new(config),
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
                // Following but not registered, and registered but gone: neither is alerted.
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
            for who in ["1", "2"] {
                assert!(
                    users.iter().filter(|x| **x == u(who)).count() <= 1,
                    "alert {id} lists resident {who} twice"
                );
            }
            assert!(
                !users.contains(&u("3")) && !users.contains(&u("4")),
                "alert {id}: {users:?}"
            );
        }
        for (_, _, users) in &everyone {
            assert!(users.contains(&u("2")), "both districts are in 札幌市");
        }
        // 札幌市 has thousands of districts; only the two with a registered resident got a message composed.
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
                Some(2),
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
