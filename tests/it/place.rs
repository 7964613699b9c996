//! Place data and residents on the real public data: GSI shelter files, the generated 札幌市 districts, the
//! registration conversation (validated against LINE's official OpenAPI spec) and the CLI commands run on the
//! real binary with real SQLite files.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use sonae::place::status::ShelterStatus;
use sonae::place::{Hazard, LatLon, Limits, Need, Shelter, ShelterKind, Shelters};
use sonae::resident::flow::{self, Effect};

use crate::helpers::{free_port, write_config, SONAE};

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")).join(rel)
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

const SAPPORO_CSV: &str = "geo/shelters/sapporo-01100-shitei-kinkyu-hinanbasho.csv";
const YAMAGATA_CSV: &str = "geo/shelters/yamagata-06201-shitei-kinkyu-hinanbasho.csv";

fn load(paths: &[&str]) -> (Shelters, Vec<(PathBuf, sonae::place::LoadReport)>) {
    let paths: Vec<PathBuf> = paths.iter().map(|p| shared(p)).collect();
    Shelters::load_files(&paths).expect("files readable")
}

/// `Shelters::suggest` without limits, as (site, metres).
fn nearest(
    s: &Shelters,
    from: LatLon,
    need: Need,
    n: usize,
    status: impl Fn(&str) -> ShelterStatus,
) -> Vec<(&Shelter, f64)> {
    s.suggest(from, need, n, &Limits::none(), status)
        .into_iter()
        .map(|x| (x.shelter, x.distance_m))
        .collect()
}

fn count(s: &Shelters, h: Hazard) -> usize {
    s.all().iter().filter(|x| x.hazards.contains(h)).count()
}

#[test]
fn the_real_gsi_shelter_files_load_completely_with_the_documented_counts() {
    let (s, reports) = load(&[SAPPORO_CSV]);
    assert!(reports[0].1.is_clean(), "{:?}", reports[0].1);
    assert_eq!(s.len(), 349);
    assert_eq!(count(&s, Hazard::Flood), 280);
    assert_eq!(count(&s, Hazard::Landslide), 133);
    assert_eq!(count(&s, Hazard::Earthquake), 300);
    assert_eq!(count(&s, Hazard::LargeFire), 332);
    assert_eq!(
        count(&s, Hazard::Tsunami),
        1,
        "the upstream quirk at 芸術の森小学校 is kept"
    );
    assert_eq!(count(&s, Hazard::Volcano), 0);

    let (y, reports) = load(&[
        YAMAGATA_CSV,
        "geo/shelters/jp-shelter-api-evacuation-062014.geojson",
    ]);
    assert!(reports.iter().all(|r| r.1.is_clean()), "{reports:?}");
    assert_eq!(y.len(), 355 + 159);
    let emergency: Vec<_> = y
        .all()
        .iter()
        .filter(|x| x.kind == ShelterKind::Emergency)
        .collect();
    assert_eq!(emergency.len(), 355);
    assert_eq!(count(&y, Hazard::Earthquake), 353);
    assert_eq!(count(&y, Hazard::Volcano), 93);
    assert_eq!(count(&y, Hazard::Landslide), 86);
    assert_eq!(count(&y, Hazard::Flood), 85);
    assert_eq!(count(&y, Hazard::LargeFire), 2);
    let welfare = y.all().iter().filter(|x| x.welfare).count();
    assert_eq!(welfare, 59, "受入対象者 = 要配慮者");

    let (g, reports) = load(&["geo/shelters/jp-shelter-api-emergency-011002.geojson"]);
    assert!(reports[0].1.is_clean());
    assert_eq!(g.len(), 348);
    assert_eq!(count(&g, Hazard::Flood), 277);
}

#[test]
fn the_same_sites_in_two_files_are_reported_as_duplicates_not_loaded_twice() {
    let (s, reports) = load(&[
        YAMAGATA_CSV,
        "geo/shelters/jp-shelter-api-emergency-062014.geojson",
    ]);
    assert_eq!(s.len(), 355);
    assert!(reports[0].1.is_clean());
    let dup = &reports[1].1;
    assert_eq!(dup.loaded, 0);
    assert_eq!(dup.errors.len(), 355);
    assert!(
        dup.errors[0].1.contains("was already loaded from"),
        "{:?}",
        dup.errors[0]
    );
}

