//! Active-warning state: which warning of which phenomenon is in force in which municipality. Pure: no I/O.
//!
//! # Design constraints
//! * **Input** is the stream of parsed [`Report`]s, in any order, each possibly many times (regular + extra +
//!   `_l` + restart). **Output** is typed [`WarningEvent`]s per (municipality, phenomenon) — issued, escalated,
//!   downgraded, changed, lifted, corrected, cancelled — which the disaster engine consumes.
//! * **Only the municipal blocks count**: `Body/Warning[@type]` ending in `（市町村等）` (VPWW5x, VPHW) and
//!   `土砂災害警戒情報` (VXWW50), areas with 7-digit 市町村等 codes. The Headline and coarser blocks are summaries.
//! * **Every warning telegram is a full state** for the municipalities it lists: a kind missing from a listed
//!   municipality is no longer in force; municipalities the telegram does not list are untouched.
//! * **Match on codes, never names.** Codes are classified by an injected [`CodeTable`] (the real table lives in
//!   `jma::codes`); an unknown code is reported in [`ApplyOutcome::unknown_codes`] and not guessed.
//! * **Applied once**: a report's [`ReportKey`] (data type, publishing office, ReportDateTime, InfoType, EventID,
//!   Serial) is remembered; a repeat is [`Disposition::Duplicate`] and changes nothing.
//! * **Newest wins, per source**: each municipality keeps one *layer* per source (see [`source_of`]); a report
//!   older (by ReportDateTime) than the layer it would replace is stale for that municipality and skipped, so a
//!   late `_l` catch-up cannot roll the state back.
//! * **訓練 and 試験 never touch the real state**: the caller keeps one [`WarningState`] per [`Scope`]; 訓練 goes
//!   to the drill state, 試験 is ignored everywhere ([`Disposition::Ignored`]).
//!
//! # Old and new telegrams: the precedence rule
//! Since 2026-05-28 the same warning reaches us through the transitional telegrams (VPWW50/53/54 and VXWW50,
//! *legacy*) and the new per-phenomenon telegrams (VPWW55–61, *R06*), minutes apart. In the legacy telegrams a
//! 危険警報 is expressed as a 警報, so taking "the latest telegram" across both would flap 危険警報 → 警報 → 危険警報
//! and alert residents three times. The rule:
//!
//! > For a municipality and phenomenon, **R06 is authoritative as soon as an R06 telegram that carries that
//! > phenomenon has listed the municipality** (even with nothing in force). Legacy layers are still stored
//! > (audit, fallback) but do not drive the state for that (municipality, phenomenon). Phenomena no R06
//! > telegram carries (洪水 — replaced by 大雨 and 指定河川洪水予報) stay legacy-driven.
//!
//! Which phenomena each R06 telegram carries is [`r06_phenomena`] (plus whatever phenomena its kinds turn out
//! to have). Other warning sources (竜巻注意情報 VPHW50/51) are merged as they are. Within one family the most
//! severe kind of a phenomenon wins (VPWW54 大雨 and VXWW50 土砂災害 are different phenomena, so they never
//! compete). Events are the difference of the *effective* state before and after a report, so a twin telegram
//! that says the same thing produces no event.
//!
//! # 訂正 and 取消
//! * 訂正 replaces the layer like a 発表 of the same time; any resulting difference is reported as
//!   [`Change::Corrected`] (never as a fresh issue).
//! * 取消 retracts the last report of the same (data type, office, EventID): each layer it produced is restored
//!   to the layer it replaced (one level of history is kept), and differences are [`Change::Cancelled`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::report::{DocStatus, InfoType, Report};

/// 注意報 < 警報 < 危険警報 < 特別警報.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// 注意報 (and 竜巻注意情報-like information).
    Advisory,
    /// 警報.
    Warning,
    /// 危険警報 (レベル4; also 土砂災害警戒情報).
    Danger,
    /// 特別警報.
    Emergency,
}

