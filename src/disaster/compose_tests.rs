//! Compose tests: altText, colours, time, shelters, buttons, variants, drills, limits, template validation.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use super::compose::*;
use super::engine::*;

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, h, m, 0).unwrap()
}

fn district() -> DistrictRef {
    DistrictRef {
        id: "yamagata-chuo".into(),
        name: "中央地区".into(),
        municipality: "0620100".into(),
    }
}

fn snap(code: &str, name: &str, severity: Severity, level: Option<u8>) -> WarningSnapshot {
    WarningSnapshot {
        family: Family::Weather,
        code: code.into(),
        name: name.into(),
        severity,
        level,
        // 14:05 JST.
        issued_at: t(5, 5),
        report_datetime: t(5, 5),
        report_key: "r".into(),
    }
}

fn special() -> WarningSnapshot {
    snap("33", "大雨特別警報", Severity::Emergency, Some(5))
}

fn step(
    kind: StepKind,
    current: Option<WarningSnapshot>,
    previous: Option<WarningSnapshot>,
) -> AlertStep {
    AlertStep {
        key: "k".into(),
        thread: "actual/0620100/heavy_rain".into(),
        kind,
        drill: false,
        municipality: "0620100".into(),
        municipality_name: "山形市".into(),
        phenomenon: Phenomenon::HeavyRain,
        current,
        previous,
        districts: vec![district()],
        audience: Audience::Everyone,
        unregistered: false,
        priority: Priority::Disaster,
        reported_at: t(9, 30),
    }
}

fn shelters(n: usize) -> Vec<ShelterRef> {
    (0..n)
        .map(|i| ShelterRef {
            name: format!("第{}小学校 \"体育館\"", i + 1),
            distance_m: 350.0 + 500.0 * i as f64,
            map_url: format!("https://maps.gsi.go.jp/#17/38.2{i}/140.33/"),
            opened: false,
        })
        .collect()
}

fn links() -> HazardLinks {
    HazardLinks {
        kikikuru: Some("https://www.jma.go.jp/bosai/risk/#zoom:12/lat:38.25/lon:140.33".into()),
        hazard_map: Some("https://disaportal.gsi.go.jp/maps/?ll=38.25,140.33&z=14".into()),
        jma: Some(
            "https://www.jma.go.jp/bosai/warning/#area_type=class20s&area_code=0620100".into(),
        ),
    }
}

fn compose(s: &AlertStep, n_shelters: usize, links: &HazardLinks) -> Value {
    compose_with(s, &shelters(n_shelters), links)
}

fn compose_with(s: &AlertStep, sh: &[ShelterRef], links: &HazardLinks) -> Value {
    compose_area(
        s,
        Area::District {
            district: &district(),
            shelters: sh,
            max_km: 10.0,
        },
        links,
    )
}

fn compose_area(s: &AlertStep, area: Area<'_>, links: &HazardLinks) -> Value {
    let tpl = Templates::embedded().expect("built-in templates are valid");
    let mut msgs = tpl
        .compose(ComposeInput {
            step: s,
            area,
            links,
            public_url: "https://bousai.example.lg.jp/",
        })
        .unwrap();
    assert_eq!(msgs.len(), 1);
    msgs.remove(0)
}

fn texts(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn go(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if m.get("type").and_then(Value::as_str) == Some("text") {
                    if let Some(t) = m.get("text").and_then(Value::as_str) {
                        out.push(t.to_string());
                    }
                }
                m.values().for_each(|x| go(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| go(x, out)),
            _ => {}
        }
    }
    go(v, &mut out);
    out
}

fn uris(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn go(v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                if let Some(a) = m.get("action") {
                    if let Some(u) = a.get("uri").and_then(Value::as_str) {
                        let label = a.get("label").and_then(Value::as_str).unwrap_or("");
                        out.push((label.to_string(), u.to_string()));
                    }
                }
                m.values().for_each(|x| go(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| go(x, out)),
            _ => {}
        }
    }
    go(v, &mut out);
    out
}

