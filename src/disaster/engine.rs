//! The disaster engine: a pure function from (active warnings, recent changes, policy, manual holds, `now`,
//! the engine's own memory) to (mode, alert steps, new memory). No I/O, no clock: everything is an input.
//!
//! # Rules
//! * **Current state only.** The engine compares the warnings in force *now* with what it last announced
//!   ([`EngineState::announced`]). A warning issued and lifted while Sonae was down is in neither and sends
//!   nothing; one still in force and never announced is announced once, with its original issue time.
//! * **Stale telegrams never trigger a send by themselves.** A warning never announced whose latest
//!   ReportDateTime is older than `max_report_age_secs` is listed in [`Decision::stale`] and neither sent nor
//!   counted as a mode trigger. Follow-ups (lift, downgrade, cancellation) of an announced warning always go out.
//! * **Steps per thread.** A thread is (status, municipality, phenomenon); several items of one thread (two
//!   rivers in one town) collapse to the highest-ranked one. Steps: issue, escalation, downgrade, lift (解除),
//!   correction (訂正), cancellation (取消: tells those already alerted that the alert was withdrawn; a 訂正
//!   that leaves nothing in force is a cancellation too, never a 解除 of a warning that was not real).
//! * **Mode.** Disaster while a `SwitchMode` warning is in force or a manual hold exists; back to normal only
//!   when neither has been seen for `quiet_period_secs`. Releasing the last hold with no warning trigger in
//!   the quiet window returns to normal at once (an operator's hold is not a warning).
//! * **訓練 / 試験.** 訓練 warnings follow the same rules in a separate memory, never move the real mode, and
//!   every step is marked `drill` with the [`Audience::Drill`] audience (staff only). 試験 reaches nobody.
//! * **Observed intensity** (震度) is an event: the adapter keeps it in the active list as long as it should
//!   hold the mode (e.g. a few hours); when it leaves the list no 解除 is sent (a 取消 still is).
//! * **Idempotency.** Every step has a deterministic [`AlertStep::key`] (SHA-256 of status, municipality,
//!   phenomenon, step kind and the source of the step); the outbox refuses a second alert with the same key,
//!   and the memory returned in [`Decision::state`] makes the same input produce no step the second time.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::policy::{Action, DisasterConfig, Unregistered};
use crate::place::{Hazard, Need};

/// JMA `Control/Status`: 通常 (actual), 訓練 (exercise), 試験 (test).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    Actual,
    Exercise,
    Test,
}

impl ReportStatus {
    pub fn from_ja(s: &str) -> Option<Self> {
        match s.trim() {
            "通常" => Some(ReportStatus::Actual),
            "訓練" => Some(ReportStatus::Exercise),
            "試験" => Some(ReportStatus::Test),
            _ => None,
        }
    }
}

/// Which JMA telegram family a code belongs to (codes repeat across families: 40 is a weather code and a
/// river flood code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// 気象警報・注意報 (VPWW53/54, VPWW55–61).
    Weather,
    /// 土砂災害警戒情報 (VXWW50).
    Landslide,
    /// 指定河川洪水予報 (VXKOii).
    Flood,
    /// 津波警報・注意報 (VTSE41).
    Tsunami,
    /// Observed seismic intensity (VXSE51–53); the code is `MaxInt` (`5+`, `6-`, …).
    Intensity,
    /// 噴火警報 (VFVO50).
    Volcano,
}

impl Family {
    pub fn key(self) -> &'static str {
        match self {
            Family::Weather => "weather",
            Family::Landslide => "landslide",
            Family::Flood => "flood",
            Family::Tsunami => "tsunami",
            Family::Intensity => "intensity",
            Family::Volcano => "volcano",
        }
    }
    pub fn from_key(s: &str) -> Option<Self> {
        [
            Family::Weather,
            Family::Landslide,
            Family::Flood,
            Family::Tsunami,
            Family::Intensity,
            Family::Volcano,
        ]
        .into_iter()
        .find(|f| f.key() == s)
    }
}

/// 注意報 < 警報 < 危険警報 < 特別警報.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Advisory,
    Warning,
    Danger,
    Emergency,
}

