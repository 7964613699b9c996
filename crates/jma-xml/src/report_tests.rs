//! Parser tests on the real JMA documents in `../shared/jma/samples` next to the repository (golden
//! expectations read from the XML by hand), derived documents for cases the samples lack (weather 訓練/取消),
//! and mutations.

use super::*;
use std::path::{Path, PathBuf};

fn samples_dir() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/jma/samples"
    ))
    .to_path_buf()
}

fn read(rel: &str) -> Vec<u8> {
    let p = samples_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse_sample(rel: &str) -> Report {
    parse(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn kinds_of<'a>(r: &'a Report, block: &str, code: &str) -> Vec<(&'a str, &'a str)> {
    let b = r
        .warning_block(block)
        .unwrap_or_else(|| panic!("no block {block}"));
    let item = b
        .items
        .iter()
        .find(|i| i.areas.iter().any(|a| a.code == code))
        .unwrap_or_else(|| panic!("no area {code} in {block}"));
    item.kinds
        .iter()
        .map(|k| (k.code.as_str(), k.status.as_str()))
        .collect()
}

const CITY: &str = "気象警報・注意報（市町村等）";

fn all_sample_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "xml") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&samples_dir(), &mut v);
    v.sort();
    v
}

#[test]
fn every_sample_telegram_parses_and_feeds_are_rejected_as_not_jma() {
    let files = all_sample_files();
    assert!(files.len() >= 55, "found only {} samples", files.len());
    let mut parsed = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let res = parse(&bytes);
        if f.parent().is_some_and(|d| d.ends_with("feeds")) {
            let err = res.expect_err("an Atom feed is not a report");
            assert!(
                err.to_string().contains("Atom feed"),
                "{}: {err}",
                f.display()
            );
            continue;
        }
        let r = res.unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!r.control.title.is_empty(), "{}", f.display());
        assert!(r.head.report_datetime.is_some(), "{}", f.display());
        assert!(r.control.datetime.is_some(), "{}", f.display());
        // The file name's data type and the one derived from Control/Title agree wherever both exist.
        let name = f.file_name().unwrap().to_str().unwrap();
        if let Some(code) = data_type_from_url(name) {
            if !r.data_type.is_empty() {
                assert!(
                    code.starts_with(&r.data_type),
                    "{name}: title says {}",
                    r.data_type
                );
            }
        }
        parsed += 1;
    }
    assert!(parsed >= 55);
}

#[test]
fn transitional_vpww54_keeps_every_level_and_the_notice_of_danger_warnings() {
    let r = parse_sample("official/15_17_01_250123_VPWW54.xml");
    assert_eq!(r.data_type, "VPWW54");
    assert_eq!(r.head.title, "島根県気象警報・注意報");
    assert_eq!(r.head.event_id, "");
    assert_eq!(r.head.serial_number(), None);
    assert_eq!(r.head.info_kind_version, "1.2_2");
    assert_eq!(
        r.warnings.len(),
        4,
        "4 area levels; the 量的予想時系列 is not a Warning"
    );
    assert_eq!(
        kinds_of(&r, CITY, "3220400"),
        vec![
            ("03", "継続"),
            ("04", "発表"),
            ("14", "継続"),
            ("15", "継続"),
            ("16", "継続")
        ]
    );
    let notice = r.details.notice.as_deref().unwrap();
    assert!(notice.contains("危険警報"), "{notice}");
    assert!(r.is_handled());
}

#[test]
fn special_warning_appears_in_the_old_and_older_telegram_of_the_same_event() {
    let r54 = parse_sample("official/15_12_01_161130_VPWW54.xml");
    let r53 = parse_sample("official/15_12_01_161130_VPWW53.xml");
    assert_eq!(
        (r54.data_type.as_str(), r53.data_type.as_str()),
        ("VPWW54", "VPWW53")
    );
    assert_eq!(
        kinds_of(&r54, CITY, "3220200"),
        vec![("33", "発表"), ("04", "継続"), ("14", "継続")]
    );
    assert_eq!(
        kinds_of(&r53, CITY, "3220200"),
        kinds_of(&r54, CITY, "3220200")
    );
    assert_eq!(r54.head.report_datetime, r53.head.report_datetime);
}