#[test]
fn a_damaged_copy_of_the_real_csv_reports_each_bad_row_by_its_line_and_keeps_the_rest() {
    let text = std::fs::read_to_string(shared(SAPPORO_CSV)).unwrap();
    let mut lines: Vec<String> = text.split("\r\n").map(String::from).collect();
    // Line numbers are 1-based; index = line - 1.
    lines[9] = lines[9].replacen(",43.", ",north43.", 1); // 緯度 not a number
    let mut f: Vec<String> = lines[199].split(',').map(String::from).collect();
    f[5] = "○".into(); // 洪水 flag
    lines[199] = f.join(",");
    lines[299] = "300,E0110000999202,北海道札幌市,途中で切れた行".into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.csv");
    std::fs::write(&path, lines.join("\r\n")).unwrap();
    let (s, reports) = Shelters::load_files(&[path]).unwrap();
    let r = &reports[0].1;
    let at: Vec<u64> = r.errors.iter().map(|e| e.0).collect();
    assert_eq!(at, vec![10, 200, 300], "{:?}", r.errors);
    assert!(
        r.errors[0].1.contains("緯度 \"north43."),
        "{}",
        r.errors[0].1
    );
    assert!(r.errors[1].1.contains("洪水 is \"○\""), "{}", r.errors[1].1);
    assert!(r.errors[2].1.contains("fields"), "{}", r.errors[2].1);
    assert_eq!(r.loaded, 346);
    assert_eq!(s.len(), 346);
}

fn demo() -> (sonae::place::Districts, Shelters) {
    sonae::place::demo_data::demo_city().expect("embedded demo data loads")
}

#[derive(serde::Deserialize)]
struct Town {
    town: String,
    lat: f64,
    lng: f64,
}

#[test]
fn every_official_town_point_inside_its_ward_is_located_in_its_own_district() {
    let (d, _) = demo();
    assert_eq!(d.len(), 5_899);
    let mut inside_own = 0;
    let mut total = 0;
    for (code, ward, slug) in sonae::place::demo_data::WARDS {
        let towns: Vec<Town> = serde_json::from_str(
            &std::fs::read_to_string(shared(&format!(
                "geo/districts/geolonia-japanese-addresses-sapporo-{code}-{slug}-ku-towns.json"
            )))
            .unwrap(),
        )
        .unwrap();
        for t in towns {
            total += 1;
            let hit = d
                .locate(LatLon::new(t.lat, t.lng).unwrap())
                .expect("every town point is in 札幌市");
            if hit.group.as_deref() == Some(ward) && hit.name == t.town {
                inside_own += 1;
            }
        }
    }
    assert_eq!(total, 5_901);
    // The shared README counts 5,873 town points inside their own ward's (1 % simplified) outline; each of
    // them must be in its own Voronoi cell, and no other.
    assert_eq!(inside_own, 5_873);
}

#[test]
fn every_sapporo_shelter_lies_in_a_district_of_the_ward_named_in_its_address() {
    let (d, s) = demo();
    for site in s.all() {
        let hit = d
            .locate(site.at)
            .unwrap_or_else(|| panic!("{} outside every district", site.name));
        let ward = hit.group.as_deref().unwrap();
        assert!(
            site.address.starts_with(&format!("北海道札幌市{ward}")),
            "{} ({}) located in {ward}",
            site.name,
            site.address
        );
        assert_eq!(hit.jma_code, "0110000");
    }
    assert_eq!(d.ids_for_jma_code("0110000").len(), 5_899);
    assert_eq!(
        d.ids_for_jma_code("0110100").len(),
        990,
        "中央区 by its seismic code"
    );
}

#[test]
fn the_nearest_open_shelters_suited_to_the_hazard_match_the_surveyed_distances() {
    let (_, s) = demo();
    let from = LatLon::new(43.0600, 141.3500).unwrap();
    let open = |_: &str| ShelterStatus::Unknown;
    let flood = nearest(&s, from, Need::Flee(Hazard::Flood), 3, open);
    assert_eq!(flood[0].0.name, "資生館小学校");
    assert!((flood[0].1 - 519.0).abs() < 5.0, "{}", flood[0].1);
    assert_eq!(flood[1].0.name, "中央中学校");
    assert!((flood[1].1 - 1_162.0).abs() < 5.0, "{}", flood[1].1);
    assert!(flood[1].1 <= flood[2].1);
    let slide = nearest(&s, from, Need::Flee(Hazard::Landslide), 1, open);
    assert_eq!(slide[0].0.name, "山鼻小学校");
    assert!((slide[0].1 - 2_115.0).abs() < 5.0, "{}", slide[0].1);
    // 資生館小学校 full: the next suited site moves up; a closed one is skipped too.
    let status = |id: &str| match id {
        "E0110000241202" => ShelterStatus::Full,
        _ => ShelterStatus::Unknown,
    };
    let flood = nearest(&s, from, Need::Flee(Hazard::Flood), 1, status);
    assert_eq!(flood[0].0.name, "中央中学校");
    // No 指定避難所 file exists for 札幌市.
    assert!(nearest(&s, from, Need::Stay, 3, open).is_empty());
    // The brute-force answer agrees with the index for every hazard.
    for h in Hazard::ALL {
        let mut all: Vec<(f64, &str)> = s
            .all()
            .iter()
            .filter(|x| x.hazards.contains(h))
            .map(|x| (from.distance_m(x.at), x.id.as_str()))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let got: Vec<&str> = nearest(&s, from, Need::Flee(h), 5, open)
            .iter()
            .map(|x| x.0.id.as_str())
            .collect();
        let want: Vec<&str> = all.iter().take(5).map(|x| x.1).collect();
        assert_eq!(got, want, "{h:?}");
    }
}