impl Severity {
    pub fn ja(self) -> &'static str {
        match self {
            Severity::Advisory => "注意報",
            Severity::Warning => "警報",
            Severity::Danger => "危険警報",
            Severity::Emergency => "特別警報",
        }
    }
    pub fn from_ja(s: &str) -> Option<Self> {
        [
            Severity::Advisory,
            Severity::Warning,
            Severity::Danger,
            Severity::Emergency,
        ]
        .into_iter()
        .find(|v| v.ja() == s)
    }
    /// The 警戒レベル相当 implied when a warning carries none (tsunami, intensity, wind): 特別警報 5, 危険警報 4,
    /// 警報 3, 注意報 2. Used only for ranking and colour, never shown as a level.
    pub fn implied_level(self) -> u8 {
        match self {
            Severity::Advisory => 2,
            Severity::Warning => 3,
            Severity::Danger => 4,
            Severity::Emergency => 5,
        }
    }
}

/// The hazard a warning is about; a thread is one phenomenon in one municipality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phenomenon {
    HeavyRain,
    Landslide,
    Flood,
    StormSurge,
    Storm,
    Snowstorm,
    HeavySnow,
    Waves,
    Tsunami,
    Earthquake,
    Volcano,
    Other,
}

impl Phenomenon {
    pub const ALL: [Phenomenon; 12] = [
        Phenomenon::HeavyRain,
        Phenomenon::Landslide,
        Phenomenon::Flood,
        Phenomenon::StormSurge,
        Phenomenon::Storm,
        Phenomenon::Snowstorm,
        Phenomenon::HeavySnow,
        Phenomenon::Waves,
        Phenomenon::Tsunami,
        Phenomenon::Earthquake,
        Phenomenon::Volcano,
        Phenomenon::Other,
    ];

    pub fn ja(self) -> &'static str {
        match self {
            Phenomenon::HeavyRain => "大雨",
            Phenomenon::Landslide => "土砂災害",
            Phenomenon::Flood => "洪水",
            Phenomenon::StormSurge => "高潮",
            Phenomenon::Storm => "暴風",
            Phenomenon::Snowstorm => "暴風雪",
            Phenomenon::HeavySnow => "大雪",
            Phenomenon::Waves => "波浪",
            Phenomenon::Tsunami => "津波",
            Phenomenon::Earthquake => "地震",
            Phenomenon::Volcano => "火山",
            Phenomenon::Other => "その他",
        }
    }
    pub fn key(self) -> &'static str {
        match self {
            Phenomenon::HeavyRain => "heavy_rain",
            Phenomenon::Landslide => "landslide",
            Phenomenon::Flood => "flood",
            Phenomenon::StormSurge => "storm_surge",
            Phenomenon::Storm => "storm",
            Phenomenon::Snowstorm => "snowstorm",
            Phenomenon::HeavySnow => "heavy_snow",
            Phenomenon::Waves => "waves",
            Phenomenon::Tsunami => "tsunami",
            Phenomenon::Earthquake => "earthquake",
            Phenomenon::Volcano => "volcano",
            Phenomenon::Other => "other",
        }
    }
    /// Which shelters an alert about this phenomenon names — **the** hazard → shelter-type rule (also in
    /// ARCHITECTURE.md, "Which shelters an alert names"):
    ///
    /// | phenomenon | shelters |
    /// | --- | --- |
    /// | 大雨, 洪水 | 指定緊急避難場所 designated for 洪水 |
    /// | 土砂災害 | 指定緊急避難場所 designated for 崖崩れ・土石流・地滑り |
    /// | 高潮, 波浪 | 指定緊急避難場所 designated for 高潮 |
    /// | 津波 | 指定緊急避難場所 designated for 津波 |
    /// | 地震 | 指定緊急避難場所 designated for 地震 |
    /// | 火山 | 指定緊急避難場所 designated for 火山現象 |
    /// | 大雪, 暴風雪, 暴風, その他 | indoor 指定避難所 (not 福祉避難所) |
    ///
    /// Heavy rain means both flood and landslide; 洪水 is the safer default for lowland shelters, and the
    /// landslide thread has its own step. Weather that keeps people indoors must never send them to a site
    /// designated only for earthquakes — often a park or a school ground.
    pub fn shelter_need(self) -> Need {
        match self {
            Phenomenon::HeavyRain | Phenomenon::Flood => Need::Flee(Hazard::Flood),
            Phenomenon::Landslide => Need::Flee(Hazard::Landslide),
            Phenomenon::StormSurge | Phenomenon::Waves => Need::Flee(Hazard::StormSurge),
            Phenomenon::Tsunami => Need::Flee(Hazard::Tsunami),
            Phenomenon::Earthquake => Need::Flee(Hazard::Earthquake),
            Phenomenon::Volcano => Need::Flee(Hazard::Volcano),
            Phenomenon::Storm
            | Phenomenon::Snowstorm
            | Phenomenon::HeavySnow
            | Phenomenon::Other => Need::Stay,
        }
    }

    /// Snow is the emergency: disaster mode shows the snow variant of the emergency menu (with 除雪車マップ).
    pub fn is_snow(self) -> bool {
        matches!(self, Phenomenon::HeavySnow | Phenomenon::Snowstorm)
    }
}