fn header_colour(v: &Value) -> String {
    v["contents"]["header"]["backgroundColor"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_alt_text_states_the_warning_the_municipality_and_the_issue_time_in_jst() {
    let m = compose(&step(StepKind::Issue, Some(special()), None), 3, &links());
    assert_eq!(m["type"], "flex");
    let alt = m["altText"].as_str().unwrap();
    assert!(alt.starts_with("【大雨特別警報】山形市"), "{alt}");
    assert!(alt.contains("11月22日 14時05分 発表"), "{alt}");
    assert!(alt.contains("命の危険　直ちに安全確保！"), "{alt}");
    let all = texts(&m["contents"]);
    assert!(all.iter().any(|t| t == "11月22日 14時05分 発表"), "{all:?}");
    assert!(all.iter().any(|t| t.contains("中央地区")));
    assert!(all.iter().any(|t| t == "警戒レベル５相当"));
}

#[test]
fn the_colour_follows_the_alert_level() {
    let cases = [
        (
            snap("33", "大雨特別警報", Severity::Emergency, Some(5)),
            "#0C000C",
            "命の危険　直ちに安全確保！",
        ),
        (
            snap("43", "レベル４大雨危険警報", Severity::Danger, Some(4)),
            "#AA00AA",
            "危険な場所から全員避難",
        ),
        (
            snap("03", "大雨警報", Severity::Warning, Some(3)),
            "#E60000",
            "危険な場所から高齢者等は避難",
        ),
        (
            snap("10", "大雨注意報", Severity::Advisory, Some(2)),
            "#F2E700",
            "ハザードマップ等で避難行動を確認",
        ),
    ];
    for (w, colour, action) in cases {
        let name = w.name.clone();
        let m = compose(&step(StepKind::Issue, Some(w), None), 1, &links());
        assert_eq!(header_colour(&m), colour, "{name}");
        assert!(texts(&m["contents"]).iter().any(|t| t == action), "{name}");
    }
}

#[test]
fn a_warning_without_a_level_is_coloured_by_its_severity() {
    let mut s = step(
        StepKind::Issue,
        Some(snap("52", "大津波警報", Severity::Emergency, None)),
        None,
    );
    s.phenomenon = Phenomenon::Tsunami;
    let m = compose(&s, 1, &links());
    assert_eq!(header_colour(&m), "#0C000C");
    let all = texts(&m["contents"]);
    assert!(
        all.iter().any(|t| t.contains("高台")),
        "tsunami advice: {all:?}"
    );
    assert!(
        !all.iter().any(|t| t.contains("警戒レベル")),
        "no level shown for a tsunami"
    );
}

#[test]
fn up_to_three_shelters_are_listed_with_distance_and_map_link() {
    let m = compose(&step(StepKind::Issue, Some(special()), None), 5, &links());
    let all = texts(&m["contents"]);
    let names: Vec<&String> = all.iter().filter(|t| t.contains("小学校")).collect();
    assert_eq!(names.len(), 3, "{all:?}");
    assert_eq!(names[0], "第1小学校 \"体育館\"");
    assert!(all.iter().any(|t| t == "350m"));
    assert!(all.iter().any(|t| t == "850m"));
    assert!(all.iter().any(|t| t == "1.4km"));
    let u = uris(&m["contents"]);
    assert!(u
        .iter()
        .any(|(_, u)| u == "https://maps.gsi.go.jp/#17/38.20/140.33/"));
    assert!(
        !u.iter().any(|(_, u)| u.contains("38.23")),
        "the 4th shelter is not listed"
    );
}

#[test]
fn no_suitable_shelter_within_the_limit_says_so_instead_of_an_empty_list() {
    let m = compose(&step(StepKind::Issue, Some(special()), None), 0, &links());
    let all = texts(&m["contents"]);
    assert!(
        all.iter()
            .any(|t| t.starts_with("10km以内に、この災害に適した避難所が見つかりません")),
        "{all:?}"
    );
    assert!(!all.iter().any(|t| t.contains("開設中")), "{all:?}");
}

#[test]
fn only_shelters_the_city_opened_are_called_open() {
    // Designated sites whose status the city has not set: no 「開設中」, and a line to check the city's news.
    let m = compose(&step(StepKind::Issue, Some(special()), None), 3, &links());
    let all = texts(&m["contents"]);
    assert!(all.iter().any(|t| t == "近くの避難所"), "{all:?}");
    assert!(!all.iter().any(|t| t.contains("開設中")), "{all:?}");
    assert!(all
        .iter()
        .any(|t| t == "開設状況は市の発表をご確認ください"));
    // One opened, two unknown: the opened one is tagged, and the check line stays.
    let mut sh = shelters(3);
    sh[0].opened = true;
    let m = compose_with(&step(StepKind::Issue, Some(special()), None), &sh, &links());
    let all = texts(&m["contents"]);
    assert_eq!(all.iter().filter(|t| *t == "開設中").count(), 1, "{all:?}");
    assert!(all
        .iter()
        .any(|t| t == "開設状況は市の発表をご確認ください"));
    // All opened: the heading says so and the check line goes.
    sh.iter_mut().for_each(|s| s.opened = true);
    let m = compose_with(&step(StepKind::Issue, Some(special()), None), &sh, &links());
    let all = texts(&m["contents"]);
    assert!(all.iter().any(|t| t == "近くの開設中の避難所"), "{all:?}");
    assert_eq!(all.iter().filter(|t| *t == "開設中").count(), 3);
    assert!(
        !all.iter().any(|t| t.contains("市の発表をご確認")),
        "{all:?}"
    );
    check_message(&m).unwrap();
}

#[test]
fn the_message_for_friends_without_a_district_names_the_municipality_and_offers_registration() {
    let s = step(StepKind::Issue, Some(special()), None);
    let m = compose_area(&s, Area::Unregistered, &links());
    let alt = m["altText"].as_str().unwrap();
    assert!(alt.starts_with("【大雨特別警報】山形市（全域）"), "{alt}");
    let all = texts(&m["contents"]);
    assert!(all.iter().any(|t| t == "山形市 全域"), "{all:?}");
    assert!(all.iter().any(|t| t.contains("お住まいの地区を登録すると")));
    assert!(
        !all.iter().any(|t| t.contains("小学校")),
        "no district shelters"
    );
    let footer = &m["contents"]["footer"]["contents"];
    let register = footer
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["action"]["type"] == "postback")
        .expect("a postback button");
    assert_eq!(register["action"]["label"], "地区を登録");
    assert_eq!(register["action"]["data"], "action=register");
    let u = uris(&m["contents"]["footer"]);
    assert_eq!(u[0].0, "避難所マップ");
    assert_eq!(u[0].1, "https://bousai.example.lg.jp/shelters?hazard=flood");
    check_message(&m).unwrap();
    // A district's copy has no registration button.
    let d = compose(&s, 1, &links());
    assert!(!d.to_string().contains("action=register"));
    // Nor does a lift for registered residents, while the one for friends without a district does.
    let lift = step(StepKind::Lift, None, Some(special()));
    assert!(!compose(&lift, 0, &links())
        .to_string()
        .contains("action=register"));
    assert!(compose_area(&lift, Area::Unregistered, &links())
        .to_string()
        .contains("action=register"));
}

#[test]
fn the_buttons_link_the_shelter_map_kikikuru_hazard_map_and_jma() {
    let m = compose(&step(StepKind::Issue, Some(special()), None), 1, &links());
    let u = uris(&m["contents"]["footer"]);
    let labels: Vec<&str> = u.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        vec![
            "避難所マップ",
            "キキクル（危険度分布）",
            "ハザードマップ",
            "気象庁の警報・注意報"
        ]
    );
    assert_eq!(
        u[0].1,
        "https://bousai.example.lg.jp/shelters?district=yamagata-chuo&hazard=flood"
    );
    assert!(u[1].1.starts_with("https://www.jma.go.jp/bosai/risk/"));
    assert!(u[3].1.contains("area_code=0620100"));
}

