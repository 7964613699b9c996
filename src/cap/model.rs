//! From an outbox row (`delivery_alerts`) to a CAP 1.2 alert: pure, no I/O.
//!
//! Which rows: source `disaster` (JMA-driven steps, `detail` = [`AlertStep`]) and `manual` (the city's own
//! 避難情報, `detail` = [`ManualDetail`]). Drills (source `drill`, or a manual row marked `"drill": true`) are
//! **left out**: the feed is public, and nothing of a drill may reach anyone outside the drill audience.
//! Plow notices (`plow`) and every other source are not alerts. The mapping of levels to CAP's urgency,
//! severity, certainty and response type is in ARCHITECTURE.md ("CAP feed").

use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;

use crate::disaster::engine::{AlertStep, Family, Phenomenon, StepKind, WarningSnapshot};

/// One outbox row as the feed reads it.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: i64,
    pub source: String,
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub detail: serde_json::Value,
}

/// The `detail` of a manual alert (source `manual`), as the console writes it.
#[derive(Clone, Debug, Deserialize)]
pub struct ManualDetail {
    /// 3 高齢者等避難, 4 避難指示, 5 緊急安全確保, 0 解除.
    pub level: u8,
    pub level_label: String,
    /// 洪水 | 土砂災害 | 高潮 | 津波 | 地震 | その他.
    pub hazard: String,
    pub districts: Vec<String>,
    pub headline: String,
    #[serde(default)]
    pub text: String,
    /// `delivery_alerts.id` of the alert this one corrects or withdraws.
    #[serde(default)]
    pub references: Option<i64>,
    /// Alert | Update | Cancel.
    pub msg_type: String,
    /// A manual alert sent during a drill (never published).
    #[serde(default)]
    pub drill: bool,
}

/// What a row is, once parsed; `None` from [`parse`] for rows the feed leaves out.
#[derive(Clone, Debug)]
pub enum Parsed {
    Jma(Box<AlertStep>),
    Manual(ManualDetail),
}

/// Parses a row the feed publishes. `Ok(None)`: not published (drill, plow, other sources). `Err`: a row
/// that should be published but whose detail is unreadable (logged by the caller, left out).
pub fn parse(row: &Row) -> Result<Option<Parsed>, String> {
    match row.source.as_str() {
        "disaster" => {
            let step: AlertStep = serde_json::from_value(row.detail.clone())
                .map_err(|e| format!("alert {}: detail is not an engine step: {e}", row.id))?;
            if step.drill {
                return Ok(None);
            }
            Ok(Some(Parsed::Jma(Box::new(step))))
        }
        "manual" => {
            let m: ManualDetail = serde_json::from_value(row.detail.clone())
                .map_err(|e| format!("alert {}: detail is not a manual alert: {e}", row.id))?;
            if m.drill {
                return Ok(None);
            }
            if !matches!(m.msg_type.as_str(), "Alert" | "Update" | "Cancel") {
                return Err(format!(
                    "alert {}: msg_type {:?} is not Alert, Update or Cancel",
                    row.id, m.msg_type
                ));
            }
            if !matches!(m.level, 0 | 3 | 4 | 5) {
                return Err(format!(
                    "alert {}: level {} is not 3, 4, 5 or 0",
                    row.id, m.level
                ));
            }
            Ok(Some(Parsed::Manual(m)))
        }
        _ => Ok(None),
    }
}

/// Who publishes: `sender` (globally unique: the host of `server.public_url`), the city's name, and the base
/// URL for links.
#[derive(Clone, Debug)]
pub struct Publisher {
    pub sender: String,
    pub city: String,
    pub public_url: String,
}

impl Publisher {
    pub fn identifier(&self, id: i64) -> String {
        format!("sonae-alert-{id}")
    }
    /// `sender,identifier,sent` of an earlier message, for `<references>`.
    pub fn reference(&self, id: i64, sent: DateTime<Utc>) -> String {
        format!("{},{},{}", self.sender, self.identifier(id), cap_time(sent))
    }
}

