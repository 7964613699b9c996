//! The city's own evacuation information (避難情報): 高齢者等避難 (警戒レベル3), 避難指示 (レベル4),
//! 緊急安全確保 (レベル5) and their 解除, drafted in the console by one person and approved by another; and
//! 訂正 / 取消 of any alert already sent (JMA-driven or manual).
//!
//! # Life of a manual alert (`manual_alerts`)
//! ```text
//! draft --submit--> submitted --approve (a different person)--> approved --10 s--> sent
//!   \------------------\--------cancel-------------------------/ (within the window)  -> cancelled
//! ```
//! * **Two-person rule**, enforced here and not only in the page: [`approve`] refuses the drafter.
//! * **Cancel window**: an approved alert waits [`CANCEL_WINDOW_MS`] (`send_at_ms`); [`cancel`] stops it
//!   until then. The scheduled job `alerts.dispatch` ([`dispatch_due`]) sends what is due.
//! * **Through the outbox**: [`dispatch_due`] composes one message per district and calls
//!   [`delivery::enqueue`] with step key `manual:{id}` in the same transaction that marks the alert sent and
//!   audits it, so it is sent once, whatever crashes.
//! * **訂正 / 取消** ([`correct`]): an approver acts alone (the second person is waived, and the audit row says
//!   so). The original's unsent batches are cancelled and the correction goes to exactly the people the
//!   original reached or may have reached ([`Recipients::ReachedBy`]), nobody else, at once (no window).
//! * Every change is audited in its own transaction (`alert.draft`, `alert.submit`, `alert.approve`,
//!   `alert.cancel`, `alert.sent`, `alert.correct`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::compose::{self, ComposeError, ShelterRef};
use crate::delivery::{self, Enqueued, NewAlert, Planned, Recipients};
use crate::place::shelter::Need;
use crate::place::status::ShelterStatus;
use crate::place::PlaceData;
use crate::store::Store;

/// How long an approved alert can still be stopped before it goes out.
pub const CANCEL_WINDOW_MS: i64 = 10_000;
/// Longest free text of an alert, in characters.
pub const MAX_FREE_TEXT_CHARS: usize = 500;
/// Outbox priority of manual alerts (the same as JMA-driven disaster alerts).
pub const PRIORITY: i64 = 100;

/// 警戒レベル of the city's evacuation information.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// 解除 of an earlier one.
    Lift,
    /// 高齢者等避難 (レベル3).
    Elderly,
    /// 避難指示 (レベル4).
    Evacuate,
    /// 緊急安全確保 (レベル5).
    Emergency,
}

impl Level {
    pub const ALL: [Level; 4] = [
        Level::Elderly,
        Level::Evacuate,
        Level::Emergency,
        Level::Lift,
    ];

    pub fn number(self) -> u8 {
        match self {
            Level::Lift => 0,
            Level::Elderly => 3,
            Level::Evacuate => 4,
            Level::Emergency => 5,
        }
    }

    pub fn from_number(n: i64) -> Option<Level> {
        Level::ALL.into_iter().find(|l| i64::from(l.number()) == n)
    }
}

/// The hazard a manual alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hazard {
    Flood,
    Landslide,
    StormSurge,
    Tsunami,
    Earthquake,
    Other,
}

impl Hazard {
    pub const ALL: [Hazard; 6] = [
        Hazard::Flood,
        Hazard::Landslide,
        Hazard::StormSurge,
        Hazard::Tsunami,
        Hazard::Earthquake,
        Hazard::Other,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Hazard::Flood => "flood",
            Hazard::Landslide => "landslide",
            Hazard::StormSurge => "storm_surge",
            Hazard::Tsunami => "tsunami",
            Hazard::Earthquake => "earthquake",
            Hazard::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Hazard> {
        Hazard::ALL.into_iter().find(|h| h.slug() == s)
    }

    /// The shelter designation that suits it (`None`: any 指定避難所).
    pub fn place_hazard(self) -> Option<crate::place::Hazard> {
        use crate::place::Hazard as P;
        match self {
            Hazard::Flood => Some(P::Flood),
            Hazard::Landslide => Some(P::Landslide),
            Hazard::StormSurge => Some(P::StormSurge),
            Hazard::Tsunami => Some(P::Tsunami),
            Hazard::Earthquake => Some(P::Earthquake),
            Hazard::Other => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Alert,
    Correction,
    Withdrawal,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::Correction => "correction",
            Kind::Withdrawal => "withdrawal",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            "correction" => Kind::Correction,
            "withdrawal" => Kind::Withdrawal,
            _ => Kind::Alert,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Submitted,
    Approved,
    Cancelled,
    Sent,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::Approved => "approved",
            Status::Cancelled => "cancelled",
            Status::Sent => "sent",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "submitted" => Status::Submitted,
            "approved" => Status::Approved,
            "cancelled" => Status::Cancelled,
            "sent" => Status::Sent,
            _ => Status::Draft,
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Status::Draft => "下書き",
            Status::Submitted => "承認待ち",
            Status::Approved => "承認済み（送信待ち）",
            Status::Cancelled => "取り消し済み（未送信）",
            Status::Sent => "送信済み",
        }
    }
}

/// What a drafter writes.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub level: Level,
    pub hazard: Hazard,
    /// District ids of the city (checked against the loaded place data).
    pub districts: Vec<String>,
    pub free_text: String,
}

/// One row of `manual_alerts`.
#[derive(Clone, Debug, Serialize)]
pub struct ManualAlert {
    pub id: i64,
    pub kind: Kind,
    pub level: Level,
    pub hazard: Hazard,
    pub districts: Vec<String>,
    pub free_text: String,
    pub refers_to: Option<i64>,
    pub status: Status,
    pub drafted_by: String,
    pub drafted_at: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub send_at_ms: Option<i64>,
    pub cancelled_by: Option<String>,
    pub delivery_alert_id: Option<i64>,
    pub recipients: Option<i64>,
    /// Drafted during a drill: sent as a drill even if the drill has ended by then.
    pub drill: bool,
}