#[test]
fn a_flood_alert_in_yamagata_never_offers_a_park() {
    let (y, _) = load(&[
        YAMAGATA_CSV,
        "geo/shelters/jp-shelter-api-evacuation-062014.geojson",
    ]);
    let from = LatLon::new(38.2554, 140.3396).unwrap();
    let open = |_: &str| ShelterStatus::Open;
    let any = y.nearest_matching(from, 1, |s| s.kind == ShelterKind::Emergency);
    assert_eq!(any[0].0.name, "第四小学校（グラウンド）");
    assert!((any[0].1 - 370.0).abs() < 10.0, "{}", any[0].1);
    let flood = nearest(&y, from, Need::Flee(Hazard::Flood), 85, open);
    assert_eq!(flood.len(), 85);
    assert_eq!(flood[0].0.name, "第四小学校（体育館）");
    assert!((flood[0].1 - 433.0).abs() < 10.0, "{}", flood[0].1);
    assert!(flood.iter().all(|(s, _)| !s.name.contains("公園")));
    let stay = nearest(&y, from, Need::Stay, 3, open);
    assert_eq!(stay.len(), 3);
    assert!(stay.iter().all(|(s, _)| s.kind == ShelterKind::Evacuation));
}

// ---- LINE message validity ----------------------------------------------------------------------------

/// A JSON Schema validator for one schema of LINE's official OpenAPI spec. OpenAPI's `discriminator` is
/// turned into `if type == k then $ref mapping[k]`, and the children's `allOf: [$ref parent]` point at a copy
/// of the parent without the discriminator, so nested flex components and actions are checked in depth.
fn line_validator(schema: &str) -> jsonschema::Validator {
    // The vendored copy of LINE's messaging-api.yml (crates/line-openapi checks it equals upstream's YAML).
    let spec: Value =
        sonae::line::spec::document(sonae::line::spec::Document::MessagingApi).clone();
    let mut schemas = spec["components"]["schemas"].as_object().unwrap().clone();
    let with_disc: Vec<String> = schemas
        .iter()
        .filter(|(_, v)| v.get("discriminator").is_some())
        .map(|(k, _)| k.clone())
        .collect();
    for name in &with_disc {
        let mut base = schemas[name].clone();
        let disc = base
            .as_object_mut()
            .unwrap()
            .remove("discriminator")
            .unwrap();
        let prop = disc["propertyName"].as_str().unwrap().to_string();
        let mut all =
            vec![serde_json::json!({"$ref": format!("#/components/schemas/{name}__base")})];
        for (k, target) in disc["mapping"].as_object().unwrap() {
            all.push(serde_json::json!({
                "if": {"properties": {prop.clone(): {"const": k}}, "required": [prop.clone()]},
                "then": {"$ref": target}
            }));
        }
        schemas.insert(format!("{name}__base"), base);
        schemas.insert(name.clone(), serde_json::json!({"allOf": all}));
    }
    for (name, v) in schemas.iter_mut() {
        if name.ends_with("__base") {
            continue;
        }
        if let Some(all) = v.get_mut("allOf").and_then(|a| a.as_array_mut()) {
            for item in all {
                if let Some(r) = item.get("$ref").and_then(|r| r.as_str()) {
                    let target = r.trim_start_matches("#/components/schemas/");
                    if with_disc.iter().any(|d| d == target) {
                        *item = serde_json::json!({"$ref": format!("{r}__base")});
                    }
                }
            }
        }
    }
    let root = serde_json::json!({
        "$ref": format!("#/components/schemas/{schema}"),
        "components": {"schemas": schemas}
    });
    jsonschema::validator_for(&root).expect("spec compiles")
}