#[test]
fn r06_heavy_rain_telegram_gives_continuing_lifted_and_empty_areas() {
    let r = parse_sample("official/15_17_01_251222_VPWW55.xml");
    assert_eq!(r.data_type, "VPWW55");
    assert_eq!(r.head.info_kind_version, "1.5_0");
    // Kind has LastKind and Property/…/Significancy with their own Name/Code: only the Kind's own count.
    assert_eq!(kinds_of(&r, CITY, "3220100"), vec![("03", "継続")]);
    assert_eq!(kinds_of(&r, CITY, "3252800"), vec![("10", "解除")]);
    assert_eq!(
        kinds_of(&r, CITY, "3252500"),
        vec![],
        "発表警報・注意報はなし has no Code"
    );
    let b = r.warning_block(CITY).unwrap();
    assert_eq!(b.items[0].kinds[0].name, "レベル３大雨警報");
    assert_eq!(r.details.headline_information.len(), 4);
}

#[test]
fn r06_landslide_and_storm_surge_telegrams_carry_the_new_codes() {
    let r = parse_sample("official/15_17_01_251222_VPWW56.xml");
    assert_eq!(r.data_type, "VPWW56");
    assert_eq!(kinds_of(&r, CITY, "3220100"), vec![("29", "継続")]);
    let r = parse_sample("official/15_16_02_251222_VPWW57.xml");
    assert_eq!(r.data_type, "VPWW57");
    assert_eq!(kinds_of(&r, CITY, "2620200"), vec![("48", "発表")]);
    assert!(r
        .warning_block("気象警報・注意報（高潮予報区間）")
        .is_some());
}

#[test]
fn landslide_alert_under_its_new_name_lists_every_municipality() {
    let r = parse_sample("official/17_04_01_250630_VXWW50.xml");
    assert_eq!(r.data_type, "VXWW50");
    assert_eq!(r.head.title, "神奈川県レベル４土砂災害危険警報");
    assert_eq!(r.head.event_id, "神奈川県土砂災害警戒情報");
    assert_eq!(r.head.serial_number(), Some(1));
    assert_eq!(
        r.details.target_area.as_ref().map(|a| a.code.as_str()),
        Some("140000")
    );
    let b = r.warning_block("土砂災害警戒情報").unwrap();
    assert_eq!(b.items.len(), 35);
    assert_eq!(
        kinds_of(&r, "土砂災害警戒情報", "1420600"),
        vec![("3", "発表")]
    );
    assert_eq!(
        kinds_of(&r, "土砂災害警戒情報", "1410011"),
        vec![("0", "なし")]
    );
}

#[test]
fn landslide_alert_lifting_is_a_kind_with_code_1() {
    let r = parse_sample("official/17_03_10_190529_VXWW50.xml");
    assert_eq!(r.head.serial_number(), Some(10));
    assert_eq!(
        kinds_of(&r, "土砂災害警戒情報", "3320700"),
        vec![("1", "解除")]
    );
}

#[test]
fn river_flood_forecast_gives_kind_rivers_and_flooding_districts() {
    let r = parse_sample("official/16_10_01_260312_VXKOii.xml");
    assert_eq!(r.data_type, "VXKO");
    assert_eq!(r.head.event_id, "890910000100");
    let rf = r.details.river_flood.as_ref().unwrap();
    assert_eq!(rf.forecast_area.code, "890910000100");
    assert_eq!(rf.forecast_area.name, "緑川水系");
    let k = rf.kind.as_ref().unwrap();
    assert_eq!(
        (k.code.as_str(), k.name.as_str()),
        ("40", "レベル４氾濫危険警報")
    );
    assert!(rf
        .rivers
        .iter()
        .any(|a| a.code == "8909100001" && a.name == "緑川"));
    let kumamoto = rf
        .flood_areas
        .iter()
        .find(|f| f.city_code == "4310000" && f.station_name == "城南")
        .unwrap();
    assert!(kumamoto.sub_city_list.contains("川尻校区"));
    assert_eq!(kumamoto.prefecture, "熊本県");
}

