//! Alert messages: one LINE Flex message per (alert step, district), from the templates in
//! `templates/alerts/` (see the README there). Pure: templates are loaded once at start, then composing is
//! string work on `serde_json::Value`.
//!
//! Placeholders are filled *inside parsed JSON strings*, never by text substitution on the file, so a shelter
//! name with a quote or a backslash cannot break the JSON. Every composed message is checked against LINE's
//! limits (altText ≤ 1,500 characters, bubble JSON ≤ 30 KB, URI ≤ 1,000, button label ≤ 40) and against the
//! `Message` schema of LINE's official OpenAPI document ([`crate::line::spec::validate_schema`]) before it is
//! handed to the outbox; the same checks run over every variant when the templates are loaded.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::engine::{AlertStep, DistrictRef, Phenomenon, StepKind};

/// LINE: Flex bubble JSON ≤ 30 KB (ref `#flex-message` "bubble … 30 KB").
pub const MAX_BUBBLE_BYTES: usize = 30 * 1024;
/// LINE: altText ≤ 1,500 characters.
pub const MAX_ALT_TEXT_CHARS: usize = 1500;
/// LINE: URI action ≤ 1,000 characters.
pub const MAX_URI_CHARS: usize = 1000;
/// LINE: Flex button label ≤ 40 characters.
pub const MAX_BUTTON_LABEL_CHARS: usize = 40;
/// At most this many shelters are listed in one message.
pub const MAX_SHELTERS: usize = 3;

const EMBEDDED: [(&str, &str); 4] = [
    (
        "alert.json",
        include_str!("../../templates/alerts/alert.json"),
    ),
    (
        "lifted.json",
        include_str!("../../templates/alerts/lifted.json"),
    ),
    (
        "shelter_row.json",
        include_str!("../../templates/alerts/shelter_row.json"),
    ),
    (
        "texts.json",
        include_str!("../../templates/alerts/texts.json"),
    ),
];

const KNOWN: &[&str] = &[
    "colour",
    "text_colour",
    "accent_colour",
    "drill_mark",
    "heading",
    "title",
    "previous_title",
    "current_title",
    "phenomenon",
    "level_label",
    "municipality",
    "district",
    "issued",
    "date",
    "action",
    "note",
    "alt_suffix",
    "shelter_map_url",
    "kikikuru_url",
    "hazard_map_url",
    "jma_url",
    "shelter_name",
    "shelter_distance",
    "shelter_link",
    "shelter_status",
    "shelters_heading",
    "shelters_note",
    "register_data",
    "max_km",
];

/// A shelter suited to the hazard, as `place::Shelters::suggest` orders them (opened first, then nearest).
#[derive(Clone, Debug, PartialEq)]
pub struct ShelterRef {
    pub name: String,
    /// Great-circle distance from the district's reference point, metres.
    pub distance_m: f64,
    /// A map link for the shelter (e.g. 地理院地図 or the shelter page with the shelter selected).
    pub map_url: String,
    /// The city opened it (the message says 「開設中」); otherwise a designated site whose status the city has
    /// not announced (the message adds 「開設状況は市の発表をご確認ください」).
    pub opened: bool,
}

/// Links for the municipality (from `place`'s hazard-link builder). `None` drops the button.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HazardLinks {
    pub kikikuru: Option<String>,
    pub hazard_map: Option<String>,
    pub jma: Option<String>,
}

/// Whom one message is for: the residents of a district, or the friends who never registered one.
#[derive(Clone, Copy, Debug)]
pub enum Area<'a> {
    /// A district, with the shelters near it: suited to the hazard, within `max_km`, opened ones first;
    /// only the first [`MAX_SHELTERS`] are used. Empty: none that near (the message says so).
    District {
        district: &'a DistrictRef,
        shelters: &'a [ShelterRef],
        max_km: f64,
    },
    /// The municipality-level message for friends without a district: no district shelters, the shelter-map
    /// link and a 「地区を登録」 button (`action=register`).
    Unregistered,
}