/// Checks a message against the spec and the limits the spec does not encode (LINE docs).
fn assert_valid_message(v: &jsonschema::Validator, m: &Value) {
    let errors: Vec<String> = v
        .iter_errors(m)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{m:#}");
    if let Some(items) = m.pointer("/quickReply/items").and_then(|i| i.as_array()) {
        assert!(items.len() <= 13);
    }
    let text = m.to_string();
    let mut labels = Vec::new();
    collect_labels(m, &mut labels);
    for l in labels {
        assert!(l.chars().count() <= 20, "label too long: {l}");
    }
    if m["type"] == "flex" {
        assert!(m["altText"].as_str().unwrap().chars().count() <= 1_500);
        let bubbles = m["contents"]["contents"].as_array().unwrap();
        assert!(!bubbles.is_empty() && bubbles.len() <= 12);
        assert!(
            m["contents"].to_string().len() <= 50_000,
            "carousel ≤ 50 KB"
        );
        for b in bubbles {
            assert!(b.to_string().len() <= 30_000, "bubble ≤ 30 KB");
        }
    } else {
        assert!(
            m["text"].as_str().unwrap().chars().count() <= 5_000,
            "{text}"
        );
    }
}

fn collect_labels(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let (Some(Value::String(l)), Some(_)) = (o.get("label"), o.get("type")) {
                out.push(l.clone());
            }
            if let Some(Value::String(d)) = o.get("data") {
                assert!(d.len() <= 300, "postback data ≤ 300: {d}");
            }
            o.values().for_each(|x| collect_labels(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_labels(x, out)),
        _ => {}
    }
}

fn postbacks(m: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(o) => {
                if o.get("type").and_then(|t| t.as_str()) == Some("postback") {
                    out.push((
                        o["label"].as_str().unwrap().to_string(),
                        o["data"].as_str().unwrap().to_string(),
                    ));
                }
                o.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(m, &mut out);
    out
}

fn data_for<'a>(pb: &'a [(String, String)], label: &str) -> &'a str {
    &pb.iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no button {label}: {pb:?}"))
        .1
}

#[test]
fn a_new_follower_registers_a_district_by_ward_town_list_and_the_messages_are_valid_line_messages()
{
    let (d, _) = demo();
    let v = line_validator("Message");
    let welcome = flow::welcome(&d, "札幌市", None);
    assert_eq!(welcome.len(), 2);
    welcome.iter().for_each(|m| assert_valid_message(&v, m));
    let items = welcome[1]["quickReply"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 11, "location + 10 wards");
    assert_eq!(items[0]["action"]["type"], "location");
    let wards = postbacks(&welcome[1]);
    assert_eq!(wards[0].0, "中央区");

    // Ward → page 1 of its town bases.
    let r = flow::on_postback(&d, data_for(&wards, "中央区")).unwrap();
    assert_eq!(r.effect, Effect::None);
    let page1 = &r.messages[0];
    assert_valid_message(&v, page1);
    assert!(
        page1["altText"].as_str().unwrap().contains("1/2ページ"),
        "{}",
        page1["altText"]
    );
    let pb = postbacks(page1);
    let buttons: Vec<&(String, String)> = pb
        .iter()
        .filter(|(_, d)| d.contains("step=base") || d.contains("step=set"))
        .collect();
    assert_eq!(buttons.len(), flow::PER_PAGE);
    // The next page has the rest of 中央区's 79 bases.
    let r2 = flow::on_postback(&d, data_for(&pb, "次のページ")).unwrap();
    assert_valid_message(&v, &r2.messages[0]);
    let pb2 = postbacks(&r2.messages[0]);
    let rest = pb2
        .iter()
        .filter(|(_, d)| d.contains("step=base") || d.contains("step=set"))
        .count();
    assert_eq!(buttons.len() + rest, 79);
    // Base 大通西 → its 丁目 → register 大通西三丁目.
    let all_pb: Vec<(String, String)> = pb.iter().chain(pb2.iter()).cloned().collect();
    let r3 = flow::on_postback(&d, data_for(&all_pb, "大通西")).unwrap();
    assert_valid_message(&v, &r3.messages[0]);
    let towns = postbacks(&r3.messages[0]);
    let n_odori = d
        .all()
        .iter()
        .filter(|x| x.group.as_deref() == Some("中央区") && flow::base_name(&x.name) == "大通西")
        .count();
    assert_eq!(
        towns.iter().filter(|(_, d)| d.contains("step=set")).count(),
        n_odori
    );
    let r4 = flow::on_postback(&d, data_for(&towns, "大通西三丁目")).unwrap();
    let Effect::Register { district_id } = &r4.effect else {
        panic!("{:?}", r4.effect)
    };
    let chosen = d.get(district_id).unwrap();
    assert_eq!(
        (chosen.group.as_deref(), chosen.name.as_str()),
        (Some("中央区"), "大通西三丁目")
    );
    r4.messages.iter().for_each(|m| assert_valid_message(&v, m));
    assert!(r4.messages[0]["text"]
        .as_str()
        .unwrap()
        .contains("「中央区 大通西三丁目」を登録しました"));
    // Opt in to レベル3.
    let l3 = flow::on_postback(
        &d,
        data_for(&postbacks(&r4.messages[0]), "レベル3も受け取る"),
    )
    .unwrap();
    assert_eq!(l3.effect, Effect::SetLevel3(true));
    l3.messages.iter().for_each(|m| assert_valid_message(&v, m));
}