#[test]
fn river_flood_lifting_and_level5_use_the_stable_codes() {
    let lifted = parse_sample("official/16_14_01_251222_VXKOii.xml");
    let k = lifted
        .details
        .river_flood
        .as_ref()
        .unwrap()
        .kind
        .clone()
        .unwrap();
    assert_eq!(k.code, "10");
    let l5 = parse_sample("official/16_11_01_260312_VXKOii.xml");
    let k = l5
        .details
        .river_flood
        .as_ref()
        .unwrap()
        .kind
        .clone()
        .unwrap();
    assert_eq!(
        (k.code.as_str(), k.name.as_str()),
        ("51", "レベル５氾濫特別警報")
    );
}

#[test]
fn major_tsunami_warning_2011_lists_every_forecast_area() {
    let r = parse_sample("official/32-39_11_02_250206_VTSE41.xml");
    assert_eq!(r.data_type, "VTSE41");
    assert_eq!(r.details.domain, Domain::Seismology);
    let t = &r.details.tsunami_forecast;
    assert_eq!(t.len(), 43);
    let miyagi = t.iter().find(|i| i.area.code == "220").unwrap();
    assert_eq!(miyagi.area.name, "宮城県");
    assert_eq!(miyagi.kind.code, "53");
    assert!(r.details.earthquake.is_some());
}

#[test]
fn real_tsunami_advisory_has_height_and_condition() {
    let r = parse_sample("captured/20231009064018_06274659_VTSE41.xml");
    let t = &r.details.tsunami_forecast;
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0].area.code.as_str(), t[0].kind.code.as_str()),
        ("320", "62")
    );
    assert_eq!(t[0].last_kind.as_ref().map(|k| k.code.as_str()), Some("00"));
    assert_eq!(t[0].condition, "津波到達中と推測");
    assert_eq!(t[0].max_height, "１ｍ");
    let q = r.details.earthquake.as_ref().unwrap();
    assert_eq!(q.hypocenter.name, "鳥島近海");
    assert_eq!(q.magnitude, "NaN");
}

#[test]
fn drill_tsunami_advisory_is_marked_as_drill() {
    let r = parse_sample("official/32-39_13_02_250206_VTSE41.xml");
    assert_eq!(r.control.status, DocStatus::Drill);
    assert_eq!(r.details.tsunami_forecast[0].area.code, "311");
}

#[test]
fn tsunami_cancellation_has_only_a_text_body() {
    let r = parse_sample("official/38-39_03_01_210805_VTSE41.xml");
    assert_eq!(r.head.info_type, InfoType::Cancel);
    assert!(r.details.tsunami_forecast.is_empty());
    assert_eq!(
        r.details.text.as_deref(),
        Some("先ほどの、津波注意報を取り消します。")
    );
}

#[test]
fn intensity_report_lists_cities_with_their_maximum() {
    let r = parse_sample("captured/20210217140958_0_VXSE53_010000.xml");
    assert_eq!(r.data_type, "VXSE53");
    assert_eq!(r.head.event_id, "20210217230627");
    let int = r.details.intensity.as_ref().unwrap();
    assert_eq!(int.max_int, "3");
    let cities: Vec<_> = int
        .prefs
        .iter()
        .flat_map(|p| &p.areas)
        .flat_map(|a| &a.cities)
        .collect();
    assert_eq!(cities.len(), 100);
    assert_eq!(
        (
            cities[0].code.as_str(),
            cities[0].name.as_str(),
            cities[0].max_int.as_str()
        ),
        ("0420200", "石巻市", "3")
    );
    // Designated cities are reported per ward.
    assert!(cities
        .iter()
        .any(|c| c.code == "0410400" && c.name == "仙台太白区"));
}