/// What one message is built from.
#[derive(Clone, Copy, Debug)]
pub struct ComposeInput<'a> {
    pub step: &'a AlertStep,
    pub area: Area<'a>,
    pub links: &'a HazardLinks,
    /// `server.public_url`, for `{public_url}/shelters?district=…&hazard=…`.
    pub public_url: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("templates/alerts/{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("alert template directory {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ComposeError {
    #[error("composed message breaks a LINE limit: {0}")]
    Limit(String),
    #[error("composed message does not match LINE's OpenAPI schema: {}", .0.join("; "))]
    Schema(Vec<String>),
    #[error("step has no warning to describe")]
    NoWarning,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Texts {
    #[serde(rename = "_comment", default)]
    _comment: String,
    colours: BTreeMap<String, String>,
    text_colours: BTreeMap<String, String>,
    accent_colours: BTreeMap<String, String>,
    actions: BTreeMap<String, String>,
    level_labels: BTreeMap<String, String>,
    headings: BTreeMap<String, String>,
    notes: BTreeMap<String, String>,
    drill_mark: String,
    drill_note: String,
    shelters_heading_opened: String,
    shelters_heading: String,
    shelter_opened: String,
    shelters_unconfirmed: String,
    no_shelters_near: String,
    unregistered_area: String,
    unregistered_shelters: String,
    issued: String,
    lifted: String,
    alt_text: String,
    alt_suffixes: BTreeMap<String, String>,
}

/// The loaded, validated templates.
#[derive(Clone, Debug)]
pub struct Templates {
    alert: Value,
    lifted: Value,
    shelter_row: Value,
    texts: Texts,
}

impl Templates {
    /// The copy of `templates/alerts/` built into the binary.
    pub fn embedded() -> Result<Templates, TemplateError> {
        Templates::from_sources(|name| {
            EMBEDDED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| std::io::Error::other("missing"))
        })
    }

    /// Loads `alert.json`, `lifted.json`, `shelter_row.json` and `texts.json` from `dir` and validates them.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        Templates::from_sources(|name| std::fs::read_to_string(dir.join(name))).map_err(|e| match e
        {
            TemplateError::Io { source, .. } => TemplateError::Io {
                dir: dir.display().to_string(),
                source,
            },
            other => other,
        })
    }

    /// `disaster.templates_dir`: empty means embedded.
    pub fn from_config(dir: &str) -> Result<Templates, TemplateError> {
        if dir.is_empty() {
            Templates::embedded()
        } else {
            Templates::load(Path::new(dir))
        }
    }

    fn from_sources(
        read: impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<Templates, TemplateError> {
        let get = |name: &str| -> Result<String, TemplateError> {
            read(name).map_err(|source| TemplateError::Io {
                dir: name.to_string(),
                source,
            })
        };
        let json = |name: &str| -> Result<Value, TemplateError> {
            let text = get(name)?;
            let v: Value = serde_json::from_str(&text).map_err(|e| TemplateError::Invalid {
                file: name.into(),
                message: format!("not valid JSON: {e}"),
            })?;
            check_placeholders(&v).map_err(|message| TemplateError::Invalid {
                file: name.into(),
                message,
            })?;
            Ok(v)
        };
        let alert = json("alert.json")?;
        let lifted = json("lifted.json")?;
        let shelter_row = json("shelter_row.json")?;
        let texts_v = json("texts.json")?;
        let texts: Texts = serde_json::from_value(texts_v).map_err(|e| TemplateError::Invalid {
            file: "texts.json".into(),
            message: e.to_string(),
        })?;
        for (file, v) in [("alert.json", &alert), ("lifted.json", &lifted)] {
            if v.get("type").and_then(Value::as_str) != Some("bubble") {
                return Err(TemplateError::Invalid {
                    file: file.into(),
                    message:
                        "the top-level object must be a Flex bubble ({\"type\": \"bubble\", …})"
                            .into(),
                });
            }
        }
        for key in ["5", "4", "3", "2", "lift", "cancel"] {
            for (name, map) in [
                ("colours", &texts.colours),
                ("text_colours", &texts.text_colours),
            ] {
                match map.get(key) {
                    Some(c) if is_hex_colour(c) => {}
                    Some(c) => {
                        return Err(TemplateError::Invalid {
                            file: "texts.json".into(),
                            message: format!(
                                "{name}.{key}: \"{c}\" is not a colour; write it like \"#AA00AA\""
                            ),
                        })
                    }
                    None => {
                        return Err(TemplateError::Invalid {
                            file: "texts.json".into(),
                            message: format!(
                                "{name}.{key} is missing; add a colour like \"#AA00AA\""
                            ),
                        })
                    }
                }
            }
        }
        for kind in [
            "issue",
            "escalation",
            "downgrade",
            "lift",
            "correction",
            "cancellation",
        ] {
            for (name, map) in [
                ("headings", &texts.headings),
                ("notes", &texts.notes),
                ("alt_suffixes", &texts.alt_suffixes),
            ] {
                if !map.contains_key(kind) {
                    return Err(TemplateError::Invalid {
                        file: "texts.json".into(),
                        message: format!("{name}.{kind} is missing"),
                    });
                }
            }
        }
        for level in ["5", "4", "3", "2"] {
            if !texts.actions.contains_key(level) {
                return Err(TemplateError::Invalid {
                    file: "texts.json".into(),
                    message: format!(
                        "actions.{level} is missing (what to do at 警戒レベル{level})"
                    ),
                });
            }
        }
        let t = Templates {
            alert,
            lifted,
            shelter_row,
            texts,
        };
        t.self_test().map_err(|message| TemplateError::Invalid {
            file: "alert.json/lifted.json".into(),
            message,
        })?;
        Ok(t)
    }

    /// Renders every step kind at every level, drill and not, with long names and three shelters, and
    /// checks the limits — so a template edit that breaks LINE's limits stops the start, not an alert.
    fn self_test(&self) -> Result<(), String> {
        use super::engine::*;
        let t0 = DateTime::parse_from_rfc3339("2026-11-22T05:05:00Z")
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| e.to_string())?;
        let snap = |level: u8| WarningSnapshot {
            family: Family::Weather,
            code: "33".into(),
            name: "レベル５大雨特別警報".into(),
            severity: Severity::Emergency,
            level: Some(level),
            issued_at: t0,
            report_datetime: t0,
            report_key: "k".into(),
        };
        let district = DistrictRef {
            id: "d".repeat(40),
            name: "中央地区".repeat(10),
            municipality: "0620100".into(),
        };
        let shelters: Vec<ShelterRef> = (0..MAX_SHELTERS)
            .map(|i| ShelterRef {
                name: format!("{}{i}", "山形市立第一小学校体育館".repeat(4)),
                distance_m: 1234.0,
                map_url: format!(
                    "https://maps.gsi.go.jp/#16/38.25/140.33/{}",
                    "x".repeat(200)
                ),
                opened: i == 0,
            })
            .collect();
        let links = HazardLinks {
            kikikuru: Some("https://www.jma.go.jp/bosai/risk/#zoom:12/lat:38.25/lon:140.33".into()),
            hazard_map: Some("https://disaportal.gsi.go.jp/maps/?ll=38.25,140.33&z=14".into()),
            jma: Some(
                "https://www.jma.go.jp/bosai/warning/#area_type=class20s&area_code=0620100".into(),
            ),
        };
        for kind in [
            StepKind::Issue,
            StepKind::Escalation,
            StepKind::Downgrade,
            StepKind::Lift,
            StepKind::Correction,
            StepKind::Cancellation,
        ] {
            for level in 1..=5u8 {
                for drill in [false, true] {
                    let lifted = matches!(kind, StepKind::Lift | StepKind::Cancellation);
                    let step = AlertStep {
                        key: "k".into(),
                        thread: "t".into(),
                        kind,
                        drill,
                        municipality: "0620100".into(),
                        municipality_name: "山形市".into(),
                        phenomenon: Phenomenon::HeavyRain,
                        current: (!lifted).then(|| snap(level)),
                        previous: (kind != StepKind::Issue).then(|| snap(level)),
                        districts: vec![district.clone()],
                        audience: Audience::Everyone,
                        unregistered: true,
                        priority: Priority::Disaster,
                        reported_at: t0,
                    };
                    for area in [
                        Area::District {
                            district: &district,
                            shelters: &shelters,
                            max_km: 10.0,
                        },
                        Area::District {
                            district: &district,
                            shelters: &[],
                            max_km: 10.0,
                        },
                        Area::Unregistered,
                    ] {
                        self.compose(ComposeInput {
                            step: &step,
                            area,
                            links: &links,
                            public_url: "https://bousai.example.lg.jp",
                        })
                        .map_err(|e| format!("{kind:?} level {level} drill {drill}: {e}"))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Composes the LINE messages (one Flex message) for one district of one step.
    pub fn compose(&self, input: ComposeInput<'_>) -> Result<Vec<Value>, ComposeError> {
        let step = input.step;
        let tx = &self.texts;
        let subject = match step.kind {
            StepKind::Lift | StepKind::Cancellation => step.previous.as_ref(),
            _ => step.current.as_ref(),
        }
        .or(step.current.as_ref())
        .or(step.previous.as_ref())
        .ok_or(ComposeError::NoWarning)?;
        let level = subject
            .level
            .unwrap_or(subject.severity.implied_level())
            .clamp(1, 5);
        let lk = level.max(2).to_string();
        let (colour_key, uses_alert) = match (step.kind, &step.current) {
            (StepKind::Lift, _) => ("lift".to_string(), false),
            (StepKind::Cancellation, None) => ("cancel".to_string(), false),
            (StepKind::Cancellation, Some(c)) => (
                c.level
                    .unwrap_or(c.severity.implied_level())
                    .clamp(2, 5)
                    .to_string(),
                true,
            ),
            _ => (lk.clone(), true),
        };
        let action_level = match (step.kind, &step.current) {
            (StepKind::Cancellation, Some(c)) => {
                c.level.unwrap_or(c.severity.implied_level()).clamp(1, 5)
            }
            _ => level,
        };
        let action = match step.kind {
            StepKind::Lift => tx.actions.get("lift").cloned().unwrap_or_default(),
            StepKind::Cancellation if step.current.is_none() => {
                tx.actions.get("cancellation").cloned().unwrap_or_default()
            }
            _ => {
                let special = match step.phenomenon {
                    Phenomenon::Tsunami => tx.actions.get("tsunami"),
                    Phenomenon::Earthquake => tx.actions.get("earthquake"),
                    Phenomenon::Volcano => tx.actions.get("volcano"),
                    _ => None,
                };
                special
                    .or_else(|| tx.actions.get(&action_level.to_string()))
                    .or_else(|| tx.actions.get("2"))
                    .cloned()
                    .unwrap_or_default()
            }
        };
        let time = match step.kind {
            StepKind::Lift => jst(step.reported_at),
            _ => jst(subject.issued_at),
        };
        let district_id = match input.area {
            Area::District { district, .. } => Some(district.id.as_str()),
            Area::Unregistered => None,
        };
        let shelter_map_url = shelter_map_url(input.public_url, district_id, step.phenomenon);
        let mut vars: BTreeMap<&str, String> = BTreeMap::new();
        let drill_mark = if step.drill {
            tx.drill_mark.clone()
        } else {
            String::new()
        };
        vars.insert("drill_mark", drill_mark);
        vars.insert("phenomenon", step.phenomenon.ja().to_string());
        vars.insert("title", subject.name.clone());
        vars.insert(
            "previous_title",
            step.previous
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
        );
        vars.insert(
            "current_title",
            step.current
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
        );
        vars.insert("municipality", step.municipality_name.clone());
        vars.insert(
            "district",
            match input.area {
                Area::District { district, .. } => district.name.clone(),
                Area::Unregistered => tx.unregistered_area.clone(),
            },
        );
        vars.insert("date", time.clone());
        vars.insert(
            "level_label",
            match (uses_alert, subject.level) {
                (true, Some(l)) => tx
                    .level_labels
                    .get(&l.to_string())
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            },
        );
        vars.insert("action", action);
        vars.insert(
            "colour",
            tx.colours.get(&colour_key).cloned().unwrap_or_default(),
        );
        vars.insert(
            "text_colour",
            tx.text_colours
                .get(&colour_key)
                .cloned()
                .unwrap_or_default(),
        );
        vars.insert(
            "accent_colour",
            tx.accent_colours
                .get(&colour_key)
                .or_else(|| tx.colours.get(&colour_key))
                .cloned()
                .unwrap_or_default(),
        );
        vars.insert("shelter_map_url", shelter_map_url);
        vars.insert(
            "kikikuru_url",
            input.links.kikikuru.clone().unwrap_or_default(),
        );
        vars.insert(
            "hazard_map_url",
            input.links.hazard_map.clone().unwrap_or_default(),
        );
        vars.insert("jma_url", input.links.jma.clone().unwrap_or_default());
        let kind = step.kind.key();
        vars.insert(
            "alt_suffix",
            tx.alt_suffixes.get(kind).cloned().unwrap_or_default(),
        );
        // Second-level texts may use the first-level placeholders.
        let issued_tpl = if step.kind == StepKind::Lift {
            &tx.lifted
        } else {
            &tx.issued
        };
        let issued = fill(issued_tpl, &vars);
        vars.insert("issued", issued);
        let heading = fill(tx.headings.get(kind).map_or("", String::as_str), &vars);
        vars.insert("heading", heading);
        let note_key = if step.kind == StepKind::Cancellation && step.current.is_some() {
            "cancellation_remaining"
        } else {
            kind
        };
        let mut note = fill(
            tx.notes
                .get(note_key)
                .or_else(|| tx.notes.get(kind))
                .map_or("", String::as_str),
            &vars,
        );
        if step.drill {
            note = format!("{}{note}", tx.drill_note);
        }
        vars.insert("note", note);

        let row = |text: &str| json!({"type": "text", "text": text, "size": "sm", "wrap": true});
        let (heading, note, shelters): (&str, &str, Vec<Value>) = match input.area {
            Area::Unregistered => (
                tx.shelters_heading.as_str(),
                "",
                vec![row(&tx.unregistered_shelters)],
            ),
            Area::District {
                shelters, max_km, ..
            } => {
                let listed = &shelters[..shelters.len().min(MAX_SHELTERS)];
                let mut v = vars.clone();
                v.insert("max_km", format_km(max_km));
                if listed.is_empty() {
                    (
                        tx.shelters_heading.as_str(),
                        "",
                        vec![row(&fill(&tx.no_shelters_near, &v))],
                    )
                } else {
                    let all_opened = listed.iter().all(|s| s.opened);
                    let rows = listed
                        .iter()
                        .map(|s| {
                            let mut v = v.clone();
                            v.insert("shelter_name", s.name.clone());
                            v.insert("shelter_distance", format_distance(s.distance_m));
                            v.insert("shelter_link", s.map_url.clone());
                            v.insert(
                                "shelter_status",
                                if s.opened {
                                    tx.shelter_opened.clone()
                                } else {
                                    String::new()
                                },
                            );
                            render(&self.shelter_row, &v, &[])
                        })
                        .collect();
                    if all_opened {
                        (tx.shelters_heading_opened.as_str(), "", rows)
                    } else {
                        (
                            tx.shelters_heading.as_str(),
                            tx.shelters_unconfirmed.as_str(),
                            rows,
                        )
                    }
                }
            }
        };
        vars.insert("shelters_heading", heading.to_string());
        vars.insert("shelters_note", note.to_string());
        vars.insert(
            "register_data",
            match input.area {
                Area::Unregistered => crate::line::events::postback_data(&[("action", "register")]),
                Area::District { .. } => String::new(),
            },
        );
        let template = if uses_alert {
            &self.alert
        } else {
            &self.lifted
        };
        let bubble = render(template, &vars, &shelters);
        let mut alt = fill(&tx.alt_text, &vars);
        if alt.chars().count() > MAX_ALT_TEXT_CHARS {
            alt = alt.chars().take(MAX_ALT_TEXT_CHARS - 1).collect::<String>() + "…";
        }
        let message = json!({"type": "flex", "altText": alt, "contents": bubble});
        check_message(&message)?;
        crate::line::spec::validate_schema("Message", &message).map_err(ComposeError::Schema)?;
        Ok(vec![message])
    }
}

/// Checks one composed Flex message against LINE's limits.
pub fn check_message(m: &Value) -> Result<(), ComposeError> {
    let alt = m
        .get("altText")
        .and_then(Value::as_str)
        .ok_or_else(|| ComposeError::Limit("altText missing".into()))?;
    let n = alt.chars().count();
    if n == 0 || n > MAX_ALT_TEXT_CHARS {
        return Err(ComposeError::Limit(format!(
            "altText has {n} characters (1..={MAX_ALT_TEXT_CHARS})"
        )));
    }
    let contents = m
        .get("contents")
        .ok_or_else(|| ComposeError::Limit("contents missing".into()))?;
    let bytes = serde_json::to_vec(contents)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if bytes > MAX_BUBBLE_BYTES {
        return Err(ComposeError::Limit(format!(
            "bubble is {bytes} bytes (≤ {MAX_BUBBLE_BYTES})"
        )));
    }
    let mut problem = None;
    walk(contents, &mut |v| {
        if let Some(a) = v.get("action") {
            if let Some(uri) = a.get("uri").and_then(Value::as_str) {
                let ok_scheme = ["http://", "https://", "line://", "tel:"]
                    .iter()
                    .any(|p| uri.starts_with(p));
                if uri.chars().count() > MAX_URI_CHARS || !ok_scheme {
                    problem = Some(format!(
                        "bad URI action ({} characters)",
                        uri.chars().count()
                    ));
                }
            }
            if v.get("type").and_then(Value::as_str) == Some("button") {
                let label = a.get("label").and_then(Value::as_str).unwrap_or("");
                let n = label.chars().count();
                if n == 0 || n > MAX_BUTTON_LABEL_CHARS {
                    problem = Some(format!("button label \"{label}\" has {n} characters"));
                }
            }
        }
        if v.get("type").and_then(Value::as_str) == Some("text")
            && v.get("text")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            problem = Some("empty text component".into());
        }
    });
    match problem {
        Some(p) => Err(ComposeError::Limit(p)),
        None => Ok(()),
    }
}

fn walk(v: &Value, f: &mut impl FnMut(&Value)) {
    match v {
        Value::Object(m) => {
            f(v);
            for x in m.values() {
                walk(x, f);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
        _ => {}
    }
}

fn is_hex_colour(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// 「11月22日 14時05分」 in JST.
pub fn jst(t: DateTime<Utc>) -> String {
    crate::jst::to_jst(&t)
        .format("%-m月%-d日 %-H時%M分")
        .to_string()
}

/// `10`, `2.5` (kilometres in a sentence).
pub fn format_km(km: f64) -> String {
    if km.fract() == 0.0 {
        format!("{km:.0}")
    } else {
        format!("{km:.1}")
    }
}

/// `350m`, `1.2km`.
pub fn format_distance(m: f64) -> String {
    if !m.is_finite() || m < 0.0 {
        String::from("—")
    } else if m < 1000.0 {
        format!("{}m", (m / 10.0).round() as i64 * 10)
    } else {
        format!("{:.1}km", m / 1000.0)
    }
}

/// Replaces `{{name}}` in `s`; unknown names are left as they are (load-time validation rejects them).
pub(crate) fn fill(s: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find("}}") {
            Some(j) => {
                let name = &after[..j];
                match vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                }
                rest = &after[j + 2..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Fills a template value; the array element `"{{shelters}}"` is replaced by `shelters`; empty texts,
/// buttons with an empty URI or postback data, and such empty actions are removed.
pub(crate) fn render(v: &Value, vars: &BTreeMap<&str, String>, shelters: &[Value]) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, vars)),
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for x in a {
                if x.as_str() == Some("{{shelters}}") {
                    out.extend(shelters.iter().cloned());
                    continue;
                }
                let r = render(x, vars, shelters);
                if keep(&r) {
                    out.push(r);
                }
            }
            Value::Array(out)
        }
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                let r = render(x, vars, shelters);
                if k == "action"
                    && (r.get("uri").and_then(Value::as_str) == Some("")
                        || r.get("data").and_then(Value::as_str) == Some(""))
                {
                    continue;
                }
                out.insert(k.clone(), r);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn keep(v: &Value) -> bool {
    match v.get("type").and_then(Value::as_str) {
        Some("text") => v
            .get("text")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty()),
        Some("button") => v.get("action").is_some(),
        _ => true,
    }
}

fn check_placeholders(v: &Value) -> Result<(), String> {
    let mut bad = None;
    fn strings(v: &Value, f: &mut impl FnMut(&str)) {
        match v {
            Value::String(s) => f(s),
            Value::Array(a) => a.iter().for_each(|x| strings(x, f)),
            Value::Object(m) => m.values().for_each(|x| strings(x, f)),
            _ => {}
        }
    }
    strings(v, &mut |s| {
        if s == "{{shelters}}" {
            return;
        }
        let mut rest = s;
        while let Some(i) = rest.find("{{") {
            let after = &rest[i + 2..];
            let Some(j) = after.find("}}") else {
                bad = Some(format!("unclosed placeholder in \"{s}\""));
                return;
            };
            let name = &after[..j];
            if !KNOWN.contains(&name) {
                bad = Some(format!(
                    "unknown placeholder {{{{{name}}}}} in \"{s}\"; see templates/alerts/README.md for the list"
                ));
            }
            rest = &after[j + 2..];
        }
    });
    match bad {
        Some(b) => Err(b),
        None => Ok(()),
    }
}

/// The shelter-map page link for a district (none: the page locates the reader or shows the city) and the
/// shelters the phenomenon calls for ([`Phenomenon::shelter_need`]).
pub fn shelter_map_url(public_url: &str, district: Option<&str>, phenomenon: Phenomenon) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(d) = district {
        q.append_pair("district", d);
    }
    q.append_pair("hazard", phenomenon.shelter_need().slug());
    format!(
        "{}/shelters?{}",
        public_url.trim_end_matches('/'),
        q.finish()
    )
}