#[test]
fn a_shared_location_registers_the_district_containing_it_and_a_location_outside_the_city_does_not()
{
    let (d, _) = demo();
    let v = line_validator("Message");
    // The official point of 大通西一丁目.
    let odori = LatLon::new(43.061017, 141.356364).unwrap();
    let r = flow::on_location(&d, "札幌市", odori, None, "https://bousai.example.lg.jp");
    let Effect::Register { district_id } = &r.effect else {
        panic!("{:?}", r.effect)
    };
    assert_eq!(d.get(district_id).unwrap().name, "大通西一丁目");
    r.messages.iter().for_each(|m| assert_valid_message(&v, m));
    // 東京駅.
    let r = flow::on_location(
        &d,
        "札幌市",
        LatLon::new(35.6812, 139.7671).unwrap(),
        None,
        "https://bousai.example.lg.jp",
    );
    assert_eq!(r.effect, Effect::None);
    assert!(r.messages[0]["text"].as_str().unwrap().contains("区域の外"));
    r.messages.iter().for_each(|m| assert_valid_message(&v, m));
}

#[test]
fn a_registered_resident_sharing_a_location_elsewhere_is_asked_and_their_home_district_stays() {
    let (d, _) = demo();
    let v = line_validator("Message");
    let home = d
        .all()
        .iter()
        .find(|x| x.name == "旭ケ丘一丁目")
        .unwrap()
        .id
        .clone();
    let odori = LatLon::new(43.061017, 141.356364).unwrap();
    let r = flow::on_location(
        &d,
        "札幌市",
        odori,
        Some(&home),
        "https://bousai.example.lg.jp",
    );
    assert_eq!(r.effect, Effect::None, "the home registration is not moved");
    let text = r.messages[0]["text"].as_str().unwrap();
    assert!(
        text.contains("大通西一丁目") && text.contains("変えていません"),
        "{text}"
    );
    let items = r.messages[0]["quickReply"]["items"].to_string();
    assert!(
        items.contains("step=set") && items.contains("/shelters?lat="),
        "{items}"
    );
    r.messages.iter().for_each(|m| assert_valid_message(&v, m));
    // Outside the city: the home registration stays too, and no list is forced on them.
    let r = flow::on_location(
        &d,
        "札幌市",
        LatLon::new(35.6812, 139.7671).unwrap(),
        Some(&home),
        "https://bousai.example.lg.jp",
    );
    assert_eq!(r.effect, Effect::None);
    assert_eq!(r.messages.len(), 1);
}

#[test]
fn a_typed_town_name_with_arabic_numbers_finds_the_district() {
    let (d, _) = demo();
    let v = line_validator("Message");
    let r = flow::on_text(&d, "大通西3丁目").unwrap();
    r.messages.iter().for_each(|m| assert_valid_message(&v, m));
    let pb: Vec<(String, String)> = postbacks(&r.messages[0])
        .into_iter()
        .filter(|(_, x)| x.contains("step=set"))
        .collect();
    assert_eq!(pb.len(), 1, "{pb:?}");
    assert_eq!(pb[0].0, "中央区 大通西三丁目");
    assert!(flow::on_text(&d, "こんにちは").is_none());
    assert!(
        flow::on_text(&d, "北").is_none(),
        "one character is too little to search"
    );
    let too_many = flow::on_text(&d, "北区").unwrap();
    assert!(too_many.messages[0]["text"]
        .as_str()
        .unwrap()
        .contains("件あります"));
    assert_eq!(flow::on_text(&d, "地区変更").unwrap().messages.len(), 1);
    // Stale or foreign postbacks.
    assert!(flow::on_postback(&d, "plow|notify").is_none());
    let stale = flow::on_postback(&d, "action=register&step=set&district=99999-0001").unwrap();
    assert_eq!(stale.effect, Effect::None);
}

// ---- CLI on the real binary ----------------------------------------------------------------------------

