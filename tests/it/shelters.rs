//! `/shelters` and `/api/shelters` on the real binary with the 札幌市 demo districts and GSI shelters.

use std::path::PathBuf;

use crate::helpers::{free_port, reqwest::get_full, write_config, Daemon};

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The real daemon with the 札幌市 demo districts and GSI shelters (Leaflet is in the binary), plus the id of
/// the first district.
fn sapporo_daemon(dir: &std::path::Path) -> (Daemon, String) {
    let addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = write_config(
        dir,
        addr,
        &format!(
            "\n[jma]\nfeeds = []\n\n[place]\ncity_name = \"札幌市\"\ndistricts = \"{}\"\nshelters = [\"{}\"]\n",
            repo("deploy/demo/sapporo-districts.geojson").display(),
            repo("deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv").display(),
        ),
    );
    let districts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("deploy/demo/sapporo-districts.geojson")).unwrap(),
    )
    .unwrap();
    let id = districts["features"][0]["properties"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (Daemon::start(&cfg, addr), id)
}

/// The JSON body of `/api/shelters` for a district and hazard.
fn shelters_json(d: &Daemon, id: &str, hazard: &str) -> serde_json::Value {
    let (code, body) =
        get_full(&d.url(&format!("/api/shelters?district={id}&hazard={hazard}"))).unwrap();
    assert_eq!(code, 200, "{body}");
    let json_start = body.find('{').unwrap();
    serde_json::from_str(body[json_start..].trim_end_matches(|c: char| c != '}')).unwrap()
}

#[test]
fn the_shelter_api_lists_open_suited_shelters_nearest_first_and_refuses_bad_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (d, id) = sapporo_daemon(dir.path());
    let v = shelters_json(&d, &id, "flood");
    assert_eq!(v["district"]["id"], id.as_str());
    assert_eq!(v["hazard"], "flood");
    assert_eq!(v["hazard_label"], "洪水");
    let shelters = v["shelters"].as_array().unwrap();
    assert!(
        !shelters.is_empty() && shelters.len() <= 10,
        "{}",
        shelters.len()
    );
    let dists: Vec<f64> = shelters
        .iter()
        .map(|s| s["distance_m"].as_f64().unwrap())
        .collect();
    assert!(
        dists.windows(2).all(|w| w[0] <= w[1]),
        "not nearest first: {dists:?}"
    );
    assert!(v["origin"]["lat"].as_f64().unwrap() > 42.0);

    assert_eq!(
        get_full(&d.url(&format!("/api/shelters?district={id}&hazard=meteor")))
            .unwrap()
            .0,
        400
    );
    assert_eq!(
        get_full(&d.url("/api/shelters?district=nowhere&hazard=flood"))
            .unwrap()
            .0,
        404
    );
    let (code, page) = get_full(&d.url("/shelters")).unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("避難場所マップ") && page.contains("/assets/shelters.js"));
    let (code, script) = get_full(&d.url("/assets/shelters.js")).unwrap();
    assert_eq!(code, 200);
    assert!(script.contains("/api/shelters"));

    // Nobody opened anything: designated sites are listed, none is called open.
    assert!(shelters.iter().all(|s| s["opened"] == false), "{v}");
    // Indoor 指定避難所 for 大雪・暴風雪・暴風: 札幌市 has no 指定避難所 file, so none — never a park instead.
    let stay = shelters_json(&d, &id, "stay");
    assert_eq!(stay["hazard_label"], "屋内の指定避難所");
    assert_eq!(stay["shelters"].as_array().unwrap().len(), 0, "{stay}");
    // Without a district (the link in messages to friends who never registered one): the reader's position
    // when the page sends it, else the city's centre.
    let (code, body) = get_full(&d.url("/api/shelters?hazard=flood")).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"kind\":\"city\"") && body.contains("市の中心"),
        "{body}"
    );
    let (code, body) =
        get_full(&d.url("/api/shelters?hazard=flood&lat=43.0597&lon=141.3468")).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"kind\":\"position\""), "{body}");
}

#[test]
fn the_shelter_page_renders_the_apis_shelters_on_a_leaflet_map_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (d, id) = sapporo_daemon(dir.path());
    let v = shelters_json(&d, &id, "flood");
    let expected: Vec<String> = v["shelters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!expected.is_empty());

    let profile = tempfile::tempdir().unwrap();
    let dom = crate::helpers::chromium_dump_dom(
        &d.url(&format!("/shelters?district={id}&hazard=flood")),
        profile.path(),
    );
    // Every shelter the API lists is in the page's list, in the same order, and Leaflet placed markers.
    let rendered: Vec<&str> = dom
        .split(r#"class="shelter" data-id=""#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(
        rendered,
        expected,
        "page list differs from the API in:\n{}",
        &dom[..dom.len().min(3000)]
    );
    assert!(dom.contains("leaflet-marker-icon"), "no Leaflet markers");
    assert!(dom.contains("付近の避難場所"), "title not filled in");
}
