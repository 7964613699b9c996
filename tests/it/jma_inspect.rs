//! `sonae jma inspect` run as the real binary on every shared JMA sample (issue 3, item 7).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::helpers::SONAE;

fn samples() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/jma/samples"
    ))
    .to_path_buf()
}

fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    v.sort();
    v
}

fn run(files: &[PathBuf]) -> (i32, Vec<Value>) {
    let out = Command::new(SONAE)
        .arg("jma")
        .arg("inspect")
        .args(files)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}")))
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {v}"))
}

#[test]
fn jma_inspect_prints_the_required_fields_for_every_sample_telegram() {
    let mut files = xml_files(&samples().join("official"));
    files.extend(xml_files(&samples().join("captured")));
    assert!(files.len() >= 57);
    let (code, lines) = run(&files);
    assert_eq!(code, 0, "all telegrams parse, so exit 0");
    assert_eq!(lines.len(), files.len(), "one line per file");
    for (f, v) in files.iter().zip(&lines) {
        assert_eq!(s(v, &["file"]), f.display().to_string());
        assert!(v.get("error").is_none(), "{v}");
        assert!(!s(v, &["control", "title"]).is_empty());
        assert!(["通常", "訓練", "試験"].contains(&s(v, &["control", "status"])));
        assert!(
            s(v, &["control", "datetime"]).ends_with('Z'),
            "Control/DateTime is UTC"
        );
        assert!(s(v, &["head", "report_datetime"]).ends_with("+09:00"));
        assert!(["発表", "訂正", "遅延", "取消"].contains(&s(v, &["head", "info_type"])));
        for key in ["title", "event_id", "serial", "info_kind"] {
            assert!(v["head"][key].is_string(), "head.{key} in {v}");
        }
        let areas = v["areas"].as_array().expect("areas");
        for a in areas {
            for key in ["block", "code", "name"] {
                assert!(a[key].is_string(), "{key} in {a}");
            }
            for k in a["kinds"].as_array().expect("kinds") {
                assert!(!s(k, &["code"]).is_empty(), "only Kinds with a Code: {a}");
                assert!(k["name"].is_string() && k["status"].is_string());
            }
        }
        let seismic = s(v, &["control", "title"]).contains("震")
            || s(v, &["control", "title"]).starts_with("津波")
            || s(v, &["control", "title"]).starts_with("緊急地震");
        assert_eq!(
            v.get("intensity").is_some(),
            seismic,
            "intensity only for seismic documents: {}",
            f.display()
        );
    }
    let by_name = |n: &str| lines.iter().find(|v| s(v, &["file"]).ends_with(n)).unwrap();

    // A warning telegram: the 市町村等 block with the kinds in document order.
    let v = by_name("15_12_01_161130_VPWW54.xml");
    let hamada = v["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["block"] == "気象警報・注意報（市町村等）" && a["code"] == "3220200")
        .unwrap();
    assert_eq!(hamada["name"], "浜田市");
    assert_eq!(hamada["kinds"][0]["code"], "33");
    assert_eq!(hamada["kinds"][0]["status"], "発表");
    assert_eq!(hamada["kinds"][1]["code"], "04");

    // Tsunami forecast items as block 津波予報 with an empty status.
    let v = by_name("20231009064018_06274659_VTSE41.xml");
    let areas = v["areas"].as_array().unwrap();
    assert_eq!(areas.len(), 2);
    assert_eq!(areas[0]["block"], "津波予報");
    assert_eq!(areas[0]["code"], "320");
    assert_eq!(areas[0]["kinds"][0]["code"], "62");
    assert_eq!(areas[0]["kinds"][0]["status"], "");

    // Intensity: Cities when present, otherwise Areas.
    let v = by_name("20210217140958_0_VXSE53_010000.xml");
    let int = v["intensity"].as_array().unwrap();
    assert_eq!(int.len(), 100);
    assert_eq!(
        (
            s(&int[0], &["code"]),
            s(&int[0], &["name"]),
            s(&int[0], &["max_int"])
        ),
        ("0420200", "石巻市", "3")
    );
    let v = by_name("20210217140808_0_VXSE51_010000.xml");
    let int = v["intensity"].as_array().unwrap();
    assert_eq!(int.len(), 2);
    assert_eq!(int[0]["code"], "222");

    // 取消 and 訓練 are shown as such.
    assert_eq!(
        by_name("38-39_03_01_210805_VTSE41.xml")["head"]["info_type"],
        "取消"
    );
    assert_eq!(
        by_name("32-39_13_02_250206_VTSE41.xml")["control"]["status"],
        "訓練"
    );
}

#[test]
fn jma_inspect_reports_bad_files_goes_on_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.xml");
    std::fs::write(&garbage, "<Report><Control>").unwrap();
    let missing = dir.path().join("missing.xml");
    let good = samples().join("official/17_04_01_250630_VXWW50.xml");
    let feed = samples().join("feeds/extra.xml");
    let files = vec![garbage.clone(), good.clone(), feed.clone(), missing.clone()];
    let (code, lines) = run(&files);
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 4);
    assert!(
        s(&lines[0], &["error"]).starts_with("not a JMA report"),
        "{}",
        lines[0]
    );
    assert_eq!(
        s(&lines[1], &["head", "title"]),
        "神奈川県レベル４土砂災害危険警報"
    );
    assert!(
        s(&lines[2], &["error"]).contains("Atom feed"),
        "{}",
        lines[2]
    );
    assert!(
        s(&lines[3], &["error"]).contains("cannot read"),
        "{}",
        lines[3]
    );
    for (f, v) in files.iter().zip(&lines) {
        assert_eq!(s(v, &["file"]), f.display().to_string());
    }
}