#[test]
fn intensity_flash_report_has_areas_only() {
    let r = parse_sample("captured/20210217140808_0_VXSE51_010000.xml");
    let int = r.details.intensity.as_ref().unwrap();
    let areas: Vec<_> = int.prefs.iter().flat_map(|p| &p.areas).collect();
    assert_eq!(areas.len(), 2);
    assert_eq!(
        (areas[1].code.as_str(), areas[1].max_int.as_str()),
        ("251", "3")
    );
    assert!(areas.iter().all(|a| a.cities.is_empty()));
}

#[test]
fn volcano_warning_gives_the_municipalities_and_the_level() {
    let r = parse_sample("official/45_02_01_200522_VFVO50.xml");
    assert_eq!(r.data_type, "VFVO50");
    assert_eq!(r.details.domain, Domain::Volcanology);
    let level = &r.details.volcano_info[0];
    assert_eq!(level.block_type, "噴火警報・予報（対象火山）");
    assert_eq!(level.items[0].kinds[0].code, "15");
    assert_eq!(level.items[0].kinds[0].status, "引上げ");
    let towns = &r.details.volcano_info[1];
    assert_eq!(towns.items[0].areas[0].code, "1438200");
    assert_eq!(towns.items[0].kinds[0].code, "01");
}

#[test]
fn record_rain_and_tornado_reports_parse_as_warning_blocks() {
    let r = parse_sample("official/18_03_01_190412_VPOA50.xml");
    assert_eq!(r.data_type, "VPOA50");
    assert_eq!(
        kinds_of(&r, "記録的短時間大雨情報（発表細分）", "016010"),
        vec![("1", "発表")]
    );
    assert_eq!(
        kinds_of(&r, "記録的短時間大雨情報（発表細分）", "016020"),
        vec![("0", "なし")]
    );
    let r = parse_sample("official/19_10_04_250630_VPHW51.xml");
    assert_eq!(r.data_type, "VPHW51");
    assert_eq!(r.head.title, "埼玉県気象防災速報（竜巻目撃）");
    assert!(r.warning_block("竜巻注意情報（市町村等）").is_some());
}

#[test]
fn other_types_are_reports_marked_unhandled() {
    for f in [
        "official/54_01_01_100514_VXSE42.xml",
        "official/81_01_04_251222_VPWP50.xml",
        "official/62_02_01_130906_VPNO50.xml",
        "captured/20240116184225_02245216_VXSE43.xml",
    ] {
        let r = parse_sample(f);
        assert!(!r.is_handled(), "{f}");
        assert!(r
            .details
            .unhandled
            .as_deref()
            .unwrap()
            .starts_with("unhandled type"));
    }
    let test = parse_sample("official/54_01_01_100514_VXSE42.xml");
    assert_eq!(test.control.status, DocStatus::Test);
}

/// The samples hold no weather warning with 訓練 or 取消 (JMA publishes none); derive them from a real
/// VPWW55 by editing Control/Status and Head/InfoType only.
#[test]
fn derived_drill_and_cancelled_weather_warnings_keep_their_state() {
    let src = String::from_utf8(read("official/15_17_01_251222_VPWW55.xml")).unwrap();
    let drill = src.replace("<Status>通常</Status>", "<Status>訓練</Status>");
    let r = parse(drill.as_bytes()).unwrap();
    assert_eq!(r.control.status, DocStatus::Drill);
    assert_eq!(kinds_of(&r, CITY, "3220100"), vec![("03", "継続")]);
    let cancel = src.replace("<InfoType>発表</InfoType>", "<InfoType>取消</InfoType>");
    let r = parse(cancel.as_bytes()).unwrap();
    assert_eq!(r.head.info_type, InfoType::Cancel);
    assert_eq!(r.control.status, DocStatus::Normal);
    let corr = src.replace("<InfoType>発表</InfoType>", "<InfoType>訂正</InfoType>");
    assert_eq!(
        parse(corr.as_bytes()).unwrap().head.info_type,
        InfoType::Correction
    );
}