/// What the code table says about one warning code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindClass {
    /// Phenomenon key, e.g. `大雨`, `土砂災害`, `高潮`, `洪水`, `暴風`. The same phenomenon must get the same key
    /// from old and new telegrams (VPWW54 code 03 and VPWW55 code 43 are both `大雨`).
    pub phenomenon: String,
    pub severity: Severity,
    /// 警戒レベル相当 (2–5), when the kind has one.
    pub level: Option<u8>,
    /// The name residents and operators see, when the telegram's Kind/Name is not a warning's name: VXWW50
    /// says `警戒` for what is, since 2026-05-28, the レベル４土砂災害危険警報. `None`: the Kind/Name as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The warning-code lookup, injected so the real table (`jma::codes`) plugs in. `data_type` disambiguates
/// tables whose codes overlap (VXWW50 uses `3` for 警戒, VPWW5x uses 2-digit codes).
pub trait CodeTable: Send + Sync {
    fn classify(&self, data_type: &str, code: &str) -> Option<KindClass>;
}

impl<F> CodeTable for F
where
    F: Fn(&str, &str) -> Option<KindClass> + Send + Sync,
{
    fn classify(&self, data_type: &str, code: &str) -> Option<KindClass> {
        self(data_type, code)
    }
}

/// Real state or the drill state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Real,
    Drill,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Real => "real",
            Scope::Drill => "drill",
        }
    }

    /// Where a document goes: 通常 → real, 訓練 → drill, 試験 → nowhere.
    pub fn of(status: DocStatus) -> Option<Scope> {
        match status {
            DocStatus::Normal => Some(Scope::Real),
            DocStatus::Drill => Some(Scope::Drill),
            DocStatus::Test => None,
        }
    }
}

/// Telegram families for the precedence rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    /// VPWW50/53/54, VXWW50 — transitional until about 2028.
    Legacy,
    /// VPWW55–61 — the 2026 system.
    R06,
    /// Everything else with a municipal warning block (竜巻注意情報 …); always merged.
    Other,
}

/// The layer a data type writes: (family, source key). VPWW50/53/54 are the same content in three layouts, so
/// they share one source and the newest of them wins.
pub fn source_of(data_type: &str) -> (Family, String) {
    match data_type {
        "VPWW50" | "VPWW53" | "VPWW54" => (Family::Legacy, "VPWW5x".into()),
        "VXWW50" => (Family::Legacy, "VXWW50".into()),
        "VPWW55" | "VPWW56" | "VPWW57" | "VPWW58" | "VPWW59" | "VPWW60" | "VPWW61" => {
            (Family::R06, data_type.into())
        }
        "VPHW50" | "VPHW51" => (Family::Other, "VPHW5x".into()),
        other => (Family::Other, other.into()),
    }
}

/// Phenomena each R06 telegram carries (research notes §6, dmdata `weather-warning.md`). A municipality listed
/// by one of these telegrams is R06-driven for these phenomena.
pub fn r06_phenomena(data_type: &str) -> &'static [&'static str] {
    match data_type {
        "VPWW55" => &["大雨"],
        "VPWW56" => &["土砂災害"],
        "VPWW57" => &["高潮"],
        "VPWW58" => &["暴風", "暴風雪", "強風", "風雪"],
        "VPWW59" => &["波浪"],
        "VPWW60" => &["大雪"],
        "VPWW61" => &[
            "雷",
            "融雪",
            "濃霧",
            "乾燥",
            "なだれ",
            "低温",
            "霜",
            "着氷",
            "着雪",
            "その他",
        ],
        _ => &[],
    }
}

/// Kind/Status values meaning "not in force".
const NOT_IN_FORCE: &[&str] = &["解除", "発表警報・注意報はなし", "なし"];
/// Kind/Status values we know; anything else is treated as in force (missing an alert is the worse error) and
/// reported in [`ApplyOutcome::notes`].
const KNOWN_IN_FORCE: &[&str] = &[
    "発表",
    "継続",
    "特別警報から警報",
    "特別警報から注意報",
    "特別警報から危険警報",
    "危険警報から警報",
    "危険警報から注意報",
    "警報から注意報",
];