/// One warning in force, as the active-warning state (`jma::state`) holds it. `disaster::runtime` adapts the
/// state's entries to this struct ([`super::runtime::warnings_of`]); the code tables (`jma::codes`) give
/// `family`, `severity` and `level`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveWarning {
    /// 通常 / 訓練 / 試験 of the telegram that put the warning in this state.
    pub status: ReportStatus,
    /// 7-digit JMA 市町村等 code.
    pub municipality: String,
    pub municipality_name: String,
    pub phenomenon: Phenomenon,
    pub family: Family,
    /// The kind code within `family` (`"33"`, `"3"`, `"40"`, `"52"`, `"5+"`).
    pub code: String,
    /// Display name, e.g. `大雨特別警報`, `レベル４氾濫危険警報`, `大津波警報`, `震度５強`.
    pub name: String,
    pub severity: Severity,
    /// 警戒レベル相当 (1–5) when the code has one.
    pub level: Option<u8>,
    /// When this kind was first issued (発表) for this area; shown to residents and kept across 継続.
    pub issued_at: DateTime<Utc>,
    /// Head/ReportDateTime of the latest telegram that confirmed this state.
    pub report_datetime: DateTime<Utc>,
    /// A stable id of that telegram (e.g. its URL, or EventID + Serial + InfoType).
    pub report_key: String,
}

impl ActiveWarning {
    fn rank(&self) -> (u8, Severity) {
        (
            self.level.unwrap_or(self.severity.implied_level()),
            self.severity,
        )
    }
}

/// A change event from the active-warning state. Only [`ChangeKind::Corrected`] and
/// [`ChangeKind::Cancelled`] change what the engine does (everything else follows from the state itself);
/// the other kinds are accepted so the runtime can pass the stream through unfiltered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WarningChange {
    pub status: ReportStatus,
    pub municipality: String,
    pub phenomenon: Phenomenon,
    pub kind: ChangeKind,
    /// The telegram that caused the change (the 訂正 or 取消 report).
    pub report_key: String,
    pub report_datetime: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Issued,
    Continued,
    Escalated,
    Downgraded,
    Lifted,
    /// InfoType 訂正.
    Corrected,
    /// InfoType 取消.
    Cancelled,
}

/// A district of the city (from `place`): alerts are composed and addressed per district.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistrictRef {
    pub id: String,
    pub name: String,
    /// 7-digit JMA 市町村等 code the district belongs to.
    pub municipality: String,
}

/// An operator's manual hold of disaster mode (console).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManualHold {
    pub id: String,
    pub by: String,
    pub since: DateTime<Utc>,
    pub note: String,
}

pub use crate::mode::Mode;

/// Why the mode is what it is (shown in the console and the audit log).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModeReason {
    /// Warnings that switch the mode are in force (thread keys).
    Warnings { triggers: Vec<String> },
    /// Operators hold the mode (hold ids).
    ManualHold { holds: Vec<String> },
    /// No trigger remains; waiting out the quiet period.
    QuietPeriod { until: DateTime<Utc> },
    /// Nothing triggers disaster mode.
    NoTrigger,
}

/// Who receives a step. The runtime resolves it to an audience (residents of `AlertStep::districts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Residents of the districts who opted in to level-3 style alerts.
    OptedIn,
    /// Every resident of the districts.
    Everyone,
    /// Only `disaster.drill_audience` (staff); used for every 訓練 step.
    Drill,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Issue,
    Escalation,
    Downgrade,
    Lift,
    Correction,
    Cancellation,
}