#[test]
fn namespaces_are_resolved_not_guessed_from_prefixes() {
    let src = String::from_utf8(read("official/15_17_01_251222_VPWW55.xml")).unwrap();
    // The same document written with prefixes instead of the root's default namespace parses the same.
    let (c0, c1) = (
        src.find("<Control>").unwrap(),
        src.find("</Control>").unwrap() + "</Control>".len(),
    );
    let control = src[c0..c1]
        .replace("</", "\u{1}")
        .replace('<', "<jmx:")
        .replace('\u{1}', "</jmx:");
    let prefixed = format!("{}{}{}", &src[..c0], control, &src[c1..])
        .replace(
            "<Report xmlns=\"http://xml.kishou.go.jp/jmaxml1/\"",
            "<jmx:Report xmlns:x=\"urn:unused\"",
        )
        .replace("</Report>", "</jmx:Report>");
    let a = parse(src.as_bytes()).unwrap();
    let b = parse(prefixed.as_bytes()).unwrap();
    assert_eq!(a, b);
    // Without the default namespace, unprefixed Control children are in no namespace: not JMA's Title.
    let unbound = format!(
        "{}{}{}",
        &src[..c0],
        src[c0..c1]
            .replace("<Control>", "<jmx:Control>")
            .replace("</Control>", "</jmx:Control>"),
        &src[c1..]
    )
    .replace(
        "<Report xmlns=\"http://xml.kishou.go.jp/jmaxml1/\"",
        "<jmx:Report",
    )
    .replace("</Report>", "</jmx:Report>");
    assert_eq!(
        parse(unbound.as_bytes()),
        Err(ParseError::Missing("Control/Title"))
    );
    // A Head in another namespace is not the JMA Head.
    let wrong = src.replace(
        "<Head xmlns=\"http://xml.kishou.go.jp/jmaxml1/informationBasis1/\">",
        "<Head xmlns=\"urn:example:other\">",
    );
    assert_eq!(parse(wrong.as_bytes()), Err(ParseError::Missing("Head")));
    // Warning elements outside the Body namespace are not warnings.
    let foreign = src
        .replace(
            "<Warning type=",
            "<o:Warning xmlns:o=\"urn:example:o\" type=",
        )
        .replace("</Warning>", "</o:Warning>");
    assert!(parse(foreign.as_bytes()).unwrap().warnings.is_empty());
}

#[test]
fn numbers_and_codes_are_trimmed() {
    let src = String::from_utf8(read("official/17_04_01_250630_VXWW50.xml")).unwrap();
    let spaced = src
        .replacen("<Serial>1</Serial>", "<Serial> 1 </Serial>", 1)
        .replacen("<Code>1410011</Code>", "<Code>\n 1410011\t</Code>", 1);
    let r = parse(spaced.as_bytes()).unwrap();
    assert_eq!(r.head.serial_number(), Some(1));
    assert_eq!(
        kinds_of(&r, "土砂災害警戒情報", "1410011"),
        vec![("0", "なし")]
    );
}

#[test]
fn bad_input_gives_clear_errors() {
    assert_eq!(parse(b""), Err(ParseError::Empty));
    assert_eq!(parse(b"  \n"), Err(ParseError::Empty));
    assert!(matches!(
        parse(b"not xml at all"),
        Err(ParseError::NotJma(_))
    ));
    assert!(matches!(
        parse(b"<html><body/></html>"),
        Err(ParseError::NotJma(_))
    ));
    let src = read("official/15_17_01_251222_VPWW55.xml");
    let cut = &src[..src.len() / 2];
    assert!(
        matches!(parse(cut), Err(ParseError::Truncated { .. })),
        "{:?}",
        parse(cut)
    );
    let s = String::from_utf8(src.clone()).unwrap();
    let bad_status = s.replace("<Status>通常</Status>", "<Status>本番</Status>");
    assert_eq!(
        parse(bad_status.as_bytes()),
        Err(ParseError::BadValue {
            field: "Control/Status",
            value: "本番".into()
        })
    );
    let mismatched = s.replacen("</Title>", "</Titel>", 1);
    assert!(matches!(
        parse(mismatched.as_bytes()),
        Err(ParseError::Xml { .. })
    ));
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(&src);
    assert!(parse(&bom).is_ok(), "a UTF-8 BOM is accepted");
    let no_body = s[..s.find("<Body").unwrap()].to_string() + "</Report>";
    assert_eq!(parse(no_body.as_bytes()), Err(ParseError::Missing("Body")));
}