/// CAP's date-time form: explicit offset (JST), no fraction, never `Z`.
pub fn cap_time(t: DateTime<Utc>) -> String {
    let jst = FixedOffset::east_opt(9 * 3600).expect("JST");
    t.with_timezone(&jst)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn jst_text(t: DateTime<Utc>) -> String {
    let jst = FixedOffset::east_opt(9 * 3600).expect("JST");
    t.with_timezone(&jst)
        .format("%Y年%-m月%-d日 %-H時%M分")
        .to_string()
}

/// A CAP alert with one Japanese `<info>`; areas are filled in by the caller from the place data.
#[derive(Clone, Debug, PartialEq)]
pub struct CapAlert {
    pub identifier: String,
    pub sender: String,
    pub sent: String,
    pub status: &'static str,
    pub msg_type: &'static str,
    pub source: Option<String>,
    pub note: Option<String>,
    pub references: Vec<String>,
    pub incidents: Option<String>,
    pub info: CapInfo,
    /// District ids whose polygons make the areas, or names when no place data is loaded.
    pub districts: Vec<String>,
    pub district_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CapInfo {
    pub categories: Vec<&'static str>,
    pub event: String,
    pub response_types: Vec<&'static str>,
    pub urgency: &'static str,
    pub severity: &'static str,
    pub certainty: &'static str,
    pub event_codes: Vec<(String, String)>,
    pub effective: Option<String>,
    pub sender_name: String,
    pub headline: String,
    pub description: String,
    pub instruction: Option<String>,
    pub web: String,
    pub parameters: Vec<(String, String)>,
}

/// Urgency, severity, certainty for a 警戒レベル (or 相当) that is in force. See ARCHITECTURE.md.
pub fn assessment(level: u8) -> (&'static str, &'static str, &'static str) {
    match level {
        5.. => ("Immediate", "Extreme", "Likely"),
        4 => ("Immediate", "Severe", "Likely"),
        3 => ("Expected", "Moderate", "Likely"),
        _ => ("Future", "Minor", "Possible"),
    }
}

/// An all-clear (解除): the danger has passed.
const ALL_CLEAR: (&str, &str, &str) = ("Past", "Minor", "Observed");
/// A withdrawal (取消): the earlier message should not have been sent.
const WITHDRAWN: (&str, &str, &str) = ("Past", "Minor", "Unlikely");

fn category_of(p: Phenomenon) -> &'static str {
    match p {
        Phenomenon::Landslide
        | Phenomenon::Tsunami
        | Phenomenon::Earthquake
        | Phenomenon::Volcano => "Geo",
        Phenomenon::Other => "Other",
        _ => "Met",
    }
}

fn category_of_hazard(h: &str) -> &'static str {
    match h {
        "洪水" | "高潮" => "Met",
        "土砂災害" | "津波" | "地震" => "Geo",
        _ => "Other",
    }
}

fn level_of(w: &WarningSnapshot) -> u8 {
    w.level.unwrap_or(w.severity.implied_level())
}

/// The action residents are asked to take for a JMA warning in force.
fn jma_response(p: Phenomenon, w: &WarningSnapshot) -> &'static str {
    let level = level_of(w);
    match (p, w.family) {
        (_, Family::Intensity) | (Phenomenon::Earthquake, _) => "Assess",
        (Phenomenon::Tsunami, _) => {
            if level >= 3 {
                "Evacuate"
            } else {
                "Avoid"
            }
        }
        // Wind, snow and waves carry no 警戒レベル: stay indoors when it is a 特別警報.
        (
            Phenomenon::Storm | Phenomenon::Snowstorm | Phenomenon::HeavySnow | Phenomenon::Waves,
            _,
        ) => match w.severity {
            crate::disaster::Severity::Emergency => "Shelter",
            crate::disaster::Severity::Advisory => "Monitor",
            _ => "Prepare",
        },
        _ => match level {
            5.. => "Shelter",
            4 => "Evacuate",
            3 => "Prepare",
            _ => "Monitor",
        },
    }
}