/// The demo city's config, with its database created as an operator would (`sonae db migrate`).
fn demo_config(dir: &std::path::Path) -> PathBuf {
    let addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir,
        addr,
        &format!(
            "\n[place]\ncity_name = \"札幌市\"\ndistricts = \"{}\"\nshelters = [\"{}\"]\n",
            repo("deploy/demo/sapporo-districts.geojson").display(),
            repo("deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv").display()
        ),
    );
    crate::helpers::migrate(&config);
    config
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(SONAE)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn shelter_status_is_set_from_the_cli_listed_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo_config(dir.path());
    let c = cfg.to_str().unwrap();
    let (code, out, err) = run(&["shelter", "list", "--config", c, "--hazard", "flood"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1 + 280);
    let (code, out, err) = run(&[
        "shelter",
        "status",
        "--config",
        c,
        "E0110000241202",
        "full",
        "--actor",
        "kikikanri-1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("資生館小学校: unknown → full"), "{out}");
    let (code, out, _) = run(&["shelter", "status", "--config", c, "E0110000241202", "full"]);
    assert_eq!(code, 0);
    assert!(out.contains("already full"), "{out}");
    let (code, out, _) = run(&["shelter", "list", "--config", c, "--status", "full"]);
    assert_eq!(code, 0);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].starts_with("E0110000241202\tfull\t指定緊急避難場所\t資生館小学校\t"),
        "{}",
        rows[0]
    );
    let (code, _, err) = run(&[
        "shelter",
        "status",
        "--config",
        c,
        "E9999999999999",
        "closed",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("is not in the configured shelter files"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "shelter",
        "status",
        "--config",
        c,
        "E0110000241202",
        "half-open",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not one of open, closed, full"), "{err}");
    let db = rusqlite::Connection::open(dir.path().join("sonae.db")).unwrap();
    let (actor, detail): (String, String) = db
        .query_row(
            "SELECT actor, detail FROM audit_log WHERE action = 'shelter.status'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(actor, "kikikanri-1");
    assert!(
        detail.contains("\"from\":\"unknown\"") && detail.contains("\"to\":\"full\""),
        "{detail}"
    );
}

#[test]
fn a_residents_import_with_one_bad_row_imports_nothing_and_a_good_one_imports_everything() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo_config(dir.path());
    let c = cfg.to_str().unwrap();
    let user = |n: u32| format!("U{n:032x}");
    let mut good = String::from("user_id,district\n");
    for i in 0..2_000u32 {
        good.push_str(&format!(
            "{},{}\n",
            user(i),
            if i % 2 == 0 {
                "01101-0001"
            } else {
                "01110-0001"
            }
        ));
    }
    let mut bad = good.clone();
    bad.push_str(&format!("{},01101-9999\n", user(5_000)));
    bad.push_str("Uxyz,01101-0001\n");
    let bad_path = dir.path().join("bad.csv");
    std::fs::write(&bad_path, &bad).unwrap();
    let (code, _, err) = run(&[
        "residents",
        "import",
        "--config",
        c,
        bad_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("bad.csv:2002: district \"01101-9999\""),
        "{err}"
    );
    assert!(err.contains("bad.csv:2003: user_id"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    let (code, out, _) = run(&["residents", "export", "--config", c]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "only the header: {out}");

    let good_path = dir.path().join("good.csv");
    std::fs::write(&good_path, &good).unwrap();
    let (code, out, err) = run(&[
        "residents",
        "import",
        "--config",
        c,
        good_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 2000 resident(s)"), "{out}");
    let (code, out, _) = run(&["residents", "export", "--config", c]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2_001);
    assert!(out
        .lines()
        .nth(1)
        .unwrap()
        .starts_with(&format!("{},01101-0001,1,0,", user(0))));

    // The audience of 中央区's first district is exactly the even half.
    let store = sonae::store::Store::open(&dir.path().join("sonae.db")).unwrap();
    let aud = sonae::resident::Audience {
        districts: vec!["01101-0001".into()],
        level3_opt_in_only: false,
        unregistered: false,
    };
    let got = store
        .read_blocking(|c| sonae::resident::audience(c, &aud))
        .unwrap();
    assert_eq!(got.len(), 1_000);
    assert!(got
        .iter()
        .all(|u| u32::from_str_radix(&u.as_str()[1..], 16).unwrap() % 2 == 0));
}

/// Excel on Japanese Windows saves CSV as CP932: the city's own files, made here by encoding real data.
fn cp932(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
    assert!(!unmappable, "the text fits CP932");
    assert!(std::str::from_utf8(&bytes).is_err(), "really not UTF-8");
    bytes.into_owned()
}

#[test]
fn a_cp932_residents_file_with_district_names_as_clerks_write_them_is_imported_after_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo_config(dir.path());
    let c = cfg.to_str().unwrap();
    let user = |n: u32| format!("U{n:032x}");
    // District names the way a clerk types them (Arabic or full-width numbers, ヶ for ケ, ノ for の, ward and
    // town with a full-width space), and one row by id.
    let rows = [
        (user(1), "旭ヶ丘1丁目", "01101-0001"),
        (user(2), "中央区　大通西１丁目", "01101-0007"),
        (user(3), "宮ノ森1条10丁目", "01101-0931"),
        (user(4), "01101-0925", "01101-0925"),
    ];
    let mut text = String::from("user_id,district\r\n");
    for (u, d, _) in &rows {
        text.push_str(&format!("{u},{d}\r\n"));
    }
    let path = dir.path().join("住民.csv");
    std::fs::write(&path, cp932(&text)).unwrap();
    let p = path.to_str().unwrap();

    let (code, out, err) = run(&["residents", "import", "--dry-run", "-c", c, p]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("read as Shift_JIS (CP932)"), "{err}");
    assert!(
        out.contains("would import 4 resident(s)") && out.contains("4 new, 0 updated"),
        "{out}"
    );
    let (_, exported, _) = run(&["residents", "export", "-c", c]);
    assert_eq!(exported.lines().count(), 1, "a dry run writes nothing");

    let (code, out, err) = run(&["residents", "import", "--format", "json", "-c", c, p]);
    assert_eq!(code, 0, "{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["encoding"], "Shift_JIS (CP932)");
    assert_eq!(
        (summary["rows"].as_u64(), summary["new"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(summary["dry_run"], false);

    // The export is UTF-8 with a BOM (Excel opens it as UTF-8), carries the district ids the names
    // resolved to, and imports again (now as updates).
    let out = Command::new(SONAE)
        .args(["residents", "export", "--config", c])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.starts_with(b"\xEF\xBB\xBF"), "BOM first");
    let text = String::from_utf8(out.stdout[3..].to_vec()).unwrap();
    for (u, _, id) in &rows {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{u},{id},1,0,"))),
            "{u} → {id} in:\n{text}"
        );
    }
    let again = dir.path().join("export.csv");
    std::fs::write(
        &again,
        [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
    )
    .unwrap();
    let (code, out, err) = run(&["residents", "import", "-c", c, again.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("read as UTF-8 (BOM)"), "{err}");
    assert!(out.contains("0 new, 4 updated"), "{out}");

    // A name that is no district, in CP932 too, is named in the message with its line; nothing is written.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, cp932(&format!("{},存在しない町1丁目\r\n", user(9)))).unwrap();
    let (code, _, err) = run(&["residents", "import", "-c", c, bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.csv:1: district \"存在しない町1丁目\" is neither a district id nor a district name"),
        "{err}"
    );
}

#[test]
fn gsi_shelters_saved_as_cp932_load_the_same_as_utf8_and_list_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let utf8 = std::fs::read_to_string(shared(SAPPORO_CSV)).unwrap();
    let sjis = dir.path().join("shelters-cp932.csv");
    std::fs::write(&sjis, cp932(&utf8)).unwrap();
    let list = |shelters: &std::path::Path| {
        let sub = dir.path().join(format!("d{}", free_port()));
        std::fs::create_dir(&sub).unwrap();
        let cfg = write_config(
            &sub,
            format!("127.0.0.1:{}", free_port()).parse().unwrap(),
            &format!(
                "\n[place]\ncity_name = \"札幌市\"\ndistricts = \"{}\"\nshelters = [\"{}\"]\n",
                repo("deploy/demo/sapporo-districts.geojson").display(),
                shelters.display()
            ),
        );
        let (code, _, err) = run(&["db", "migrate", "-c", cfg.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        let (code, out, err) = run(&[
            "shelter",
            "list",
            "--format",
            "json",
            "--hazard",
            "flood",
            "-c",
            cfg.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("warning"), "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let from_sjis = list(&sjis);
    let from_utf8 = list(&shared(SAPPORO_CSV));
    assert_eq!(from_sjis.as_array().map(Vec::len), Some(280));
    assert_eq!(from_sjis, from_utf8);
    let first = &from_sjis[0];
    assert!(first["id"].as_str().unwrap().starts_with("E01"), "{first}");
    assert!(first["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(
        first["hazards"]
            .as_array()
            .unwrap()
            .contains(&"洪水".into()),
        "{first}"
    );
}

#[test]
fn the_spec_validator_catches_malformed_flex_and_actions() {
    let v = line_validator("Message");
    let good = serde_json::json!({"type": "flex", "altText": "x", "contents": {"type": "carousel", "contents": [
        {"type": "bubble", "size": "kilo", "body": {"type": "box", "layout": "vertical", "contents": [
            {"type": "button", "action": {"type": "postback", "label": "a", "data": "action=register&step=start"}}]}}]}});
    assert!(v.is_valid(&good));
    let mut bad_size = good.clone();
    bad_size["contents"]["contents"][0]["size"] = "huge".into();
    assert!(
        !v.is_valid(&bad_size),
        "bubble size enum is checked in depth"
    );
    let mut bad_data = good.clone();
    bad_data["contents"]["contents"][0]["body"]["contents"][0]["action"]["data"] =
        "x".repeat(301).into();
    assert!(
        !v.is_valid(&bad_data),
        "postback data ≤ 300 is checked inside a button"
    );
    let mut bad_layout = good.clone();
    bad_layout["contents"]["contents"][0]["body"]["layout"] = "diagonal".into();
    assert!(!v.is_valid(&bad_layout));
    let too_many = serde_json::json!({"type": "text", "text": "x", "quickReply": {"items":
        (0..14).map(|_| serde_json::json!({"type": "action", "action": {"type": "location", "label": "位置"}})).collect::<Vec<_>>()}});
    assert!(!v.is_valid(&too_many), "quick reply ≤ 13 items");
}

#[test]
fn demo_data_generation_is_repeatable_and_matches_the_committed_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let (code, stdout, err) = run(&[
        "demo-data",
        "generate",
        "--shared",
        shared("").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("wrote 5899 districts"), "{stdout}");
    assert!(
        stdout.contains("left out (empty after clipping to the ward outline): 北区北七条西十丁目"),
        "{stdout}"
    );
    for f in [
        "sapporo-districts.geojson",
        "sapporo-01100-shitei-kinkyu-hinanbasho.csv",
    ] {
        let fresh = std::fs::read(out.join(f)).unwrap();
        let committed = std::fs::read(repo(&format!("deploy/demo/{f}"))).unwrap();
        assert!(
            fresh == committed,
            "{f} differs from the committed copy; rerun `sonae demo-data generate`"
        );
    }
}

#[tokio::test]
async fn a_resident_follows_registers_by_location_unfollows_and_comes_back_with_the_district_kept()
{
    let dir = tempfile::tempdir().unwrap();
    let store = sonae::store::Store::open(&dir.path().join("sonae.db")).unwrap();
    let (d, _) = demo();
    let u = sonae::ids::LineUserId::parse("U4af4980629a0b1c2d3e4f5a6b7c8d9e0").unwrap();
    let welcome = sonae::resident::on_follow(&store, &d, "札幌市", u.clone())
        .await
        .unwrap();
    assert_eq!(welcome.len(), 2);
    let reply = flow::on_location(
        &d,
        "札幌市",
        LatLon::new(43.061017, 141.356364).unwrap(),
        None,
        "https://bousai.example.lg.jp",
    );
    let district = match &reply.effect {
        Effect::Register { district_id } => district_id.clone(),
        other => panic!("{other:?}"),
    };
    let sent = sonae::resident::settle(&store, u.clone(), reply)
        .await
        .unwrap();
    assert!(sent[0]["text"].as_str().unwrap().contains("大通西一丁目"));
    let aud = sonae::resident::Audience {
        districts: vec![district.clone()],
        level3_opt_in_only: false,
        unregistered: false,
    };
    let who = |store: &sonae::store::Store| {
        let aud = aud.clone();
        store
            .read_blocking(move |c| sonae::resident::audience(c, &aud))
            .unwrap()
    };
    assert_eq!(who(&store), vec![u.clone()]);
    assert!(sonae::resident::unfollow(&store, u.clone()).await.unwrap());
    assert!(
        who(&store).is_empty(),
        "an unfollowed resident gets no alert"
    );
    let back = sonae::resident::on_follow(&store, &d, "札幌市", u.clone())
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    let text = back[0]["text"].as_str().unwrap();
    assert!(
        text.contains("おかえりなさい") && text.contains("中央区 大通西一丁目"),
        "{text}"
    );
    assert_eq!(who(&store), vec![u]);
}

#[tokio::test]
async fn bad_rows_in_the_configured_files_become_operator_visible_problems() {
    let dir = tempfile::tempdir().unwrap();
    let store = sonae::store::Store::open(&dir.path().join("sonae.db")).unwrap();
    let csv = dir.path().join("shelters.csv");
    let text = std::fs::read_to_string(shared(SAPPORO_CSV)).unwrap();
    std::fs::write(&csv, text.replacen(",1,43.03806002377,", ",1,,", 1)).unwrap();
    let cfg = sonae::place::PlaceConfig {
        districts: repo("deploy/demo/sapporo-districts.geojson"),
        shelters: vec![csv],
        ..Default::default()
    };
    let data = sonae::place::PlaceData::load_and_record(&cfg, &store)
        .await
        .unwrap();
    assert_eq!(data.shelters.len(), 348);
    let problems: Vec<String> = store
        .read_blocking(|c| {
            let mut s = c.prepare("SELECT message FROM problems WHERE source = 'place.load'")?;
            let v = s
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(v)
        })
        .unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("shelters.csv:2: 共通ID E0110000001202: 緯度 is empty"),
        "{}",
        problems[0]
    );
    let missing = sonae::place::PlaceConfig {
        districts: dir.path().join("nope.geojson"),
        ..Default::default()
    };
    assert!(sonae::place::PlaceData::load_and_record(&missing, &store)
        .await
        .is_err());
}