/// True for the blocks that drive municipal state.
pub fn is_municipal_block(block_type: &str) -> bool {
    block_type.ends_with("（市町村等）") || block_type == "土砂災害警戒情報"
}

fn is_municipality_code(code: &str) -> bool {
    code.len() == 7 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Identity of a report for "apply once".
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReportKey(pub String);

impl ReportKey {
    pub fn of(r: &Report) -> ReportKey {
        ReportKey(format!(
            "{}|{}|{}|{}|{}|{}",
            r.data_type,
            r.control.publishing_office,
            r.head
                .report_datetime
                .map(|d| d.to_rfc3339())
                .unwrap_or_default(),
            info_type_str(r.head.info_type),
            r.head.event_id,
            r.head.serial
        ))
    }
}

fn info_type_str(t: InfoType) -> &'static str {
    match t {
        InfoType::Issue => "発表",
        InfoType::Correction => "訂正",
        InfoType::Delay => "遅延",
        InfoType::Cancel => "取消",
    }
}

/// Which report produced something.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRef {
    pub data_type: String,
    pub office: String,
    pub event_id: String,
    pub serial: String,
    pub info_type: String,
    pub report_datetime: DateTime<FixedOffset>,
    pub title: String,
}

/// A kind in force in one layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerKind {
    pub code: String,
    pub name: String,
    pub status: String,
    pub class: KindClass,
}

/// What one source last said about one municipality.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub family: Family,
    pub report: ReportRef,
    pub kinds: Vec<LayerKind>,
    /// The layer this one replaced (one level, for 取消).
    pub prev: Option<Box<Layer>>,
}

/// The effective warning of one phenomenon in one municipality.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveWarning {
    pub code: String,
    pub name: String,
    pub phenomenon: String,
    pub severity: Severity,
    pub level: Option<u8>,
    /// Data type of the telegram whose layer this comes from.
    pub data_type: String,
    /// ReportDateTime of that telegram.
    pub report_datetime: DateTime<FixedOffset>,
    /// When this phenomenon became active (first report that put any kind of it in force).
    pub active_since: DateTime<FixedOffset>,
    /// When the current code took effect.
    pub kind_since: DateTime<FixedOffset>,
}

/// Everything known about one municipality.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MuniState {
    pub name: String,
    /// Source key → layer.
    pub layers: BTreeMap<String, Layer>,
    /// Phenomenon → effective warning.
    pub effective: BTreeMap<String, ActiveWarning>,
}

/// Kinds of change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Nothing of this phenomenon was in force; now something is.
    Issued,
    /// More severe (or a higher 警戒レベル) than before, e.g. 警報 → 特別警報.
    Escalated,
    /// Less severe but still in force, e.g. 特別警報から警報.
    Downgraded,
    /// Same severity and level, different code.
    Changed,
    /// Nothing of this phenomenon is in force any more (解除).
    Lifted,
    /// A 訂正 changed it.
    Corrected,
    /// A 取消 changed it.
    Cancelled,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Issued => "issued",
            Change::Escalated => "escalated",
            Change::Downgraded => "downgraded",
            Change::Changed => "changed",
            Change::Lifted => "lifted",
            Change::Corrected => "corrected",
            Change::Cancelled => "cancelled",
        }
    }
}

/// One change of one (municipality, phenomenon).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningEvent {
    pub scope: Scope,
    pub municipality: String,
    pub municipality_name: String,
    pub phenomenon: String,
    pub change: Change,
    pub before: Option<ActiveWarning>,
    pub after: Option<ActiveWarning>,
    pub report: ReportRef,
}