#[test]
fn data_type_comes_from_url_or_title() {
    assert_eq!(
        data_type_from_url(
            "https://www.data.jma.go.jp/developer/xml/data/20260112065719_0_VPWW54_350000.xml"
        ),
        Some("VPWW54")
    );
    assert_eq!(
        data_type_from_url("15_17_01_251222_VPWW55.xml"),
        Some("VPWW55")
    );
    assert_eq!(data_type_from_url("16_04_01_220728_VXKOii.xml"), None);
    assert_eq!(data_type_from_url(""), None);
    assert_eq!(
        data_type_from_title("気象警報・注意報（Ｒ０６）（土砂災害）"),
        "VPWW56"
    );
    assert_eq!(data_type_from_title("unknown"), "");
}

mod mutations {
    use super::*;
    use proptest::prelude::*;

    fn corpus() -> Vec<Vec<u8>> {
        [
            "official/15_17_01_251222_VPWW55.xml",
            "official/17_04_01_250630_VXWW50.xml",
            "official/16_14_01_251222_VXKOii.xml",
            "captured/20231009064018_06274659_VTSE41.xml",
            "captured/20210217140808_0_VXSE51_010000.xml",
            "official/45_02_01_200522_VFVO50.xml",
            "official/18_01_01_100806_VPOA50.xml",
        ]
        .iter()
        .map(|f| read(f))
        .collect()
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Flip { at: usize, byte: u8 },
        Truncate { at: usize },
        SwapTags { a: usize, b: usize },
        Delete { at: usize, len: usize },
        Duplicate { at: usize, len: usize },
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
            any::<usize>().prop_map(|at| Mutation::Truncate { at }),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapTags { a, b }),
            (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
            (any::<usize>(), 1usize..256).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        ]
    }

    /// Byte offsets of `<` that start a tag.
    fn tags(doc: &[u8]) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        let mut i = 0;
        while let Some(s) = doc[i..].iter().position(|&b| b == b'<') {
            let s = i + s;
            let Some(e) = doc[s..].iter().position(|&b| b == b'>') else {
                break;
            };
            v.push((s, s + e + 1));
            i = s + e + 1;
        }
        v
    }

    fn apply(mut doc: Vec<u8>, m: &Mutation) -> Vec<u8> {
        let n = doc.len();
        match *m {
            Mutation::Flip { at, byte } => doc[at % n] = byte,
            Mutation::Truncate { at } => doc.truncate(at % n),
            Mutation::SwapTags { a, b } => {
                let t = tags(&doc);
                if t.is_empty() {
                    // An earlier mutation (a truncation) left no tag to swap.
                    return doc;
                }
                let (a, b) = (t[a % t.len()], t[b % t.len()]);
                let (first, second) = if a.0 < b.0 { (a, b) } else { (b, a) };
                if first.1 <= second.0 {
                    let mut out = doc[..first.0].to_vec();
                    out.extend_from_slice(&doc[second.0..second.1]);
                    out.extend_from_slice(&doc[first.1..second.0]);
                    out.extend_from_slice(&doc[first.0..first.1]);
                    out.extend_from_slice(&doc[second.1..]);
                    doc = out;
                }
            }
            Mutation::Delete { at, len } => {
                let at = at % n;
                doc.drain(at..(at + len).min(n));
            }
            Mutation::Duplicate { at, len } => {
                let at = at % n;
                let chunk = doc[at..(at + len).min(n)].to_vec();
                doc.splice(at..at, chunk);
            }
        }
        doc
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn mutated_samples_never_panic(doc in 0usize..7, ms in proptest::collection::vec(mutation(), 1..4)) {
            let corpus = corpus();
            let mut bytes = corpus[doc].clone();
            for m in &ms {
                if bytes.is_empty() { break; }
                bytes = apply(bytes, m);
            }
            // Either a report or a clear error; never a panic. Errors must say something.
            if let Err(e) = parse(&bytes) {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}