impl StepKind {
    pub fn key(self) -> &'static str {
        match self {
            StepKind::Issue => "issue",
            StepKind::Escalation => "escalation",
            StepKind::Downgrade => "downgrade",
            StepKind::Lift => "lift",
            StepKind::Correction => "correction",
            StepKind::Cancellation => "cancellation",
        }
    }
}

/// Delivery priority: the outbox claims higher values first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Normal,
    Alert,
    Disaster,
}

impl Priority {
    pub fn value(self) -> i64 {
        match self {
            Priority::Normal => 10,
            Priority::Alert => 50,
            Priority::Disaster => 100,
        }
    }
}

/// What a step says about one warning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WarningSnapshot {
    pub family: Family,
    pub code: String,
    pub name: String,
    pub severity: Severity,
    pub level: Option<u8>,
    pub issued_at: DateTime<Utc>,
    pub report_datetime: DateTime<Utc>,
    pub report_key: String,
}

impl From<&ActiveWarning> for WarningSnapshot {
    fn from(w: &ActiveWarning) -> Self {
        WarningSnapshot {
            family: w.family,
            code: w.code.clone(),
            name: w.name.clone(),
            severity: w.severity,
            level: w.level,
            issued_at: w.issued_at,
            report_datetime: w.report_datetime,
            report_key: w.report_key.clone(),
        }
    }
}

/// One alert step for one thread: what to tell, to whom, in which districts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertStep {
    /// Deterministic idempotency key (32 hex digits).
    pub key: String,
    /// `actual|exercise` + `/` + municipality + `/` + phenomenon key.
    pub thread: String,
    pub kind: StepKind,
    pub drill: bool,
    pub municipality: String,
    pub municipality_name: String,
    pub phenomenon: Phenomenon,
    /// The warning now in force (issue, escalation, downgrade, correction; cancellation when a warning
    /// remains after the withdrawn one), or `None` when nothing remains (lift, cancellation).
    pub current: Option<WarningSnapshot>,
    /// What residents were last told (all steps but issue).
    pub previous: Option<WarningSnapshot>,
    pub districts: Vec<DistrictRef>,
    pub audience: Audience,
    /// Friends who never registered a district also get this step, as one municipality-level message
    /// (`disaster.unregistered`; never for drills or opted-in audiences).
    #[serde(default)]
    pub unregistered: bool,
    pub priority: Priority,
    /// When the telegram behind this step was reported (ReportDateTime); for a lift, the lifting telegram
    /// when the change stream names it, else the decision time.
    pub reported_at: DateTime<Utc>,
}

/// What the engine remembers having announced for one thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Announced {
    pub municipality: String,
    pub municipality_name: String,
    pub phenomenon: Phenomenon,
    pub warning: WarningSnapshot,
    /// The widest audience ever addressed in this thread; follow-ups go to it.
    pub audience: Audience,
    /// Whether unregistered friends were ever addressed in this thread; if so, follow-ups reach them too.
    #[serde(default)]
    pub unregistered: bool,
    /// Report key of the last 訂正/取消 acted on, so the same change is not acted on twice.
    pub last_change_key: Option<String>,
}

/// The engine's memory. Persist it in the same transaction as the decision's outbox rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    pub mode: Mode,
    pub mode_since: Option<DateTime<Utc>>,
    /// Last time a warning trigger for disaster mode was in force.
    pub last_trigger_at: Option<DateTime<Utc>>,
    /// Keyed by thread key.
    pub announced: BTreeMap<String, Announced>,
}

impl Default for EngineState {
    fn default() -> Self {
        EngineState {
            mode: Mode::Normal,
            mode_since: None,
            last_trigger_at: None,
            announced: BTreeMap::new(),
        }
    }
}

/// Everything the engine looks at.
#[derive(Clone, Copy, Debug)]
pub struct EngineInput<'a> {
    pub now: DateTime<Utc>,
    /// Current active warnings, every status (試験 entries are ignored).
    pub warnings: &'a [ActiveWarning],
    /// Changes since the previous run (only 訂正 and 取消 matter).
    pub changes: &'a [WarningChange],
    pub holds: &'a [ManualHold],
    /// The city's districts; warnings for municipalities without a district are not the city's.
    pub districts: &'a [DistrictRef],
}

/// The engine's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub now: DateTime<Utc>,
    pub mode: Mode,
    pub previous_mode: Mode,
    pub reason: ModeReason,
    pub steps: Vec<AlertStep>,
    /// Threads not announced because their latest telegram is older than `max_report_age_secs`.
    pub stale: Vec<String>,
    /// The memory to persist with this decision.
    pub state: EngineState,
}