#[test]
fn a_missing_link_drops_its_button() {
    let l = HazardLinks {
        hazard_map: None,
        ..links()
    };
    let m = compose(&step(StepKind::Issue, Some(special()), None), 1, &l);
    let labels: Vec<String> = uris(&m["contents"]["footer"])
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    assert!(!labels.iter().any(|l| l == "ハザードマップ"), "{labels:?}");
    assert_eq!(labels.len(), 3);
    check_message(&m).unwrap();
}

#[test]
fn a_drill_is_marked_in_the_alt_text_and_the_message() {
    let mut s = step(StepKind::Issue, Some(special()), None);
    s.drill = true;
    s.audience = Audience::Drill;
    let m = compose(&s, 1, &links());
    assert!(m["altText"]
        .as_str()
        .unwrap()
        .starts_with("【訓練】【大雨特別警報】山形市"));
    let heading = m["contents"]["header"]["contents"][0]["text"]
        .as_str()
        .unwrap();
    assert!(heading.starts_with("【訓練】"), "{heading}");
    let all = texts(&m["contents"]);
    assert!(all.iter().any(|t| t.contains("これは訓練です")));
}

#[test]
fn a_lift_uses_the_lift_template_with_the_lift_time() {
    let prev = special();
    let m = compose(&step(StepKind::Lift, None, Some(prev)), 3, &links());
    let alt = m["altText"].as_str().unwrap();
    assert!(alt.starts_with("【大雨特別警報 解除】山形市"), "{alt}");
    assert!(alt.contains("11月22日 18時30分 解除"), "{alt}");
    assert_eq!(header_colour(&m), "#2E7D32");
    let all = texts(&m["contents"]);
    assert!(all.iter().any(|t| t.contains("解除されました")));
    assert!(
        !all.iter().any(|t| t.contains("小学校")),
        "no shelters in a lift"
    );
}