fn level_instruction(level: u8) -> Option<&'static str> {
    match level {
        5.. => Some("命の危険があります。直ちに身の安全を確保してください。"),
        4 => Some("危険な場所にいる人は全員、避難してください。"),
        3 => Some("高齢者や障害のある人など避難に時間のかかる人は、危険な場所から避難してください。ほかの人も避難の準備をしてください。"),
        _ => None,
    }
}

/// Maps a JMA-driven step. `references` are the earlier messages of the same thread's episode (oldest first).
pub fn from_step(p: &Publisher, row: &Row, step: &AlertStep, references: Vec<String>) -> CapAlert {
    let muni = &step.municipality_name;
    let now_in_force = step.current.as_ref();
    let before = step.previous.as_ref();
    // What the info describes: the warning in force after the step, else (lift, withdrawal of everything)
    // the one that ended.
    let in_force = match step.kind {
        StepKind::Lift => None,
        _ => now_in_force,
    };
    let subject = in_force.or(before);
    let name = subject.map_or(step.phenomenon.ja().to_string(), |w| w.name.clone());
    let prev_name = before.map_or(name.clone(), |w| w.name.clone());
    let (msg_type, headline) = match step.kind {
        StepKind::Issue => ("Alert", format!("{muni}に{name}が発表されました")),
        StepKind::Escalation => (
            "Update",
            format!("{muni}の{prev_name}は{name}に引き上げられました"),
        ),
        StepKind::Downgrade => (
            "Update",
            format!("{muni}の{prev_name}は{name}に切り替えられました"),
        ),
        StepKind::Lift => ("Update", format!("{muni}の{prev_name}は解除されました")),
        StepKind::Correction => (
            "Update",
            format!("{muni}の{prev_name}は{name}に訂正されました"),
        ),
        // A withdrawal that leaves an earlier warning in force updates the thread; one that leaves nothing
        // cancels it.
        StepKind::Cancellation => match now_in_force {
            Some(w) => (
                "Update",
                format!(
                    "{muni}の{prev_name}は取り消されました。現在は{}が発表中です",
                    w.name
                ),
            ),
            None => ("Cancel", format!("{muni}の{prev_name}は取り消されました")),
        },
    };
    let ((urgency, severity, certainty), responses, instruction) = match (step.kind, in_force) {
        (StepKind::Lift, _) => (ALL_CLEAR, vec!["AllClear"], None),
        (_, None) => (WITHDRAWN, vec!["None"], None),
        (_, Some(w)) => {
            let mut a = assessment(level_of(w));
            if w.family == Family::Intensity {
                a.2 = "Observed";
            }
            let instruction = w.level.and_then(|l| {
                level_instruction(l).map(|s| {
                    format!("警戒レベル{l}相当の情報です。{s}市の避難情報にも従ってください。")
                })
            });
            (a, vec![jma_response(step.phenomenon, w)], instruction)
        }
    };
    let mut description = format!("{headline}。");
    if let Some(w) = subject {
        description.push_str(&format!("\n発表: {}", jst_text(w.issued_at)));
    }
    description.push_str(&format!(
        "\n気象庁の発表（{}）に基づき、{}の LINE 公式アカウントで対象地区の住民にお知らせしました。",
        jst_text(step.reported_at),
        p.city
    ));
    let mut event_codes = Vec::new();
    let mut parameters = Vec::new();
    if let Some(w) = subject {
        event_codes.push((format!("JMA-{}", w.family.key()), w.code.clone()));
        if let Some(l) = w.level {
            parameters.push(("警戒レベル相当".to_string(), l.to_string()));
        }
    }
    CapAlert {
        identifier: p.identifier(row.id),
        sender: p.sender.clone(),
        sent: cap_time(row.created_at),
        status: "Actual",
        msg_type,
        source: Some("気象庁".into()),
        note: match step.kind {
            StepKind::Correction => Some("訂正".into()),
            StepKind::Cancellation => Some("取消".into()),
            _ => None,
        },
        references,
        incidents: Some(step.thread.clone()),
        info: CapInfo {
            categories: vec![category_of(step.phenomenon)],
            event: name,
            response_types: responses,
            urgency,
            severity,
            certainty,
            event_codes,
            effective: Some(cap_time(step.reported_at)),
            sender_name: format!("{}（気象庁の発表に基づく）", p.city),
            headline,
            description,
            instruction,
            web: format!("{}/shelters", p.public_url.trim_end_matches('/')),
            parameters,
        },
        districts: step.districts.iter().map(|d| d.id.clone()).collect(),
        district_names: step.districts.iter().map(|d| d.name.clone()).collect(),
    }
}