/// Why a report changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum IgnoreReason {
    /// 試験: reaches nobody.
    TestDocument,
    /// No municipal warning block (earthquake, tsunami, river …), or no ReportDateTime.
    NoMunicipalState,
    /// 遅延.
    Delay,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Disposition {
    Applied,
    Duplicate,
    Ignored(IgnoreReason),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApplyOutcome {
    pub disposition: Disposition,
    pub events: Vec<WarningEvent>,
    /// Municipalities whose stored state changed (to persist).
    pub touched: Vec<String>,
    /// Municipalities skipped because they already hold a newer report of the same source.
    pub stale: Vec<String>,
    /// (data type, code) pairs the code table does not know.
    pub unknown_codes: Vec<(String, String)>,
    /// Other things an operator may want to see (unknown Kind/Status values …).
    pub notes: Vec<String>,
}

impl ApplyOutcome {
    fn nothing(d: Disposition) -> Self {
        ApplyOutcome {
            disposition: d,
            events: vec![],
            touched: vec![],
            stale: vec![],
            unknown_codes: vec![],
            notes: vec![],
        }
    }
}

/// The state of one scope.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WarningState {
    pub munis: BTreeMap<String, MuniState>,
    /// Applied report keys with their ReportDateTime (for pruning).
    pub applied: HashMap<ReportKey, DateTime<FixedOffset>>,
}