#[test]
fn a_cancellation_says_the_alert_was_withdrawn() {
    let m = compose(
        &step(StepKind::Cancellation, None, Some(special())),
        1,
        &links(),
    );
    let alt = m["altText"].as_str().unwrap();
    assert!(alt.starts_with("【大雨特別警報 取消】"), "{alt}");
    assert_eq!(header_colour(&m), "#616161");
    assert!(texts(&m["contents"])
        .iter()
        .any(|t| t.contains("取り消されました")));
}

#[test]
fn a_cancellation_with_a_remaining_warning_names_both() {
    let cur = snap("03", "大雨警報", Severity::Warning, Some(3));
    let m = compose(
        &step(StepKind::Cancellation, Some(cur), Some(special())),
        1,
        &links(),
    );
    let all = texts(&m["contents"]);
    assert!(
        all.iter().any(|t| t.contains(
            "「大雨特別警報」の情報は取り消されました。現在は大雨警報が発表されています。"
        )),
        "{all:?}"
    );
    assert_eq!(header_colour(&m), "#E60000");
}

#[test]
fn a_correction_and_an_escalation_say_what_changed() {
    let prev = snap("03", "大雨警報", Severity::Warning, Some(3));
    let m = compose(
        &step(StepKind::Escalation, Some(special()), Some(prev.clone())),
        1,
        &links(),
    );
    assert!(texts(&m["contents"])
        .iter()
        .any(|t| t == "大雨警報から大雨特別警報に引き上げられました。"));
    let m = compose(
        &step(StepKind::Correction, Some(special()), Some(prev)),
        1,
        &links(),
    );
    assert!(m["altText"]
        .as_str()
        .unwrap()
        .starts_with("【大雨特別警報 訂正】"));
    assert!(texts(&m["contents"])
        .iter()
        .any(|t| t.contains("誤りがありました")));
}

#[test]
fn every_composed_message_is_within_line_limits_even_with_very_long_names() {
    let mut s = step(StepKind::Issue, Some(special()), None);
    s.municipality_name = "長".repeat(2000);
    let m = compose(&s, 3, &links());
    let alt = m["altText"].as_str().unwrap();
    assert_eq!(alt.chars().count(), MAX_ALT_TEXT_CHARS);
    assert!(alt.ends_with('…'));
    check_message(&m).unwrap();
    assert!(serde_json::to_vec(&m["contents"]).unwrap().len() <= MAX_BUBBLE_BYTES);
}

#[test]
fn every_variant_passes_the_official_line_message_schema() {
    let prev = snap("03", "大雨警報", Severity::Warning, Some(3));
    for (kind, cur, previous) in [
        (StepKind::Issue, Some(special()), None),
        (StepKind::Escalation, Some(special()), Some(prev.clone())),
        (StepKind::Downgrade, Some(prev.clone()), Some(special())),
        (StepKind::Correction, Some(special()), Some(prev.clone())),
        (StepKind::Lift, None, Some(special())),
        (StepKind::Cancellation, None, Some(special())),
        (StepKind::Cancellation, Some(prev.clone()), Some(special())),
    ] {
        for drill in [false, true] {
            let mut s = step(kind, cur.clone(), previous.clone());
            s.drill = drill;
            for n in [0, 3] {
                let m = compose(&s, n, &links());
                crate::line::spec::validate_schema("Message", &m)
                    .unwrap_or_else(|e| panic!("{kind:?} drill={drill}: {e:?}"));
            }
        }
    }
}