impl Decision {
    pub fn mode_changed(&self) -> bool {
        self.mode != self.previous_mode
    }
}

fn status_key(s: ReportStatus) -> &'static str {
    match s {
        ReportStatus::Actual => "actual",
        ReportStatus::Exercise => "exercise",
        ReportStatus::Test => "test",
    }
}

/// The thread key of a (status, municipality, phenomenon).
pub fn thread_key(status: ReportStatus, municipality: &str, phenomenon: Phenomenon) -> String {
    format!("{}/{municipality}/{}", status_key(status), phenomenon.key())
}

/// `sha256("sonae-step-v1|thread|kind|source")`, first 16 bytes as hex.
pub fn step_key(thread: &str, kind: StepKind, source: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"sonae-step-v1|");
    h.update(thread.as_bytes());
    h.update(b"|");
    h.update(kind.key().as_bytes());
    h.update(b"|");
    h.update(source.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Source of an issue/escalation/downgrade/lift step: the warning issuance itself (code + original issue
/// time), so a 継続 telegram with a new report key never looks like a new issuance.
fn issuance_source(w: &WarningSnapshot) -> String {
    format!("{}:{}@{}", w.family.key(), w.code, w.issued_at.to_rfc3339())
}

fn transition(from: &WarningSnapshot, to: &WarningSnapshot) -> String {
    format!("{}>{}", issuance_source(from), issuance_source(to))
}

/// Whether friends without a district get a step addressed to `audience` about a warning of `severity`.
fn reaches_unregistered(config: &DisasterConfig, audience: Audience, severity: Severity) -> bool {
    audience == Audience::Everyone
        && match config.unregistered {
            Unregistered::Everyone => true,
            Unregistered::SpecialOnly => severity == Severity::Emergency,
            Unregistered::None => false,
        }
}

fn audience_for(action: Action) -> Option<Audience> {
    match action {
        Action::Nothing => None,
        Action::AlertOptedIn => Some(Audience::OptedIn),
        Action::AlertAll | Action::SwitchMode => Some(Audience::Everyone),
    }
}

/// Decides the mode and the alert steps. Pure.
pub fn decide(config: &DisasterConfig, memory: &EngineState, input: EngineInput<'_>) -> Decision {
    let now = input.now;
    let max_age = Duration::seconds(config.max_report_age_secs as i64);
    let mut state = memory.clone();
    let mut steps = Vec::new();
    let mut stale = Vec::new();
    let mut triggers: BTreeSet<String> = BTreeSet::new();

    let mut districts_by_muni: BTreeMap<&str, Vec<DistrictRef>> = BTreeMap::new();
    for d in input.districts {
        districts_by_muni
            .entry(d.municipality.as_str())
            .or_default()
            .push(d.clone());
    }

    // The highest-ranked current warning per thread (試験 dropped, other cities dropped).
    let mut current: BTreeMap<String, (&ActiveWarning, Action)> = BTreeMap::new();
    for w in input.warnings {
        if w.status == ReportStatus::Test
            || !districts_by_muni.contains_key(w.municipality.as_str())
        {
            continue;
        }
        let key = thread_key(w.status, &w.municipality, w.phenomenon);
        let action = config.action_for(w);
        let better = match current.get(&key) {
            None => true,
            Some((old, old_action)) => (action, w.rank()) > (*old_action, old.rank()),
        };
        if better {
            current.insert(key, (w, action));
        }
    }
    // The latest 訂正/取消 per thread.
    let mut change_by_thread: BTreeMap<String, &WarningChange> = BTreeMap::new();
    for c in input.changes {
        if c.status == ReportStatus::Test
            || !matches!(c.kind, ChangeKind::Corrected | ChangeKind::Cancelled)
        {
            continue;
        }
        let key = thread_key(c.status, &c.municipality, c.phenomenon);
        match change_by_thread.get(&key) {
            Some(old) if old.report_datetime > c.report_datetime => {}
            _ => {
                change_by_thread.insert(key, c);
            }
        }
    }

    let mut any_change: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for c in input.changes {
        let key = thread_key(c.status, &c.municipality, c.phenomenon);
        let e = any_change.entry(key).or_insert(c.report_datetime);
        *e = (*e).max(c.report_datetime);
    }

    let threads: BTreeSet<String> = current
        .keys()
        .chain(memory.announced.keys())
        .cloned()
        .collect();

    for thread in threads {
        let cur = current.get(&thread).copied();
        let prev = memory.announced.get(&thread);
        let change = change_by_thread
            .get(&thread)
            .copied()
            .filter(|c| prev.is_none_or(|p| p.last_change_key.as_deref() != Some(&c.report_key)));
        let drill = thread.starts_with("exercise/");
        let priority_of = |a: Action| match (drill, a) {
            (true, _) => Priority::Normal,
            (false, Action::SwitchMode) => Priority::Disaster,
            _ => Priority::Alert,
        };
        let audience_of = |a: Audience| if drill { Audience::Drill } else { a };

        match (prev, cur) {
            (None, None) => {}
            (None, Some((w, action))) => {
                let Some(aud) = audience_for(action) else {
                    continue;
                };
                if now - w.report_datetime > max_age {
                    stale.push(thread.clone());
                    continue;
                }
                if action == Action::SwitchMode && !drill {
                    triggers.insert(thread.clone());
                }
                let snap = WarningSnapshot::from(w);
                let Some(districts) = districts_by_muni.get(w.municipality.as_str()) else {
                    continue;
                };
                let unregistered = reaches_unregistered(config, audience_of(aud), w.severity);
                steps.push(AlertStep {
                    key: step_key(&thread, StepKind::Issue, &issuance_source(&snap)),
                    thread: thread.clone(),
                    kind: StepKind::Issue,
                    drill,
                    municipality: w.municipality.clone(),
                    municipality_name: w.municipality_name.clone(),
                    phenomenon: w.phenomenon,
                    current: Some(snap.clone()),
                    previous: None,
                    districts: districts.clone(),
                    audience: audience_of(aud),
                    unregistered,
                    priority: priority_of(action),
                    reported_at: w.report_datetime,
                });
                state.announced.insert(
                    thread.clone(),
                    Announced {
                        municipality: w.municipality.clone(),
                        municipality_name: w.municipality_name.clone(),
                        phenomenon: w.phenomenon,
                        warning: snap,
                        audience: audience_of(aud),
                        unregistered,
                        last_change_key: change.map(|c| c.report_key.clone()),
                    },
                );
            }
            (Some(p), None) => {
                // Gone from the state: lifted, or withdrawn by 取消 — or by a 訂正 saying it was never in force,
                // which residents must hear as a withdrawal, not as a 解除 of a warning that was real. An observed
                // intensity is an event, not a warning: when the state drops it there is nothing to lift, so
                // residents hear nothing.
                let withdrawn = change
                    .filter(|c| matches!(c.kind, ChangeKind::Cancelled | ChangeKind::Corrected));
                if p.warning.family == Family::Intensity && withdrawn.is_none() {
                    state.announced.remove(&thread);
                    continue;
                }
                let (kind, source) = match withdrawn {
                    Some(c) => (StepKind::Cancellation, c.report_key.clone()),
                    None => (StepKind::Lift, issuance_source(&p.warning)),
                };
                let districts = districts_by_muni
                    .get(p.municipality.as_str())
                    .cloned()
                    .unwrap_or_default();
                steps.push(AlertStep {
                    key: step_key(&thread, kind, &source),
                    thread: thread.clone(),
                    kind,
                    drill,
                    municipality: p.municipality.clone(),
                    municipality_name: p.municipality_name.clone(),
                    phenomenon: p.phenomenon,
                    current: None,
                    previous: Some(p.warning.clone()),
                    districts,
                    audience: p.audience,
                    unregistered: p.unregistered,
                    priority: if drill {
                        Priority::Normal
                    } else {
                        Priority::Alert
                    },
                    reported_at: change
                        .map(|c| c.report_datetime)
                        .or_else(|| any_change.get(&thread).copied())
                        .unwrap_or(now),
                });
                state.announced.remove(&thread);
            }
            (Some(p), Some((w, action))) => {
                let snap = WarningSnapshot::from(w);
                if action == Action::SwitchMode && !drill {
                    triggers.insert(thread.clone());
                }
                let districts = districts_by_muni
                    .get(w.municipality.as_str())
                    .cloned()
                    .unwrap_or_default();
                let new_aud = audience_for(action).map(audience_of);
                let widest = new_aud.map_or(p.audience, |a| a.max(p.audience));
                let unregistered = p.unregistered
                    || new_aud.is_some_and(|a| reaches_unregistered(config, a, w.severity));
                let prev_rank = (
                    p.warning
                        .level
                        .unwrap_or(p.warning.severity.implied_level()),
                    p.warning.severity,
                );
                let (kind, source) = match change {
                    Some(c) if c.kind == ChangeKind::Cancelled => {
                        (Some(StepKind::Cancellation), c.report_key.clone())
                    }
                    // Also when the corrected kind is below the policy's threshold (警報 corrected to 注意報):
                    // those alerted must hear it was a mistake, not that the warning was downgraded.
                    Some(c) if c.kind == ChangeKind::Corrected => {
                        (Some(StepKind::Correction), c.report_key.clone())
                    }
                    // From-and-to, so a second 特別警報→警報 downgrade to the same 警報 is its own step.
                    _ if new_aud.is_none() => {
                        (Some(StepKind::Downgrade), transition(&p.warning, &snap))
                    }
                    _ if w.rank() > prev_rank => {
                        (Some(StepKind::Escalation), transition(&p.warning, &snap))
                    }
                    _ if w.rank() < prev_rank => {
                        (Some(StepKind::Downgrade), transition(&p.warning, &snap))
                    }
                    _ => (None, String::new()),
                };
                // An escalation is a new alert in its own right: a stale one is not sent, and the memory keeps
                // the last announced warning so a fresh telegram for it is still announced as an escalation.
                let stale_escalation =
                    kind == Some(StepKind::Escalation) && now - w.report_datetime > max_age;
                if stale_escalation {
                    stale.push(thread.clone());
                    continue;
                }
                if let Some(kind) = kind {
                    let priority = match kind {
                        StepKind::Escalation | StepKind::Correction | StepKind::Cancellation => {
                            priority_of(action)
                        }
                        _ if drill => Priority::Normal,
                        _ => Priority::Alert,
                    };
                    steps.push(AlertStep {
                        key: step_key(&thread, kind, &source),
                        thread: thread.clone(),
                        kind,
                        drill,
                        municipality: w.municipality.clone(),
                        municipality_name: w.municipality_name.clone(),
                        phenomenon: w.phenomenon,
                        current: Some(snap.clone()),
                        previous: Some(p.warning.clone()),
                        districts,
                        audience: widest,
                        unregistered,
                        priority,
                        reported_at: change.map_or(w.report_datetime, |c| c.report_datetime),
                    });
                }
                if new_aud.is_none() {
                    // Below the policy's threshold now: residents were told it was downgraded; a later rise is
                    // a new issue.
                    state.announced.remove(&thread);
                } else {
                    state.announced.insert(
                        thread.clone(),
                        Announced {
                            municipality: w.municipality.clone(),
                            municipality_name: w.municipality_name.clone(),
                            phenomenon: w.phenomenon,
                            warning: snap,
                            audience: widest,
                            unregistered,
                            last_change_key: change
                                .map(|c| c.report_key.clone())
                                .or_else(|| p.last_change_key.clone()),
                        },
                    );
                }
            }
        }
    }

    // Mode.
    let previous_mode = memory.mode;
    if !triggers.is_empty() {
        state.last_trigger_at = Some(now);
    }
    let (mode, reason) = if !triggers.is_empty() {
        (
            Mode::Disaster,
            ModeReason::Warnings {
                triggers: triggers.into_iter().collect(),
            },
        )
    } else if !input.holds.is_empty() {
        (
            Mode::Disaster,
            ModeReason::ManualHold {
                holds: input.holds.iter().map(|h| h.id.clone()).collect(),
            },
        )
    } else {
        let quiet = Duration::seconds(config.quiet_period_secs as i64);
        match (previous_mode, memory.last_trigger_at) {
            (Mode::Disaster, Some(t)) if t + quiet > now => {
                (Mode::Disaster, ModeReason::QuietPeriod { until: t + quiet })
            }
            _ => (Mode::Normal, ModeReason::NoTrigger),
        }
    };
    state.mode = mode;
    if mode != previous_mode || state.mode_since.is_none() {
        state.mode_since = Some(now);
    }
    Decision {
        now,
        mode,
        previous_mode,
        reason,
        steps,
        stale,
        state,
    }
}