impl WarningState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Effective warnings in force in one municipality.
    pub fn active(&self, municipality: &str) -> Vec<&ActiveWarning> {
        self.munis
            .get(municipality)
            .map(|m| m.effective.values().collect())
            .unwrap_or_default()
    }

    /// The effective warning of one phenomenon.
    pub fn get(&self, municipality: &str, phenomenon: &str) -> Option<&ActiveWarning> {
        self.munis.get(municipality)?.effective.get(phenomenon)
    }

    /// Forgets applied keys of reports older than `before`. Safe because a layer never accepts a report older
    /// than the one it holds: a repeat of a pruned report is stale for every municipality it lists.
    pub fn prune_applied(&mut self, before: DateTime<FixedOffset>) {
        self.applied.retain(|_, t| *t >= before);
    }

    /// Applies one report of this state's scope (the caller routes by [`Scope::of`]).
    pub fn apply(&mut self, scope: Scope, report: &Report, table: &dyn CodeTable) -> ApplyOutcome {
        if Scope::of(report.control.status).is_none() {
            return ApplyOutcome::nothing(Disposition::Ignored(IgnoreReason::TestDocument));
        }
        let key = ReportKey::of(report);
        if self.applied.contains_key(&key) {
            return ApplyOutcome::nothing(Disposition::Duplicate);
        }
        let Some(report_dt) = report.head.report_datetime else {
            return ApplyOutcome::nothing(Disposition::Ignored(IgnoreReason::NoMunicipalState));
        };
        let info_type = report.head.info_type;
        if info_type == InfoType::Delay {
            return ApplyOutcome::nothing(Disposition::Ignored(IgnoreReason::Delay));
        }
        let rref = ReportRef {
            data_type: report.data_type.clone(),
            office: report.control.publishing_office.clone(),
            event_id: report.head.event_id.clone(),
            serial: report.head.serial.clone(),
            info_type: info_type_str(info_type).into(),
            report_datetime: report_dt,
            title: report.head.title.clone(),
        };
        let (family, source) = source_of(&report.data_type);
        let mut out = ApplyOutcome::nothing(Disposition::Applied);
        let mut touched: BTreeSet<String> = BTreeSet::new();

        if info_type == InfoType::Cancel {
            for (code, muni) in self.munis.iter_mut() {
                let Some(layer) = muni.layers.get(&source) else {
                    continue;
                };
                let r = &layer.report;
                if r.data_type == rref.data_type
                    && r.office == rref.office
                    && r.event_id == rref.event_id
                    && r.report_datetime <= report_dt
                {
                    match layer.prev.clone() {
                        Some(prev) => {
                            muni.layers.insert(source.clone(), *prev);
                        }
                        None => {
                            muni.layers.remove(&source);
                        }
                    }
                    touched.insert(code.clone());
                }
            }
        } else {
            // Municipality code → (name, kinds in force), merged over the Items that list it.
            let mut listed: BTreeMap<String, (String, Vec<LayerKind>)> = BTreeMap::new();
            for block in report
                .warnings
                .iter()
                .filter(|b| is_municipal_block(&b.block_type))
            {
                for item in &block.items {
                    let mut kinds = Vec::new();
                    for k in &item.kinds {
                        let status = k.status.trim();
                        if NOT_IN_FORCE.contains(&status) {
                            continue;
                        }
                        if !KNOWN_IN_FORCE.contains(&status) {
                            out.notes.push(format!(
                                "未知の Kind/Status「{status}」（コード {}）を発表中として扱いました",
                                k.code
                            ));
                        }
                        match table.classify(&report.data_type, k.code.trim()) {
                            Some(class) => kinds.push(LayerKind {
                                code: k.code.trim().into(),
                                name: class.name.clone().unwrap_or_else(|| k.name.clone()),
                                status: status.into(),
                                class,
                            }),
                            None => {
                                let pair = (report.data_type.clone(), k.code.trim().to_string());
                                if !out.unknown_codes.contains(&pair) {
                                    out.unknown_codes.push(pair);
                                }
                            }
                        }
                    }
                    for area in item.areas.iter().filter(|a| is_municipality_code(&a.code)) {
                        let e = listed
                            .entry(area.code.clone())
                            .or_insert_with(|| (area.name.clone(), Vec::new()));
                        for k in &kinds {
                            if !e.1.contains(k) {
                                e.1.push(k.clone());
                            }
                        }
                    }
                }
            }
            if listed.is_empty() {
                return ApplyOutcome::nothing(Disposition::Ignored(IgnoreReason::NoMunicipalState));
            }
            for (code, (name, kinds)) in listed {
                let muni = self.munis.entry(code.clone()).or_default();
                if muni.name.is_empty() {
                    muni.name = name;
                }
                let prev = muni.layers.remove(&source);
                if let Some(p) = &prev {
                    if p.report.report_datetime > report_dt {
                        muni.layers.insert(source.clone(), p.clone());
                        out.stale.push(code);
                        continue;
                    }
                }
                let prev = prev.map(|mut p| {
                    p.prev = None;
                    Box::new(p)
                });
                muni.layers.insert(
                    source.clone(),
                    Layer {
                        family,
                        report: rref.clone(),
                        kinds,
                        prev,
                    },
                );
                touched.insert(code);
            }
        }

        for code in &touched {
            let Some(muni) = self.munis.get_mut(code) else {
                continue;
            };
            let after = effective(&muni.layers, &muni.effective, report_dt);
            let phenomena: BTreeSet<&String> = muni.effective.keys().chain(after.keys()).collect();
            for p in phenomena {
                let b = muni.effective.get(p);
                let a = after.get(p);
                let change = match (b, a) {
                    (None, None) => None,
                    (Some(b), Some(a)) if b.code == a.code && b.data_type == a.data_type => None,
                    // Same warning, now carried by another source (legacy → R06 takeover): no news.
                    (Some(b), Some(a)) if same_warning_other_source(b, a) => None,
                    _ if info_type == InfoType::Correction => Some(Change::Corrected),
                    _ if info_type == InfoType::Cancel => Some(Change::Cancelled),
                    (None, Some(_)) => Some(Change::Issued),
                    (Some(_), None) => Some(Change::Lifted),
                    (Some(b), Some(a)) => {
                        Some(match (a.severity, a.level).cmp(&(b.severity, b.level)) {
                            std::cmp::Ordering::Greater => Change::Escalated,
                            std::cmp::Ordering::Less => Change::Downgraded,
                            std::cmp::Ordering::Equal => Change::Changed,
                        })
                    }
                };
                if let Some(change) = change {
                    out.events.push(WarningEvent {
                        scope,
                        municipality: code.clone(),
                        municipality_name: muni.name.clone(),
                        phenomenon: p.clone(),
                        change,
                        before: b.cloned(),
                        after: a.cloned(),
                        report: rref.clone(),
                    });
                }
            }
            muni.effective = after;
        }
        out.touched = touched.into_iter().collect();
        self.applied.insert(key, report_dt);
        out
    }
}