/// Why an action on a manual alert was refused. Each is a plain Japanese message for the console.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("指定された避難情報が見つかりません。一覧を開き直してください。")]
    NotFound,
    #[error("この避難情報は「{}」のため、この操作はできません。画面を開き直して状態を確かめてください。", .0.label_ja())]
    WrongState(Status),
    #[error("自分が作成した避難情報は承認できません。別の承認者に依頼してください（二人の確認が必要です）。")]
    SamePerson,
    #[error("他の職員が作成した避難情報です。作成した本人か承認者が操作してください。")]
    NotYours,
    #[error("取り消せる時間（承認から10秒）を過ぎたため、送信を止められませんでした。必要なら「訂正」または「取消」を送ってください。")]
    WindowClosed,
    #[error("{0}")]
    Invalid(String),
}

const COLUMNS: &str =
    "id, kind, level, hazard, districts, free_text, refers_to, status, drafted_by, drafted_at,
    approved_by, approved_at, send_at_ms, cancelled_by, delivery_alert_id, recipients, drill";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ManualAlert> {
    let districts: String = r.get(4)?;
    let hazard: String = r.get(3)?;
    Ok(ManualAlert {
        id: r.get(0)?,
        kind: Kind::parse(&r.get::<_, String>(1)?),
        level: Level::from_number(r.get(2)?).unwrap_or(Level::Evacuate),
        hazard: Hazard::parse(&hazard).unwrap_or(Hazard::Other),
        districts: serde_json::from_str(&districts).unwrap_or_default(),
        free_text: r.get(5)?,
        refers_to: r.get(6)?,
        status: Status::parse(&r.get::<_, String>(7)?),
        drafted_by: r.get(8)?,
        drafted_at: r.get(9)?,
        approved_by: r.get(10)?,
        approved_at: r.get(11)?,
        send_at_ms: r.get(12)?,
        cancelled_by: r.get(13)?,
        delivery_alert_id: r.get(14)?,
        recipients: r.get(15)?,
        drill: r.get(16)?,
    })
}

pub fn get(conn: &Connection, id: i64) -> anyhow::Result<Option<ManualAlert>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM manual_alerts WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
}