#[test]
fn the_schema_check_catches_what_the_size_check_does_not() {
    // A box with an unknown layout passes the size checks but not LINE's schema.
    let m = serde_json::json!({"type": "flex", "altText": "x", "contents": {"type": "bubble", "body": {"type": "box", "layout": "sideways", "contents": []}}});
    assert!(check_message(&m).is_ok());
    assert!(crate::line::spec::validate_schema("Message", &m).is_err());
}

#[test]
fn check_message_rejects_an_oversized_bubble_and_a_bad_uri() {
    let big = serde_json::json!({"type": "flex", "altText": "x", "contents": {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "あ".repeat(11_000)}]}}});
    assert!(matches!(check_message(&big), Err(ComposeError::Limit(_))));
    let bad = serde_json::json!({"type": "flex", "altText": "x", "contents": {"type": "bubble", "footer": {"type": "box", "layout": "vertical", "contents": [{"type": "button", "action": {"type": "uri", "label": "x", "uri": "javascript:alert(1)"}}]}}});
    assert!(check_message(&bad).is_err());
}

fn template_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/alerts");
    for f in [
        "alert.json",
        "lifted.json",
        "shelter_row.json",
        "texts.json",
    ] {
        std::fs::copy(format!("{src}/{f}"), dir.path().join(f)).unwrap();
    }
    dir
}

#[test]
fn templates_load_from_a_directory_and_edits_take_effect_without_recompiling() {
    let dir = template_dir();
    let p = dir.path().join("texts.json");
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "危険な場所から全員避難",
        "危険な場所から全員避難してください",
    );
    std::fs::write(&p, text).unwrap();
    let tpl = Templates::load(dir.path()).unwrap();
    let s = step(
        StepKind::Issue,
        Some(snap(
            "43",
            "レベル４大雨危険警報",
            Severity::Danger,
            Some(4),
        )),
        None,
    );
    let m = tpl
        .compose(ComposeInput {
            step: &s,
            area: Area::District {
                district: &district(),
                shelters: &[],
                max_km: 10.0,
            },
            links: &links(),
            public_url: "https://x.example",
        })
        .unwrap();
    assert!(texts(&m[0]["contents"])
        .iter()
        .any(|t| t == "危険な場所から全員避難してください"));
}

#[test]
fn a_template_with_an_unknown_placeholder_is_refused_at_load() {
    let dir = template_dir();
    let p = dir.path().join("alert.json");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("{{district}}", "{{ditsrict}}");
    std::fs::write(&p, text).unwrap();
    let e = Templates::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("alert.json") && e.contains("ditsrict"), "{e}");
}

#[test]
fn a_template_that_is_not_json_is_refused_at_load() {
    let dir = template_dir();
    std::fs::write(dir.path().join("lifted.json"), "{ not json").unwrap();
    let e = Templates::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("lifted.json") && e.contains("not valid JSON"),
        "{e}"
    );
}

#[test]
fn a_template_that_would_exceed_the_bubble_limit_is_refused_at_load() {
    let dir = template_dir();
    let p = dir.path().join("texts.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["drill_note"] = Value::String("訓".repeat(12_000));
    std::fs::write(&p, v.to_string()).unwrap();
    let e = Templates::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("bubble"), "{e}");
}

#[test]
fn a_bad_colour_is_refused_with_the_fix() {
    let dir = template_dir();
    let p = dir.path().join("texts.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["colours"]["4"] = Value::String("purple".into());
    std::fs::write(&p, v.to_string()).unwrap();
    let e = Templates::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("colours.4") && e.contains("#AA00AA"), "{e}");
}

#[test]
fn distances_and_times_are_formatted_for_residents() {
    assert_eq!(format_distance(349.0), "350m");
    assert_eq!(format_distance(1234.0), "1.2km");
    assert_eq!(format_distance(f64::NAN), "—");
    assert_eq!(format_km(10.0), "10");
    assert_eq!(format_km(2.5), "2.5");
    assert_eq!(jst(t(15, 0)), "11月23日 0時00分");
}