/// Maps a manual alert of the city. `references` as for [`from_step`].
pub fn from_manual(
    p: &Publisher,
    row: &Row,
    m: &ManualDetail,
    references: Vec<String>,
) -> CapAlert {
    let msg_type = match m.msg_type.as_str() {
        "Update" => "Update",
        "Cancel" => "Cancel",
        _ => "Alert",
    };
    let ((urgency, severity, certainty), responses, instruction) = if msg_type == "Cancel" {
        (WITHDRAWN, vec!["None"], None)
    } else if m.level == 0 {
        (ALL_CLEAR, vec!["AllClear"], None)
    } else {
        let responses = match m.level {
            5 => vec!["Shelter"],
            4 => vec!["Evacuate"],
            _ => vec!["Evacuate", "Prepare"],
        };
        (
            assessment(m.level),
            responses,
            level_instruction(m.level).map(str::to_string),
        )
    };
    let mut parameters = Vec::new();
    if m.level > 0 {
        parameters.push(("警戒レベル".to_string(), m.level.to_string()));
    }
    CapAlert {
        identifier: p.identifier(row.id),
        sender: p.sender.clone(),
        sent: cap_time(row.created_at),
        status: "Actual",
        msg_type,
        source: None,
        note: match msg_type {
            "Update" => Some("訂正".into()),
            "Cancel" => Some("取消".into()),
            _ => None,
        },
        references,
        incidents: None,
        info: CapInfo {
            categories: vec![category_of_hazard(&m.hazard)],
            event: format!("{}（{}）", m.level_label, m.hazard),
            response_types: responses,
            urgency,
            severity,
            certainty,
            event_codes: Vec::new(),
            effective: Some(cap_time(row.created_at)),
            sender_name: p.city.clone(),
            headline: m.headline.clone(),
            description: if m.text.trim().is_empty() {
                m.headline.clone()
            } else {
                m.text.clone()
            },
            instruction,
            web: format!("{}/shelters", p.public_url.trim_end_matches('/')),
            parameters,
        },
        districts: m.districts.clone(),
        district_names: m.districts.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher() -> Publisher {
        Publisher {
            sender: "sonae.city.example.jp".into(),
            city: "札幌市".into(),
            public_url: "https://sonae.city.example.jp/".into(),
        }
    }

    fn manual_row(id: i64, detail: serde_json::Value) -> Row {
        Row {
            id,
            source: "manual".into(),
            kind: "manual".into(),
            created_at: "2026-09-12T01:02:03.456Z".parse().unwrap(),
            detail,
        }
    }

    #[test]
    fn a_manual_evacuation_order_maps_to_an_immediate_severe_evacuate_alert() {
        let row = manual_row(
            7,
            serde_json::json!({
                "level": 4, "level_label": "避難指示", "hazard": "洪水",
                "districts": ["01101-0001", "01101-0002"],
                "headline": "【避難指示】中央区の一部に避難指示", "text": "豊平川が氾濫するおそれがあります。",
                "references": null, "msg_type": "Alert", "drafted_by": "tanaka", "approved_by": "suzuki"
            }),
        );
        let Ok(Some(Parsed::Manual(m))) = parse(&row) else {
            panic!("a manual row is published");
        };
        let cap = from_manual(&publisher(), &row, &m, vec![]);
        assert_eq!(cap.identifier, "sonae-alert-7");
        assert_eq!(cap.sent, "2026-09-12T10:02:03+09:00");
        assert_eq!((cap.status, cap.msg_type), ("Actual", "Alert"));
        assert_eq!(
            (cap.info.urgency, cap.info.severity, cap.info.certainty),
            ("Immediate", "Severe", "Likely")
        );
        assert_eq!(cap.info.response_types, ["Evacuate"]);
        assert_eq!(cap.info.categories, ["Met"]);
        assert_eq!(cap.info.event, "避難指示（洪水）");
        assert_eq!(cap.info.description, "豊平川が氾濫するおそれがあります。");
        assert_eq!(cap.info.sender_name, "札幌市");
        assert_eq!(cap.info.web, "https://sonae.city.example.jp/shelters");
        assert_eq!(cap.districts, ["01101-0001", "01101-0002"]);
        // Staff names stay inside the city.
        assert!(!format!("{cap:?}").contains("tanaka"));
    }

    #[test]
    fn manual_lift_and_withdrawal_are_all_clear_and_cancel() {
        let lift = manual_row(
            9,
            serde_json::json!({
                "level": 0, "level_label": "解除", "hazard": "土砂災害", "districts": ["a"],
                "headline": "避難指示を解除しました", "text": "", "references": 7, "msg_type": "Update",
                "drafted_by": "a", "approved_by": "b"
            }),
        );
        let Ok(Some(Parsed::Manual(m))) = parse(&lift) else {
            panic!()
        };
        let refs = vec![publisher().reference(7, "2026-09-12T00:00:00Z".parse().unwrap())];
        let cap = from_manual(&publisher(), &lift, &m, refs.clone());
        assert_eq!(cap.msg_type, "Update");
        assert_eq!(
            cap.references,
            ["sonae.city.example.jp,sonae-alert-7,2026-09-12T09:00:00+09:00"]
        );
        assert_eq!(cap.info.response_types, ["AllClear"]);
        assert_eq!((cap.info.urgency, cap.info.severity), ("Past", "Minor"));
        assert_eq!(cap.info.categories, ["Geo"]);
        assert_eq!(cap.info.description, "避難指示を解除しました");

        let mut cancel = lift.clone();
        cancel.detail["msg_type"] = "Cancel".into();
        cancel.detail["level"] = 5.into();
        let Ok(Some(Parsed::Manual(m))) = parse(&cancel) else {
            panic!()
        };
        let cap = from_manual(&publisher(), &cancel, &m, refs);
        assert_eq!(cap.msg_type, "Cancel");
        assert_eq!(cap.info.response_types, ["None"]);
        assert_eq!(cap.note.as_deref(), Some("取消"));
    }

    #[test]
    fn drills_plow_notices_and_bad_manual_rows_are_not_published() {
        let mut row = manual_row(1, serde_json::json!({}));
        assert!(parse(&row).is_err(), "unreadable manual detail is an error");
        row.detail = serde_json::json!({
            "level": 4, "level_label": "避難指示", "hazard": "洪水", "districts": [],
            "headline": "【訓練】", "msg_type": "Alert", "drill": true
        });
        assert!(matches!(parse(&row), Ok(None)), "a drill is left out");
        row.detail["drill"] = false.into();
        row.detail["msg_type"] = "Ack".into();
        assert!(parse(&row).is_err());
        row.detail["msg_type"] = "Alert".into();
        row.detail["level"] = 2.into();
        assert!(parse(&row).is_err());
        for source in ["drill", "plow"] {
            let r = Row {
                source: source.into(),
                ..manual_row(2, serde_json::json!({"anything": 1}))
            };
            assert!(matches!(parse(&r), Ok(None)), "{source}");
        }
    }

    #[test]
    fn levels_map_to_cap_assessments() {
        assert_eq!(assessment(5), ("Immediate", "Extreme", "Likely"));
        assert_eq!(assessment(4), ("Immediate", "Severe", "Likely"));
        assert_eq!(assessment(3), ("Expected", "Moderate", "Likely"));
        assert_eq!(assessment(2), ("Future", "Minor", "Possible"));
    }
}