/// The real and the drill state, routing each report by its Control/Status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct States {
    pub real: WarningState,
    pub drill: WarningState,
}

impl States {
    pub fn scope(&self, scope: Scope) -> &WarningState {
        match scope {
            Scope::Real => &self.real,
            Scope::Drill => &self.drill,
        }
    }

    pub fn scope_mut(&mut self, scope: Scope) -> &mut WarningState {
        match scope {
            Scope::Real => &mut self.real,
            Scope::Drill => &mut self.drill,
        }
    }

    /// 通常 → real state, 訓練 → drill state, 試験 → ignored. Returns the scope it went to.
    pub fn apply(
        &mut self,
        report: &Report,
        table: &dyn CodeTable,
    ) -> (Option<Scope>, ApplyOutcome) {
        match Scope::of(report.control.status) {
            None => (
                None,
                ApplyOutcome::nothing(Disposition::Ignored(IgnoreReason::TestDocument)),
            ),
            Some(scope) => (
                Some(scope),
                self.scope_mut(scope).apply(scope, report, table),
            ),
        }
    }
}

/// The effective state of one municipality from its layers (the precedence rule in the module docs).
fn effective(
    layers: &BTreeMap<String, Layer>,
    before: &BTreeMap<String, ActiveWarning>,
    now: DateTime<FixedOffset>,
) -> BTreeMap<String, ActiveWarning> {
    // Phenomena for which an R06 telegram has listed this municipality.
    let mut r06_covered: BTreeSet<String> = BTreeSet::new();
    for (source, layer) in layers.iter().filter(|(_, l)| l.family == Family::R06) {
        r06_covered.extend(r06_phenomena(source).iter().map(|s| s.to_string()));
        r06_covered.extend(layer.kinds.iter().map(|k| k.class.phenomenon.clone()));
    }
    let mut best: BTreeMap<String, (&LayerKind, &Layer)> = BTreeMap::new();
    for layer in layers.values() {
        for k in &layer.kinds {
            let p = &k.class.phenomenon;
            let counts = match layer.family {
                Family::Legacy => !r06_covered.contains(p),
                Family::R06 | Family::Other => true,
            };
            if !counts {
                continue;
            }
            let better = match best.get(p) {
                None => true,
                Some((cur, cur_layer)) => {
                    (
                        k.class.severity,
                        k.class.level,
                        layer.report.report_datetime,
                    ) > (
                        cur.class.severity,
                        cur.class.level,
                        cur_layer.report.report_datetime,
                    )
                }
            };
            if better {
                best.insert(p.clone(), (k, layer));
            }
        }
    }
    best.into_iter()
        .map(|(p, (k, layer))| {
            let prev = before.get(&p);
            let active_since = prev.map(|b| b.active_since).unwrap_or(now);
            let mut w = ActiveWarning {
                code: k.code.clone(),
                name: k.name.clone(),
                phenomenon: p.clone(),
                severity: k.class.severity,
                level: k.class.level,
                data_type: layer.report.data_type.clone(),
                report_datetime: layer.report.report_datetime,
                active_since,
                kind_since: now,
            };
            if let Some(b) = prev {
                if b.code == w.code || same_warning_other_source(b, &w) {
                    w.kind_since = b.kind_since;
                }
            }
            (p, w)
        })
        .collect()
}

/// The same warning level reported by another source (VXWW50 `3` and VPWW56 `49` are both
/// レベル４土砂災害危険警報; VPWW54 `03` and VPWW55 `03` are both 大雨警報).
fn same_warning_other_source(b: &ActiveWarning, a: &ActiveWarning) -> bool {
    (b.severity, b.level) == (a.severity, a.level)
        && (b.code == a.code || source_of(&b.data_type) != source_of(&a.data_type))
}

#[cfg(test)]
#[path = "state_tests.rs"]
pub(crate) mod tests;