/// The latest `limit` manual alerts, newest first.
pub fn list(conn: &Connection, limit: i64) -> anyhow::Result<Vec<ManualAlert>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM manual_alerts ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = st.query_map([limit], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Checks a draft against the city's districts and the limits; the Japanese reason otherwise.
pub fn check_draft(draft: &Draft, place: &PlaceData) -> Result<(), Refusal> {
    if draft.districts.is_empty() {
        return Err(Refusal::Invalid(
            "対象の地区を1つ以上選んでください。".into(),
        ));
    }
    if let Some(bad) = draft
        .districts
        .iter()
        .find(|d| place.districts.get(d).is_none())
    {
        return Err(Refusal::Invalid(format!(
            "地区「{bad}」はこの市の地区にありません。画面を開き直して選び直してください。"
        )));
    }
    if draft.free_text.chars().count() > MAX_FREE_TEXT_CHARS {
        return Err(Refusal::Invalid(format!(
            "補足の文は{MAX_FREE_TEXT_CHARS}文字以内にしてください。"
        )));
    }
    Ok(())
}

/// Stores a draft (`alert.draft`). Check it with [`check_draft`] first.
pub fn create_draft(
    tx: &Transaction<'_>,
    draft: &Draft,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let mut districts = draft.districts.clone();
    districts.sort();
    districts.dedup();
    let drill = drill_active(tx)?;
    tx.execute(
        "INSERT INTO manual_alerts (kind, level, hazard, districts, free_text, status, drafted_by, drafted_at, drill)
         VALUES ('alert', ?1, ?2, ?3, ?4, 'draft', ?5, ?6, ?7)",
        params![
            draft.level.number(),
            draft.hazard.slug(),
            serde_json::to_string(&districts)?,
            draft.free_text,
            actor,
            now.to_rfc3339(),
            drill
        ],
    )?;
    let id = tx.last_insert_rowid();
    Store::audit(
        tx,
        actor,
        "alert.draft",
        &json!({"manual_alert": id, "level": draft.level.number(), "hazard": draft.hazard.slug(), "districts": districts.len()}),
    )?;
    Ok(id)
}

fn load(tx: &Transaction<'_>, id: i64) -> anyhow::Result<Result<ManualAlert, Refusal>> {
    Ok(get(tx, id)?.ok_or(Refusal::NotFound))
}

/// Draft → submitted (`alert.submit`), by its drafter or an approver (`approver`).
pub fn submit(
    tx: &Transaction<'_>,
    id: i64,
    actor: &str,
    approver: bool,
) -> anyhow::Result<Result<(), Refusal>> {
    let a = match load(tx, id)? {
        Ok(a) => a,
        Err(r) => return Ok(Err(r)),
    };
    if !approver && a.drafted_by != actor {
        return Ok(Err(Refusal::NotYours));
    }
    if a.status != Status::Draft {
        return Ok(Err(Refusal::WrongState(a.status)));
    }
    tx.execute(
        "UPDATE manual_alerts SET status = 'submitted' WHERE id = ?1",
        [id],
    )?;
    Store::audit(tx, actor, "alert.submit", &json!({"manual_alert": id}))?;
    Ok(Ok(()))
}

/// Submitted → approved (`alert.approve`), by someone other than the drafter; it goes out at
/// `now_ms + CANCEL_WINDOW_MS` unless cancelled.
pub fn approve(
    tx: &Transaction<'_>,
    id: i64,
    approver: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<i64, Refusal>> {
    let a = match load(tx, id)? {
        Ok(a) => a,
        Err(r) => return Ok(Err(r)),
    };
    if a.status != Status::Submitted {
        return Ok(Err(Refusal::WrongState(a.status)));
    }
    if a.drafted_by == approver {
        return Ok(Err(Refusal::SamePerson));
    }
    let send_at = now.timestamp_millis() + CANCEL_WINDOW_MS;
    tx.execute(
        "UPDATE manual_alerts SET status = 'approved', approved_by = ?2, approved_at = ?3, send_at_ms = ?4
         WHERE id = ?1",
        params![id, approver, now.to_rfc3339(), send_at],
    )?;
    Store::audit(
        tx,
        approver,
        "alert.approve",
        &json!({"manual_alert": id, "drafted_by": a.drafted_by, "send_at_ms": send_at}),
    )?;
    Ok(Ok(send_at))
}

/// Stops a draft, a submitted alert, or an approved one inside its window (`alert.cancel`), by its drafter
/// or an approver (`approver`).
pub fn cancel(
    tx: &Transaction<'_>,
    id: i64,
    actor: &str,
    approver: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<(), Refusal>> {
    let a = match load(tx, id)? {
        Ok(a) => a,
        Err(r) => return Ok(Err(r)),
    };
    if !approver && a.drafted_by != actor {
        return Ok(Err(Refusal::NotYours));
    }
    match a.status {
        Status::Draft | Status::Submitted => {}
        Status::Approved if a.send_at_ms.is_some_and(|t| now.timestamp_millis() < t) => {}
        Status::Approved => return Ok(Err(Refusal::WindowClosed)),
        s => return Ok(Err(Refusal::WrongState(s))),
    }
    tx.execute(
        "UPDATE manual_alerts SET status = 'cancelled', cancelled_by = ?2, cancelled_at = ?3 WHERE id = ?1",
        params![id, actor, now.to_rfc3339()],
    )?;
    Store::audit(
        tx,
        actor,
        "alert.cancel",
        &json!({"manual_alert": id, "was": a.status.as_str()}),
    )?;
    Ok(Ok(()))
}

/// A 訂正 or 取消 of a sent alert (any source), by an approver alone: stored approved and due at once.
/// `text` is the corrected content (訂正) or an optional note (取消).
pub fn correct(
    tx: &Transaction<'_>,
    delivery_alert_id: i64,
    withdrawal: bool,
    text: &str,
    approver: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<i64, Refusal>> {
    let original: Option<(String, String)> = tx
        .query_row(
            "SELECT source, summary FROM delivery_alerts WHERE id = ?1",
            [delivery_alert_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((source, summary)) = original else {
        return Ok(Err(Refusal::NotFound));
    };
    if !matches!(source.as_str(), "disaster" | "manual" | "drill") {
        return Ok(Err(Refusal::Invalid(
            "訂正・取消ができるのは避難情報と気象警報等の通知だけです。".into(),
        )));
    }
    if !withdrawal && text.trim().is_empty() {
        return Ok(Err(Refusal::Invalid(
            "訂正では、正しい内容を入力してください。".into(),
        )));
    }
    if text.chars().count() > MAX_FREE_TEXT_CHARS {
        return Ok(Err(Refusal::Invalid(format!(
            "本文は{MAX_FREE_TEXT_CHARS}文字以内にしてください。"
        ))));
    }
    let kind = if withdrawal {
        Kind::Withdrawal
    } else {
        Kind::Correction
    };
    tx.execute(
        "INSERT INTO manual_alerts (kind, level, hazard, districts, free_text, refers_to, status, drafted_by,
                                    drafted_at, approved_by, approved_at, send_at_ms)
         VALUES (?1, 0, 'other', '[]', ?2, ?3, 'approved', ?4, ?5, ?4, ?5, ?6)",
        params![
            kind.as_str(),
            text.trim(),
            delivery_alert_id,
            approver,
            now.to_rfc3339(),
            now.timestamp_millis()
        ],
    )?;
    let id = tx.last_insert_rowid();
    Store::audit(
        tx,
        approver,
        "alert.correct",
        &json!({
            "manual_alert": id,
            "kind": kind.as_str(),
            "refers_to": delivery_alert_id,
            "original": summary,
            "second_person": "waived: 訂正・取消 are pre-approved templates an approver sends alone",
        }),
    )?;
    Ok(Ok(id))
}

/// Whether a drill (訓練) is running.
pub fn drill_active(conn: &Connection) -> anyhow::Result<bool> {
    Ok(conn
        .query_row("SELECT active FROM drill_state WHERE id = 1", [], |r| {
            r.get::<_, bool>(0)
        })
        .optional()?
        .unwrap_or(false))
}

/// Starts or ends a drill (`drill.start` / `drill.end`). `Ok(false)` when it already was so.
pub fn set_drill(
    tx: &Transaction<'_>,
    on: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    if drill_active(tx)? == on {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO drill_state (id, active, changed_by, changed_at) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET active = excluded.active, changed_by = excluded.changed_by,
                                        changed_at = excluded.changed_at",
        params![on, actor, now.to_rfc3339()],
    )?;
    Store::audit(
        tx,
        actor,
        if on { "drill.start" } else { "drill.end" },
        &json!({}),
    )?;
    Ok(true)
}

// ------------------------------------------------------------------------------------------ templates

#[derive(Clone, Debug, Deserialize)]
struct LevelTexts {
    label: String,
    level: String,
    action: String,
    colour: String,
    text_colour: String,
}

#[derive(Clone, Debug, Deserialize)]
struct FixTexts {
    headline: String,
    body: String,
    colour: String,
    text_colour: String,
    alt_text: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    #[serde(rename = "_comment", default)]
    _comment: String,
    levels: BTreeMap<String, LevelTexts>,
    hazards: BTreeMap<String, String>,
    headline: String,
    issuer: String,
    lift_issuer: String,
    shelter_heading: String,
    /// Shown beside a shelter the city opened (others are designated sites whose status is not announced).
    shelter_opened: String,
    /// Added under the shelters when one of them was not opened by the city.
    shelters_unconfirmed: String,
    drill_mark: String,
    drill_note: String,
    no_shelters: String,
    alt_text: String,
    correction: FixTexts,
    withdrawal: FixTexts,
    bubble: Value,
}

/// `templates/alerts/manual.json`, loaded and validated.
#[derive(Clone, Debug)]
pub struct ManualTemplates {
    t: TemplateFile,
    shelter_row: Value,
}

const EMBEDDED: &str = include_str!("../../templates/alerts/manual.json");
const EMBEDDED_ROW: &str = include_str!("../../templates/alerts/shelter_row.json");

/// What one message is composed from.
pub struct ManualInput<'a> {
    pub alert: &'a ManualAlert,
    pub city: &'a str,
    /// `Some((name, id))` for a district message; `None` for a correction.
    pub district: Option<(&'a str, &'a str)>,
    pub shelters: &'a [ShelterRef],
    pub hazard_map_url: &'a str,
    pub public_url: &'a str,
    /// Summary of the corrected alert (訂正/取消).
    pub original: &'a str,
    pub drill: bool,
    pub at: DateTime<Utc>,
}

impl ManualTemplates {
    pub fn embedded() -> anyhow::Result<ManualTemplates> {
        Self::parse(EMBEDDED, EMBEDDED_ROW)
    }

    /// `disaster.templates_dir`: empty means embedded; a directory without `manual.json` uses the embedded one.
    pub fn from_config(dir: &str) -> anyhow::Result<ManualTemplates> {
        if dir.is_empty() {
            return Self::embedded();
        }
        let dir = Path::new(dir);
        let read = |name: &str, fallback: &str| -> anyhow::Result<String> {
            let p = dir.join(name);
            if p.exists() {
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
            } else {
                Ok(fallback.to_string())
            }
        };
        Self::parse(
            &read("manual.json", EMBEDDED)?,
            &read("shelter_row.json", EMBEDDED_ROW)?,
        )
    }

    fn parse(text: &str, row: &str) -> anyhow::Result<ManualTemplates> {
        let t: TemplateFile = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("templates/alerts/manual.json: {e}"))?;
        for l in Level::ALL {
            anyhow::ensure!(
                t.levels.contains_key(&l.number().to_string()),
                "templates/alerts/manual.json: levels.\"{}\" is missing",
                l.number()
            );
        }
        for h in Hazard::ALL {
            anyhow::ensure!(
                t.hazards.contains_key(h.slug()),
                "templates/alerts/manual.json: hazards.{} is missing",
                h.slug()
            );
        }
        let shelter_row: Value = serde_json::from_str(row)
            .map_err(|e| anyhow::anyhow!("templates/alerts/shelter_row.json: {e}"))?;
        let m = ManualTemplates { t, shelter_row };
        m.self_test()
            .map_err(|e| anyhow::anyhow!("templates/alerts/manual.json: {e}"))?;
        Ok(m)
    }

    /// Every level, hazard, kind and drill flag with long names and three shelters must compose.
    fn self_test(&self) -> Result<(), String> {
        let shelters: Vec<ShelterRef> = (0..compose::MAX_SHELTERS)
            .map(|i| ShelterRef {
                name: format!("{}{i}", "山形市立第一小学校体育館".repeat(4)),
                distance_m: 1234.0,
                map_url: "https://maps.gsi.go.jp/#17/38.250000/140.330000/".into(),
                opened: i == 0,
            })
            .collect();
        for kind in [Kind::Alert, Kind::Correction, Kind::Withdrawal] {
            for level in Level::ALL {
                for hazard in Hazard::ALL {
                    for drill in [false, true] {
                        let alert = ManualAlert {
                            id: 1,
                            kind,
                            level,
                            hazard,
                            districts: vec!["d".into()],
                            free_text: "補".repeat(MAX_FREE_TEXT_CHARS),
                            refers_to: None,
                            status: Status::Approved,
                            drafted_by: "a".into(),
                            drafted_at: String::new(),
                            approved_by: None,
                            approved_at: None,
                            send_at_ms: None,
                            cancelled_by: None,
                            delivery_alert_id: None,
                            recipients: None,
                            drill,
                        };
                        self.compose(&ManualInput {
                            alert: &alert,
                            city: "山形市",
                            district: Some((&"中央地区".repeat(10), "d")),
                            shelters: &shelters,
                            hazard_map_url:
                                "https://disaportal.gsi.go.jp/maps/?ll=38.25,140.33&z=14",
                            public_url: "https://bousai.example.lg.jp",
                            original: &"【避難指示】".repeat(10),
                            drill,
                            at: Utc::now(),
                        })
                        .map_err(|e| format!("{kind:?} {level:?} {hazard:?} drill {drill}: {e}"))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Japanese name of a hazard, as the templates write it.
    pub fn hazard_ja(&self, h: Hazard) -> &str {
        self.t.hazards.get(h.slug()).map_or("", String::as_str)
    }

    /// 「避難指示」 etc.
    pub fn level_label(&self, l: Level) -> &str {
        self.t
            .levels
            .get(&l.number().to_string())
            .map_or("", |x| x.label.as_str())
    }

    /// One line for operators and the outbox summary, e.g. 「【警戒レベル４】避難指示（洪水）3地区」.
    pub fn summary(&self, a: &ManualAlert, original: &str, drill: bool) -> String {
        let mark = if drill {
            self.t.drill_mark.as_str()
        } else {
            ""
        };
        match a.kind {
            Kind::Alert => {
                let l = &self.t.levels[&a.level.number().to_string()];
                format!(
                    "{mark}【{}】{}（{}）{}地区",
                    l.level,
                    l.label,
                    self.hazard_ja(a.hazard),
                    a.districts.len()
                )
            }
            Kind::Correction => format!("{mark}【訂正】{original}"),
            Kind::Withdrawal => format!("{mark}【取消】{original}"),
        }
    }

    /// The LINE messages (one Flex message) for one district of an alert, or for a correction.
    pub fn compose(&self, input: &ManualInput<'_>) -> Result<Vec<Value>, ComposeError> {
        let t = &self.t;
        let a = input.alert;
        let hazard = self.hazard_ja(a.hazard).to_string();
        let mut vars: BTreeMap<&str, String> = BTreeMap::new();
        vars.insert(
            "drill_mark",
            if input.drill {
                t.drill_mark.clone()
            } else {
                String::new()
            },
        );
        vars.insert(
            "drill_note",
            if input.drill {
                t.drill_note.clone()
            } else {
                String::new()
            },
        );
        vars.insert("city", input.city.to_string());
        vars.insert("date", compose::jst(input.at));
        vars.insert("hazard", hazard);
        vars.insert("original", input.original.to_string());
        vars.insert("free_text", a.free_text.clone());
        let (district_name, district_id) = input.district.unwrap_or(("", ""));
        vars.insert("district", district_name.to_string());
        let fix = match a.kind {
            Kind::Alert => None,
            Kind::Correction => Some(&t.correction),
            Kind::Withdrawal => Some(&t.withdrawal),
        };
        match fix {
            None => {
                let l = &t.levels[&a.level.number().to_string()];
                vars.insert("level", l.level.clone());
                vars.insert("label", l.label.clone());
                vars.insert("colour", l.colour.clone());
                vars.insert("text_colour", l.text_colour.clone());
                vars.insert("action", l.action.clone());
                vars.insert("area", format!("対象地区：{} {district_name}", input.city));
                let issuer = if a.level == Level::Lift {
                    &t.lift_issuer
                } else {
                    &t.issuer
                };
                vars.insert("issuer", compose::fill(issuer, &vars));
                vars.insert("headline", compose::fill(&t.headline, &vars));
                vars.insert("shelter_heading", compose::fill(&t.shelter_heading, &vars));
                vars.insert(
                    "shelter_map_url",
                    format!(
                        "{}/shelters?{}",
                        input.public_url.trim_end_matches('/'),
                        url::form_urlencoded::Serializer::new(String::new())
                            .append_pair("district", district_id)
                            .append_pair("hazard", a.hazard.place_hazard().map_or("", |h| h.slug()))
                            .finish()
                    ),
                );
                vars.insert("hazard_map_url", input.hazard_map_url.to_string());
                vars.insert("alt_text", compose::fill(&t.alt_text, &vars));
            }
            Some(f) => {
                vars.insert("colour", f.colour.clone());
                vars.insert("text_colour", f.text_colour.clone());
                vars.insert("action", compose::fill(&f.body, &vars));
                vars.insert("area", String::new());
                vars.insert(
                    "issuer",
                    format!("{}　{}", input.city, compose::jst(input.at)),
                );
                vars.insert("headline", compose::fill(&f.headline, &vars));
                vars.insert("shelter_heading", String::new());
                vars.insert("shelter_map_url", String::new());
                vars.insert("hazard_map_url", String::new());
                vars.insert("alt_text", compose::fill(&f.alt_text, &vars));
            }
        }
        let shelters: Vec<Value> = if fix.is_some() || a.level == Level::Lift {
            Vec::new()
        } else if input.shelters.is_empty() {
            vec![
                json!({"type": "text", "text": compose::fill(&t.no_shelters, &vars), "size": "sm", "wrap": true}),
            ]
        } else {
            let listed = &input.shelters[..input.shelters.len().min(compose::MAX_SHELTERS)];
            let mut rows: Vec<Value> = listed
                .iter()
                .map(|s| {
                    let mut v = vars.clone();
                    v.insert("shelter_name", s.name.clone());
                    v.insert("shelter_distance", compose::format_distance(s.distance_m));
                    v.insert("shelter_link", s.map_url.clone());
                    v.insert(
                        "shelter_status",
                        if s.opened {
                            t.shelter_opened.clone()
                        } else {
                            String::new()
                        },
                    );
                    compose::render(&self.shelter_row, &v, &[])
                })
                .collect();
            // 「開設中」 only for shelters the city opened; the others are designated sites to check.
            if listed.iter().any(|s| !s.opened) {
                rows.push(json!({"type": "text", "text": t.shelters_unconfirmed, "size": "xs", "color": "#555555", "wrap": true}));
            }
            rows
        };
        if fix.is_some() || a.level == Level::Lift {
            vars.insert("shelter_heading", String::new());
        }
        let bubble = compose::render(&t.bubble, &vars, &shelters);
        let text = bubble.to_string();
        if let Some(i) = text.find("{{") {
            let end = text[i..].find("}}").map_or(text.len(), |j| i + j + 2);
            return Err(ComposeError::Limit(format!(
                "unknown placeholder {} in manual.json",
                &text[i..end]
            )));
        }
        let mut alt = vars.get("alt_text").cloned().unwrap_or_default();
        if alt.chars().count() > compose::MAX_ALT_TEXT_CHARS {
            alt = alt
                .chars()
                .take(compose::MAX_ALT_TEXT_CHARS - 1)
                .collect::<String>()
                + "…";
        }
        let message = json!({"type": "flex", "altText": alt, "contents": bubble});
        compose::check_message(&message)?;
        crate::line::spec::validate_schema("Message", &message).map_err(ComposeError::Schema)?;
        Ok(vec![message])
    }
}

// ------------------------------------------------------------------------------------------ sending

/// What sending needs besides the store.
pub struct Sending<'a> {
    pub templates: &'a ManualTemplates,
    pub place: &'a PlaceData,
    pub links: &'a crate::place::links::LinkTemplates,
    pub public_url: &'a str,
    /// `place.city_name`.
    pub city: &'a str,
    /// `disaster.drill_audience`: in a drill, the only recipients.
    pub drill_audience: &'a [String],
    /// `disaster.shelter_max_km` and `shelter_same_municipality`.
    pub shelter_reach: super::policy::ShelterReach,
}

/// The shelters to name for `hazard` in a district: `place::Shelters::suggest` (suited, within `reach`,
/// opened ones first, never closed or full), as for JMA-driven alerts.
pub fn shelters_for(
    place: &PlaceData,
    district: &str,
    hazard: Hazard,
    status: &HashMap<String, ShelterStatus>,
    reach: super::policy::ShelterReach,
) -> Vec<ShelterRef> {
    let Some(d) = place.districts.get(district) else {
        return Vec::new();
    };
    let need = hazard.place_hazard().map_or(Need::Stay, Need::Flee);
    let limits = place.limits_for(d, reach.max_km, reach.same_municipality);
    place
        .shelters
        .suggest(d.label_point, need, compose::MAX_SHELTERS, &limits, |id| {
            crate::place::status::status_of(status, id)
        })
        .into_iter()
        .map(|s| ShelterRef {
            name: s.shelter.name.clone(),
            distance_m: s.distance_m,
            map_url: super::runtime::shelter_map_link(s.shelter.at),
            opened: s.status == ShelterStatus::Open,
        })
        .collect()
}

/// The outbox step key of a manual alert.
pub fn step_key(id: i64) -> String {
    format!("manual:{id}")
}

/// The plans of one alert: one message per district for its residents (in a drill, the drill audience
/// only, with the first district's message), or the correction for everyone the original reached.
pub fn plans(
    conn: &Connection,
    s: &Sending<'_>,
    a: &ManualAlert,
    drill: bool,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<Planned>> {
    let city = s.city;
    if let Some(original) = a.refers_to {
        let summary: String = conn.query_row(
            "SELECT summary FROM delivery_alerts WHERE id = ?1",
            [original],
            |r| r.get(0),
        )?;
        let messages = s.templates.compose(&ManualInput {
            alert: a,
            city,
            district: None,
            shelters: &[],
            hazard_map_url: "",
            public_url: s.public_url,
            original: &summary,
            drill,
            at,
        })?;
        return Ok(vec![Planned {
            messages,
            recipients: Recipients::ReachedBy(original),
        }]);
    }
    let status = crate::place::status::load_statuses(conn)?;
    let mut out = Vec::new();
    for id in &a.districts {
        let Some(d) = s.place.districts.get(id) else {
            continue;
        };
        let recipients = if drill {
            Recipients::Users(s.drill_audience.to_vec())
        } else {
            Recipients::Residents(crate::resident::Audience {
                districts: vec![id.clone()],
                ..Default::default()
            })
        };
        let links = s
            .links
            .links(a.hazard.place_hazard(), d.label_point, &d.jma_code);
        let shelters = shelters_for(s.place, id, a.hazard, &status, s.shelter_reach);
        let mut messages = s.templates.compose(&ManualInput {
            alert: a,
            city,
            district: Some((&d.name, &d.id)),
            shelters: &shelters,
            hazard_map_url: &links.hazard_map,
            public_url: s.public_url,
            original: "",
            drill,
            at,
        })?;
        if a.level != Level::Lift {
            let reference = super::safety::reference(&step_key(a.id));
            for m in &mut messages {
                super::safety::attach(m, &reference);
                compose::check_message(m)?;
            }
        }
        out.push(Planned {
            messages,
            recipients,
        });
        if drill {
            break;
        }
    }
    Ok(out)
}

/// The scheduled job `alerts.dispatch`: every second (and when woken), sends the alerts whose cancel window
/// has ended, then wakes the outbox sender.
pub struct Dispatcher {
    pub store: Store,
    pub templates: ManualTemplates,
    pub place: std::sync::Arc<PlaceData>,
    pub links: crate::place::links::LinkTemplates,
    pub public_url: String,
    pub city: String,
    pub drill_audience: Vec<String>,
    pub shelter_reach: super::policy::ShelterReach,
    pub outbox: crate::delivery::Outbox,
}

impl Dispatcher {
    pub fn job(self, wake: crate::scheduler::Wake) -> crate::scheduler::Job {
        let d = std::sync::Arc::new(self);
        crate::scheduler::Job::every(
            "alerts.dispatch",
            std::time::Duration::from_secs(1),
            move || {
                let d = d.clone();
                async move {
                    let dd = d.clone();
                    let sent = d
                        .store
                        .write(move |tx| {
                            let s = Sending {
                                templates: &dd.templates,
                                place: &dd.place,
                                links: &dd.links,
                                public_url: &dd.public_url,
                                city: &dd.city,
                                drill_audience: &dd.drill_audience,
                                shelter_reach: dd.shelter_reach,
                            };
                            let drill = drill_active(tx)?;
                            dispatch_due(tx, &s, drill, Utc::now())
                        })
                        .await?;
                    if sent > 0 {
                        tracing::warn!(
                            alerts = sent,
                            "city evacuation information sent to the outbox"
                        );
                    }
                    // Also after console writes that enqueue without a sender handle of their own (a staff
                    // message to a resident who asked for help wakes this job).
                    d.outbox.wake();
                    Ok(())
                }
            },
        )
        .woken_by(wake)
    }
}

/// Recipients per district (active residents), for the composer's counts.
pub fn recipients_by_district(
    conn: &Connection,
    districts: &[String],
) -> anyhow::Result<HashMap<String, i64>> {
    let mut st = conn
        .prepare_cached("SELECT count(*) FROM residents WHERE active = 1 AND district_id = ?1")?;
    let mut out = HashMap::new();
    for d in districts {
        let n: i64 = st.query_row([d], |r| r.get(0))?;
        out.insert(d.clone(), n);
    }
    Ok(out)
}

/// Sends every approved alert whose cancel window has ended: enqueues its batches, marks it sent and audits
/// it in one transaction per alert. `drill` (a drill is running now) or an alert drafted during a drill
/// sends to the drill audience only, marked 【訓練】. Returns how many were sent (the caller wakes the outbox
/// sender).
pub fn dispatch_due(
    tx: &Transaction<'_>,
    s: &Sending<'_>,
    drill: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let due: Vec<ManualAlert> = {
        let mut st = tx.prepare(&format!(
            "SELECT {COLUMNS} FROM manual_alerts WHERE status = 'approved' AND send_at_ms <= ?1 ORDER BY id"
        ))?;
        let rows = st.query_map([now.timestamp_millis()], row)?;
        rows.collect::<Result<_, _>>()?
    };
    let now_ms = now.timestamp_millis();
    let drill_now = drill;
    for a in &due {
        let drill = drill_now || a.drill;
        let original: String = match a.refers_to {
            Some(o) => {
                delivery::cancel_pending(tx, o, now_ms)?;
                tx.query_row(
                    "SELECT summary FROM delivery_alerts WHERE id = ?1",
                    [o],
                    |r| r.get(0),
                )?
            }
            None => String::new(),
        };
        let plans = plans(tx, s, a, drill, now)?;
        let summary = s.templates.summary(a, &original, drill);
        let detail = json!({
            "manual_alert": a.id,
            "level": a.level.number(),
            "level_label": s.templates.level_label(a.level),
            "hazard": s.templates.hazard_ja(a.hazard),
            "districts": a.districts,
            "headline": summary,
            "text": a.free_text,
            "references": a.refers_to,
            "msg_type": match a.kind { Kind::Alert => "Alert", Kind::Correction => "Update", Kind::Withdrawal => "Cancel" },
            "drafted_by": a.drafted_by,
            "approved_by": a.approved_by,
            "drill": drill,
        });
        let alert = NewAlert {
            step_key: step_key(a.id),
            source: if drill { "drill" } else { "manual" }.into(),
            kind: a.kind.as_str().into(),
            priority: PRIORITY,
            summary,
            detail,
        };
        let enqueued = delivery::enqueue(tx, &alert, &plans, now_ms)?;
        let (alert_id, recipients) = match enqueued {
            Enqueued::Created {
                alert_id,
                recipients,
                ..
            } => (alert_id, recipients as i64),
            Enqueued::Duplicate { alert_id } => (alert_id, 0),
        };
        tx.execute(
            "UPDATE manual_alerts SET status = 'sent', delivery_alert_id = ?2, recipients = ?3 WHERE id = ?1",
            params![a.id, alert_id, recipients],
        )?;
        Store::audit(
            tx,
            "system",
            "alert.sent",
            &json!({
                "manual_alert": a.id,
                "delivery_alert": alert_id,
                "recipients": recipients,
                "drafted_by": a.drafted_by,
                "approved_by": a.approved_by,
                "summary": alert.summary,
                "drill": drill,
            }),
        )?;
    }
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/demo");

    fn place() -> (PlaceData, crate::place::links::LinkTemplates) {
        let cfg = crate::place::PlaceConfig {
            city_name: "札幌市".into(),
            districts: format!("{DEMO}/sapporo-districts.geojson").into(),
            shelters: vec![format!("{DEMO}/sapporo-01100-shitei-kinkyu-hinanbasho.csv").into()],
            ..Default::default()
        };
        (PlaceData::load(&cfg).unwrap(), cfg.links)
    }

    fn user(n: u128) -> String {
        format!("U{n:032x}")
    }

    fn store_with_residents(
        place: &PlaceData,
        per_district: &[(usize, u128)],
    ) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let ids: Vec<String> = place.districts.all().iter().map(|d| d.id.clone()).collect();
        store
            .write_blocking(|tx| {
                for &(d, n) in per_district {
                    for i in 0..n {
                        let u =
                            crate::ids::LineUserId::parse(&user((d as u128) << 16 | i)).unwrap();
                        crate::resident::follow_tx(tx, &u)?;
                        crate::resident::set_district_tx(tx, &u, &ids[d])?;
                    }
                }
                Ok(())
            })
            .unwrap();
        (dir, store)
    }

    /// Drafted by sato, submitted, approved by suzuki at `t0`.
    fn approved(store: &Store, d: &Draft, t0: DateTime<Utc>) -> i64 {
        let id = store
            .write_blocking(|tx| create_draft(tx, d, "sato", t0))
            .unwrap();
        store
            .write_blocking(|tx| submit(tx, id, "sato", false))
            .unwrap()
            .unwrap();
        store
            .write_blocking(|tx| approve(tx, id, "suzuki", t0))
            .unwrap()
            .unwrap();
        id
    }

    fn draft(place: &PlaceData, districts: &[usize]) -> Draft {
        let all = place.districts.all();
        Draft {
            level: Level::Evacuate,
            hazard: Hazard::Flood,
            districts: districts.iter().map(|&i| all[i].id.clone()).collect(),
            free_text: "豊平川の水位が上がっています。".into(),
        }
    }

    #[test]
    fn the_embedded_templates_compose_every_level_hazard_and_kind_within_lines_limits() {
        ManualTemplates::embedded().unwrap();
    }

    #[test]
    fn the_drafter_cannot_approve_their_own_alert_and_a_second_person_can() {
        let (place, _) = place();
        let (_d, store) = store_with_residents(&place, &[]);
        let now = Utc::now();
        let d = draft(&place, &[0]);
        let id = store
            .write_blocking(|tx| create_draft(tx, &d, "sato", now))
            .unwrap();
        // Not yet submitted: nobody approves a draft.
        let r = store
            .write_blocking(|tx| approve(tx, id, "suzuki", now))
            .unwrap();
        assert_eq!(r, Err(Refusal::WrongState(Status::Draft)));
        store
            .write_blocking(|tx| submit(tx, id, "sato", false))
            .unwrap()
            .unwrap();
        let r = store
            .write_blocking(|tx| approve(tx, id, "sato", now))
            .unwrap();
        assert_eq!(r, Err(Refusal::SamePerson));
        let send_at = store
            .write_blocking(|tx| approve(tx, id, "suzuki", now))
            .unwrap()
            .unwrap();
        assert_eq!(send_at, now.timestamp_millis() + CANCEL_WINDOW_MS);
        // A replayed approval changes nothing.
        let r = store
            .write_blocking(|tx| approve(tx, id, "tanaka", now))
            .unwrap();
        assert_eq!(r, Err(Refusal::WrongState(Status::Approved)));
        let a = store.read_blocking(|c| get(c, id)).unwrap().unwrap();
        assert_eq!(a.approved_by.as_deref(), Some("suzuki"));
    }

    #[test]
    fn an_approved_alert_can_be_stopped_only_inside_its_window_and_then_sends_nothing() {
        let (place, links) = place();
        let (_d, store) = store_with_residents(&place, &[(0, 3)]);
        let templates = ManualTemplates::embedded().unwrap();
        let s = Sending {
            templates: &templates,
            place: &place,
            links: &links,
            public_url: "http://127.0.0.1:8080",
            city: "札幌市",
            drill_audience: &[],
            shelter_reach: Default::default(),
        };
        let t0 = Utc::now();
        let d = draft(&place, &[0]);
        let mk = |store: &Store| {
            let id = store
                .write_blocking(|tx| create_draft(tx, &d, "sato", t0))
                .unwrap();
            store
                .write_blocking(|tx| submit(tx, id, "sato", false))
                .unwrap()
                .unwrap();
            store
                .write_blocking(|tx| approve(tx, id, "suzuki", t0))
                .unwrap()
                .unwrap();
            id
        };
        let a = mk(&store);
        let in_window = t0 + chrono::Duration::seconds(9);
        store
            .write_blocking(|tx| cancel(tx, a, "suzuki", true, in_window))
            .unwrap()
            .unwrap();
        let b = mk(&store);
        let late = t0 + chrono::Duration::seconds(10);
        let r = store
            .write_blocking(|tx| cancel(tx, b, "suzuki", true, late))
            .unwrap();
        assert_eq!(r, Err(Refusal::WindowClosed));
        // Before the window ends nothing is sent; after it, only the alert that was not stopped.
        let sent = store
            .write_blocking(|tx| dispatch_due(tx, &s, false, in_window))
            .unwrap();
        assert_eq!(sent, 0);
        let sent = store
            .write_blocking(|tx| dispatch_due(tx, &s, false, late))
            .unwrap();
        assert_eq!(sent, 1);
        let (sa, sb) = store
            .read_blocking(|c| Ok((get(c, a)?.unwrap(), get(c, b)?.unwrap())))
            .unwrap();
        assert_eq!(sa.status, Status::Cancelled);
        assert_eq!(sb.status, Status::Sent);
        assert_eq!(sb.recipients, Some(3));
        // Sending again is a no-op: the alert is sent once.
        let again = store
            .write_blocking(|tx| dispatch_due(tx, &s, false, late))
            .unwrap();
        assert_eq!(again, 0);
        let n: i64 = store
            .read_blocking(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM delivery_alerts WHERE source = 'manual'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_correction_reaches_exactly_who_the_original_reached_and_stops_its_unsent_batches() {
        let (place, links) = place();
        // 1,200 residents in one district: three batches (500, 500, 200).
        let (_d, store) = store_with_residents(&place, &[(0, 1200), (1, 5)]);
        let templates = ManualTemplates::embedded().unwrap();
        let s = Sending {
            templates: &templates,
            place: &place,
            links: &links,
            public_url: "http://127.0.0.1:8080",
            city: "札幌市",
            drill_audience: &[],
            shelter_reach: Default::default(),
        };
        let t0 = Utc::now();
        let d = draft(&place, &[0]);
        let id = approved(&store, &d, t0);
        let t1 = t0 + chrono::Duration::seconds(11);
        store
            .write_blocking(|tx| dispatch_due(tx, &s, false, t1))
            .unwrap();
        let original = store
            .read_blocking(|c| get(c, id))
            .unwrap()
            .unwrap()
            .delivery_alert_id
            .unwrap();
        // The sender got through the first batch; the second is in flight; the third waits.
        let batches: Vec<i64> = store
            .read_blocking(|c| {
                let mut st =
                    c.prepare("SELECT id FROM delivery_batches WHERE alert_id = ?1 ORDER BY id")?;
                let v = st
                    .query_map([original], |r| r.get(0))?
                    .collect::<Result<Vec<i64>, _>>()?;
                Ok(v)
            })
            .unwrap();
        assert_eq!(batches.len(), 3);
        store
            .write_blocking(|tx| {
                tx.execute(
                    "UPDATE delivery_batches SET status = 'accepted' WHERE id = ?1",
                    [batches[0]],
                )?;
                tx.execute(
                    "UPDATE delivery_batches SET status = 'in_flight' WHERE id = ?1",
                    [batches[1]],
                )?;
                Ok(())
            })
            .unwrap();
        // An approver withdraws it alone; the audit says the second person was waived.
        let fix = store
            .write_blocking(|tx| correct(tx, original, true, "", "suzuki", t1))
            .unwrap()
            .unwrap();
        store
            .write_blocking(|tx| dispatch_due(tx, &s, false, t1))
            .unwrap();
        let f = store.read_blocking(|c| get(c, fix)).unwrap().unwrap();
        assert_eq!(f.status, Status::Sent);
        assert_eq!(
            f.recipients,
            Some(1000),
            "the accepted and the in-flight batch, not the unsent one"
        );
        let p = store
            .read_blocking(|c| delivery::progress(c, original))
            .unwrap()
            .unwrap();
        assert_eq!(p.cancelled, 200);
        let reached: std::collections::HashSet<String> = store
            .read_blocking(|c| {
                let mut v = delivery::recipient_outcomes(c, original)?;
                v.retain(|(_, s)| s == "accepted" || s == "in_flight");
                Ok(v.into_iter().map(|(u, _)| u).collect())
            })
            .unwrap();
        let fixed: std::collections::HashSet<String> = store
            .read_blocking(|c| {
                Ok(
                    delivery::recipient_outcomes(c, f.delivery_alert_id.unwrap())?
                        .into_iter()
                        .map(|(u, _)| u)
                        .collect(),
                )
            })
            .unwrap();
        assert_eq!(reached, fixed);
        let audit: String = store
            .read_blocking(|c| {
                Ok(c.query_row(
                    "SELECT detail FROM audit_log WHERE action = 'alert.correct'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert!(audit.contains("waived"), "{audit}");
        // The message says what is withdrawn.
        let body: String = store
            .read_blocking(|c| {
                Ok(c.query_row(
                    "SELECT body FROM delivery_messages WHERE alert_id = ?1",
                    [f.delivery_alert_id.unwrap()],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert!(
            body.contains("【取消】") && body.contains("避難指示"),
            "{body}"
        );
    }

    #[test]
    fn a_draft_with_a_district_not_in_the_city_or_no_district_is_refused() {
        let (place, _) = place();
        let mut d = draft(&place, &[0]);
        d.districts.push("not-a-district".into());
        assert!(
            matches!(check_draft(&d, &place), Err(Refusal::Invalid(m)) if m.contains("not-a-district"))
        );
        d.districts.clear();
        assert!(check_draft(&d, &place).is_err());
    }

    #[test]
    fn an_alert_drafted_during_a_drill_stays_a_drill_after_the_drill_ends() {
        let (place, links) = place();
        let (_d, store) = store_with_residents(&place, &[(0, 4)]);
        let templates = ManualTemplates::embedded().unwrap();
        let staff = vec![user(0xfeed)];
        let s = Sending {
            templates: &templates,
            place: &place,
            links: &links,
            public_url: "http://127.0.0.1:8080",
            city: "札幌市",
            drill_audience: &staff,
            shelter_reach: Default::default(),
        };
        let t0 = Utc::now();
        store
            .write_blocking(|tx| set_drill(tx, true, "suzuki", t0))
            .unwrap();
        let d = draft(&place, &[0]);
        let id = approved(&store, &d, t0);
        store
            .write_blocking(|tx| set_drill(tx, false, "suzuki", t0))
            .unwrap();
        let late = t0 + chrono::Duration::seconds(11);
        store
            .write_blocking(|tx| {
                let drill = drill_active(tx)?;
                dispatch_due(tx, &s, drill, late)
            })
            .unwrap();
        let a = store.read_blocking(|c| get(c, id)).unwrap().unwrap();
        let out = store
            .read_blocking(|c| delivery::recipient_outcomes(c, a.delivery_alert_id.unwrap()))
            .unwrap();
        assert_eq!(out, vec![(staff[0].clone(), "pending".to_string())]);
    }

    #[test]
    fn in_a_drill_only_the_drill_audience_gets_it_marked_as_a_drill() {
        let (place, links) = place();
        let (_d, store) = store_with_residents(&place, &[(0, 4)]);
        let templates = ManualTemplates::embedded().unwrap();
        let staff = vec![user(0xfeed)];
        let s = Sending {
            templates: &templates,
            place: &place,
            links: &links,
            public_url: "http://127.0.0.1:8080",
            city: "札幌市",
            drill_audience: &staff,
            shelter_reach: Default::default(),
        };
        let t0 = Utc::now();
        let d = draft(&place, &[0, 1]);
        let id = approved(&store, &d, t0);
        store
            .write_blocking(|tx| dispatch_due(tx, &s, true, t0 + chrono::Duration::seconds(11)))
            .unwrap();
        let a = store.read_blocking(|c| get(c, id)).unwrap().unwrap();
        let out = store
            .read_blocking(|c| delivery::recipient_outcomes(c, a.delivery_alert_id.unwrap()))
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, staff[0]);
        let body: String = store
            .read_blocking(|c| {
                Ok(c.query_row(
                    "SELECT body FROM delivery_messages WHERE alert_id = ?1",
                    [a.delivery_alert_id.unwrap()],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert!(body.contains("【訓練】"), "{body}");
    }
}
