//! Issue 12 item 11, "reach everyone who can be reached, with the right shelter", on real data where the
//! finding is about real places.
//!
//! * The hazard → shelter-type rule per hazard on 山形市's real GSI files (指定緊急避難場所 CSV and 指定避難所
//!   GeoJSON, `../shared/geo/shelters`).
//! * The 宗谷 findings (猿払村 residents sent to 稚内市 shelters 33–36 km away; every district's links centred on
//!   the first district; the snow emergency without 除雪車マップ) with JMA's official 宗谷地方 大雪 sample telegram
//!   (`../shared/jma/samples/official/15_16_06_241226_VPWW60.xml`; the test raises 猿払村's 大雪警報 to
//!   大雪特別警報, code 36). `../shared/geo` holds no 宗谷 districts or shelters, so the districts are small
//!   hand-made squares and the shelters hand-made GSI rows at hand-made coordinates; every district's centre is
//!   checked to lie in its municipality's real outline (国土数値情報 N03, `N03-21_01_210101.json`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use geo::Contains;
use sonae::disaster::compose::Templates;
use sonae::disaster::engine::Phenomenon;
use sonae::disaster::runtime::{districts_of, Runtime};
use sonae::ids::LineUserId;
use sonae::place::status::ShelterStatus;
use sonae::place::{Hazard, LatLon, Limits, Need, PlaceConfig, PlaceData, ShelterKind, Shelters};
use sonae::store::Store;

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")).join(rel)
}

// ------------------------------------------------------------------ hazard → shelter type (山形市, real data)

#[test]
fn each_hazard_gets_its_kind_of_shelter_and_weather_only_indoor_designated_shelters_in_yamagata() {
    let (y, reports) = Shelters::load_files(&[
        shared("geo/shelters/yamagata-06201-shitei-kinkyu-hinanbasho.csv"),
        shared("geo/shelters/jp-shelter-api-evacuation-062014.geojson"),
    ])
    .unwrap();
    assert!(reports.iter().all(|r| r.1.is_clean()));
    // Central 山形市 (the shared README's reference point).
    let from = LatLon::new(38.2554, 140.3396).unwrap();
    let within = Limits {
        max_m: Some(10_000.0),
        municipalities: Some(vec!["06201".into()]),
    };
    let unknown = |_: &str| ShelterStatus::Unknown;
    // The rule, written down once (`Phenomenon::shelter_need`) and checked here for every phenomenon.
    let rule = [
        (Phenomenon::HeavyRain, Need::Flee(Hazard::Flood)),
        (Phenomenon::Flood, Need::Flee(Hazard::Flood)),
        (Phenomenon::Landslide, Need::Flee(Hazard::Landslide)),
        (Phenomenon::StormSurge, Need::Flee(Hazard::StormSurge)),
        (Phenomenon::Waves, Need::Flee(Hazard::StormSurge)),
        (Phenomenon::Tsunami, Need::Flee(Hazard::Tsunami)),
        (Phenomenon::Earthquake, Need::Flee(Hazard::Earthquake)),
        (Phenomenon::Volcano, Need::Flee(Hazard::Volcano)),
        (Phenomenon::HeavySnow, Need::Stay),
        (Phenomenon::Snowstorm, Need::Stay),
        (Phenomenon::Storm, Need::Stay),
        (Phenomenon::Other, Need::Stay),
    ];
    assert_eq!(
        rule.len(),
        Phenomenon::ALL.len(),
        "every phenomenon has a row"
    );
    for (p, need) in rule {
        assert_eq!(p.shelter_need(), need, "{p:?}");
        let got = y.suggest(from, need, 3, &within, unknown);
        match need {
            Need::Stay => {
                assert_eq!(got.len(), 3, "{p:?}");
                for s in &got {
                    let s = s.shelter;
                    assert_eq!(s.kind, ShelterKind::Evacuation, "{p:?}: {}", s.name);
                    assert!(
                        !s.welfare,
                        "{p:?}: a 福祉避難所 is not for everyone: {}",
                        s.name
                    );
                    assert!(
                        !s.name.contains("公園") && !s.name.contains("グラウンド"),
                        "{}",
                        s.name
                    );
                }
            }
            Need::Flee(h) => {
                for s in &got {
                    assert_eq!(s.shelter.kind, ShelterKind::Emergency);
                    assert!(s.shelter.hazards.contains(h), "{p:?}: {}", s.shelter.name);
                }
                // 山形市 designates no site for 高潮 or 津波 (inland): none is offered rather than a wrong one.
                let designated = y.all().iter().any(|s| s.hazards.contains(h));
                assert_eq!(!got.is_empty(), designated, "{p:?}");
            }
        }
    }
    // What the bug did: the 地震 list for a blizzard starts with a school ground (outdoors).
    let quake = y.suggest(from, Need::Flee(Hazard::Earthquake), 1, &within, unknown);
    assert_eq!(quake[0].shelter.name, "第四小学校（グラウンド）");
}

// ------------------------------------------------------------------ 宗谷 (hand-made places, real telegram)

/// (id, name, JMA code, centre lat, centre lon). Squares of ±0.004° longitude and ±0.003° latitude.
const DISTRICTS: &[(&str, &str, &str, f64, f64)] = &[
    ("wakkanai-chuo", "稚内中央地区", "0121400", 45.418, 141.676),
    ("wakkanai-port", "稚内港地区", "0121400", 45.400, 141.690),
    ("wakkanai-koetoi", "声問地区", "0121400", 45.395, 141.800),
    (
        "sarufutsu-onishibetsu",
        "鬼志別地区",
        "0151100",
        45.330,
        142.170,
    ),
    (
        "sarufutsu-chiraibetsu",
        "知来別地区",
        "0151100",
        45.355,
        142.105,
    ),
    (
        "sarufutsu-asajino",
        "浅茅野地区",
        "0151100",
        45.200,
        142.300,
    ),
];

/// GSI 指定緊急避難場所 rows (hand-made): a park and a school ground near 稚内中央, a park in 猿払村.
const EMERGENCY_CSV: &str = "NO,共通ID,都道府県名及び市町村名,施設・場所名,住所,洪水,崖崩れ、土石流及び地滑り,高潮,地震,津波,大規模な火事,内水氾濫,火山現象,指定避難所との住所同一,緯度,経度,備考\r\n\
1,E0121400001201,北海道稚内市,稚内公園,北海道稚内市中央,,,,1,,,,,,45.4150,141.6700,\r\n\
2,E0121400002201,北海道稚内市,稚内中央小学校（グラウンド）,北海道稚内市中央,,,,1,1,,,,1,45.4185,141.6770,\r\n\
3,E0151100001201,北海道宗谷郡猿払村,鬼志別公園,北海道宗谷郡猿払村鬼志別,,,,1,,,,,,45.3310,142.1690,\r\n";

/// (id, name, lat, lon, welfare) of hand-made 指定避難所 (indoor).
const INDOOR: &[(&str, &str, f64, f64, bool)] = &[
    (
        "E0121400002111",
        "稚内中央小学校（体育館）",
        45.4187,
        141.6772,
        false,
    ),
    (
        "E0121400003111",
        "稚内市総合体育館",
        45.4020,
        141.6880,
        false,
    ),
    (
        "E0121400004111",
        "声問小学校（体育館）",
        45.3960,
        141.7950,
        false,
    ),
    (
        "E0121400005111",
        "稚内市福祉センター",
        45.4175,
        141.6765,
        true,
    ),
    (
        "E0151100002111",
        "猿払村農業者トレーニングセンター",
        45.3290,
        142.1680,
        false,
    ),
];

fn soya_files(dir: &Path) -> PlaceConfig {
    let features: Vec<serde_json::Value> = DISTRICTS
        .iter()
        .map(|(id, name, code, lat, lon)| {
            let (w, e, s, n) = (lon - 0.004, lon + 0.004, lat - 0.003, lat + 0.003);
            serde_json::json!({"type": "Feature",
                "properties": {"id": id, "name": name, "jma_code": code},
                "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}})
        })
        .collect();
    let districts = dir.join("soya-districts.geojson");
    std::fs::write(
        &districts,
        serde_json::json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
    .unwrap();
    let emergency = dir.join("soya-emergency.csv");
    std::fs::write(&emergency, EMERGENCY_CSV).unwrap();
    let indoor: Vec<serde_json::Value> = INDOOR
        .iter()
        .map(|(id, name, lat, lon, welfare)| {
            serde_json::json!({"type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"共通ID": id, "施設・場所名": name, "住所": "北海道",
                    "指定緊急避難場所との住所同一": "", "受入対象者": if *welfare { "要配慮者" } else { "" }}})
        })
        .collect();
    let evacuation = dir.join("soya-evacuation.geojson");
    std::fs::write(
        &evacuation,
        serde_json::json!({"type": "FeatureCollection", "features": indoor}).to_string(),
    )
    .unwrap();
    PlaceConfig {
        city_name: "宗谷".into(),
        districts,
        shelters: vec![emergency, evacuation],
        ..Default::default()
    }
}

#[test]
fn the_hand_made_soya_districts_lie_in_their_real_municipalities() {
    let text = std::fs::read_to_string(shared("geo/districts/N03-21_01_210101.json")).unwrap();
    let fc: geojson::FeatureCollection = text.parse().unwrap();
    let outline = |code: &str| -> geo::Geometry<f64> {
        let f = fc
            .features
            .iter()
            .find(|f| f.property("N03_007").and_then(|v| v.as_str()) == Some(code))
            .unwrap();
        f.geometry.clone().unwrap().try_into().unwrap()
    };
    let (wakkanai, sarufutsu) = (outline("01214"), outline("01511"));
    for (id, _, code, lat, lon) in DISTRICTS {
        let p = geo::Point::new(*lon, *lat);
        let (own, other) = if *code == "0121400" {
            (&wakkanai, &sarufutsu)
        } else {
            (&sarufutsu, &wakkanai)
        };
        assert!(own.contains(&p) && !other.contains(&p), "{id}");
    }
    for (id, _, lat, lon, _) in INDOOR {
        let p = geo::Point::new(*lon, *lat);
        let own = if id.starts_with("E01214") {
            &wakkanai
        } else {
            &sarufutsu
        };
        assert!(own.contains(&p), "{id}");
    }
}

fn soya_runtime(place: Arc<PlaceData>, extra: &str) -> Runtime {
    // 稚内市 alerts everyone for its 大雪警報 (code 06); 猿払村's 大雪特別警報 switches the mode by default.
    let config = sonae::config::Config::parse(&format!(
        "[disaster]\n{extra}\n[disaster.municipalities.\"0121400\"]\nalert_all = [\"weather:06\"]\n"
    ))
    .unwrap();
    Runtime {
        config: config.disaster,
        public_url: "https://bousai.example.lg.jp".into(),
        links: config.place.links,
        districts: districts_of(&place),
        place,
        templates: Templates::embedded().unwrap(),
    }
}

/// JMA's official 宗谷地方 大雪 sample with 猿払村 raised from 大雪警報 to 大雪特別警報 (code 36).
fn soya_snow_telegram() -> Vec<u8> {
    let text =
        std::fs::read_to_string(shared("jma/samples/official/15_16_06_241226_VPWW60.xml")).unwrap();
    let block = text
        .find("<Warning type=\"気象警報・注意報（市町村等）\">")
        .expect("the 市町村等 block");
    let area = block + text[block..].find("<Name>猿払村</Name>").unwrap();
    let item = text[..area].rfind("<Item>").unwrap();
    let kind = "<Name>大雪警報</Name>\n<Code>06</Code>";
    let at = item + text[item..area].find(kind).expect("猿払村's first kind");
    let raised = format!(
        "{}<Name>大雪特別警報</Name>\n<Code>36</Code>{}",
        &text[..at],
        &text[at + kind.len()..]
    );
    raised.into_bytes()
}

async fn apply(store: &Store, telegram: &[u8]) {
    let parse = sonae::jma::daemon_parser().unwrap();
    let table = sonae::jma::daemon_code_table();
    let mut states = store.read(sonae::jma::pipeline::load_states).await.unwrap();
    states.apply(&parse(telegram).unwrap(), table.as_ref());
    store
        .write(move |tx| {
            for (code, muni) in &states.real.munis {
                tx.execute(
                    "INSERT OR REPLACE INTO jma_state (scope, municipality, json) VALUES ('real', ?1, ?2)",
                    rusqlite::params![code, serde_json::to_string(muni)?],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

fn user(n: u128) -> String {
    format!("U{n:032x}")
}

/// The telegram's time plus five minutes.
fn soon() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2020-06-22T23:05:00+09:00")
        .unwrap()
        .with_timezone(&Utc)
}

/// Residents 1..=6 registered one per district (in `DISTRICTS` order), 100 and 101 never registered.
async fn soya_residents(store: &Store) {
    store
        .write(|tx| {
            for (i, (id, ..)) in DISTRICTS.iter().enumerate() {
                let u = LineUserId::new(user(i as u128 + 1));
                sonae::resident::follow_tx(tx, &u)?;
                sonae::resident::set_district_tx(tx, &u, id)?;
            }
            for n in [100, 101] {
                sonae::resident::follow_tx(tx, &LineUserId::new(user(n)))?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// Every (alert summary, recipient, message text) planned.
async fn planned(store: &Store) -> Vec<(String, String, String)> {
    store
        .read(|c| {
            let mut st = c.prepare(
                "SELECT a.summary, b.recipients, m.body FROM delivery_batches b
                 JOIN delivery_alerts a ON a.id = b.alert_id JOIN delivery_messages m ON m.id = b.message_id",
            )?;
            let mut out = Vec::new();
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })?;
            for row in rows {
                let (summary, recipients, body) = row?;
                for u in recipients.lines() {
                    out.push((summary.clone(), u.to_string(), body.clone()));
                }
            }
            Ok(out)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_soya_snow_emergency_names_indoor_shelters_of_each_districts_own_municipality_nearby_links_each_district_reaches_unregistered_friends_and_asks_for_the_snow_menu(
) {
    let dir = tempfile::tempdir().unwrap();
    let place = Arc::new(PlaceData::load(&soya_files(dir.path())).unwrap());
    assert!(place.problems.is_empty(), "{:?}", place.problems);
    let rt = Arc::new(soya_runtime(place.clone(), ""));
    let store = Store::open(&dir.path().join("sonae.db")).unwrap();
    soya_residents(&store).await;
    apply(&store, &soya_snow_telegram()).await;
    let rt2 = rt.clone();
    let report = store
        .write(move |tx| rt2.cycle_tx(tx, soon()))
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.mode, Some(sonae::mode::Mode::Disaster));
    assert_eq!(report.menu_variant, Some("snow"), "snow is the emergency");

    let rows = planned(&store).await;
    let wakkanai_names: Vec<&str> = INDOOR
        .iter()
        .filter(|s| s.0.starts_with("E01214"))
        .map(|s| s.1)
        .chain(["稚内公園", "稚内中央小学校（グラウンド）"])
        .collect();
    let sarufutsu_names = ["猿払村農業者トレーニングセンター", "鬼志別公園"];
    let mut seen_links: HashMap<&str, String> = HashMap::new();
    for (i, (id, name, code, ..)) in DISTRICTS.iter().enumerate() {
        let mine: Vec<&(String, String, String)> =
            rows.iter().filter(|r| r.1 == user(i as u128 + 1)).collect();
        assert_eq!(
            mine.len(),
            1,
            "{id}: one alert for its municipality: {mine:?}"
        );
        let (summary, _, body) = mine[0];
        let text: String = texts(&serde_json::from_str(body).unwrap()).join("\n");
        assert!(text.contains(name), "{id}: {text}");
        if *code == "0121400" {
            assert!(
                summary.contains("大雪警報") && summary.contains("稚内市"),
                "{summary}"
            );
            assert!(
                !sarufutsu_names.iter().any(|n| text.contains(n)),
                "{id}: {text}"
            );
        } else {
            assert!(
                summary.contains("大雪特別警報") && summary.contains("猿払村"),
                "{summary}"
            );
            assert!(
                !wakkanai_names.iter().any(|n| text.contains(n)),
                "{id}: 稚内市 site: {text}"
            );
        }
        // Weather: indoor 指定避難所 only — never a park, a ground or the 福祉避難所 next door.
        for outdoor in ["公園", "グラウンド", "福祉センター"] {
            assert!(!text.contains(outdoor), "{id}: {outdoor} in {text}");
        }
        // Nobody opened anything: no 「開設中」, and the line to check the city's announcements.
        assert!(!text.contains("開設中"), "{id}: {text}");
        // The hazard-map link is centred on this district's own point.
        let at = place.districts.get(id).unwrap().label_point;
        let own = format!("ll={:.6},{:.6}", at.lat, at.lon);
        assert!(body.contains(&own), "{id}: {own} not in {body}");
        seen_links.insert(id, own);
    }
    // Different districts, different centres (the bug: every district of 稚内市 pointed at the first one).
    let distinct: std::collections::HashSet<&String> = seen_links.values().collect();
    assert_eq!(distinct.len(), DISTRICTS.len());
    // The districts' shelters, as the residents read them.
    let body_of = |n: u128| {
        let b = &rows.iter().find(|r| r.1 == user(n)).unwrap().2;
        texts(&serde_json::from_str(b).unwrap()).join("\n")
    };
    let chuo = body_of(1);
    assert!(
        chuo.contains("稚内中央小学校（体育館）") && chuo.contains("稚内市総合体育館"),
        "{chuo}"
    );
    assert!(
        chuo.contains("開設状況は市の発表をご確認ください"),
        "{chuo}"
    );
    // 鬼志別: its own village's centre, 200 m away; 知来別: the same one, 5.7 km; no 稚内市 site 33–40 km away.
    assert!(body_of(4).contains("猿払村農業者トレーニングセンター"));
    assert!(body_of(5).contains("猿払村農業者トレーニングセンター"));
    // 浅茅野: the village's only indoor shelter is 17.7 km away — the message says none is within 10 km.
    let asajino = body_of(6);
    assert!(
        asajino.contains("10km以内に、この災害に適した避難所が見つかりません"),
        "{asajino}"
    );

    // Friends who never registered: the municipality-level copy of each alert that goes to everyone, once.
    for n in [100, 101] {
        let got: Vec<&(String, String, String)> = rows.iter().filter(|r| r.1 == user(n)).collect();
        assert_eq!(got.len(), 2, "稚内市's and 猿払村's alerts: {got:?}");
        let muni: Vec<String> = got
            .iter()
            .map(|r| texts(&serde_json::from_str(&r.2).unwrap()).join("\n"))
            .collect();
        assert!(muni.iter().any(|t| t.contains("稚内市 全域")), "{muni:?}");
        assert!(muni.iter().any(|t| t.contains("猿払村 全域")), "{muni:?}");
        assert!(got.iter().all(|r| r.2.contains("action=register")));
    }
    // Every (alert, recipient) once.
    let mut pairs: Vec<(&String, &String)> = rows.iter().map(|r| (&r.0, &r.1)).collect();
    let all = pairs.len();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), all, "someone is listed twice in one alert");
}

#[tokio::test]
async fn with_special_only_unregistered_friends_get_the_special_warning_but_not_the_warning() {
    let dir = tempfile::tempdir().unwrap();
    let place = Arc::new(PlaceData::load(&soya_files(dir.path())).unwrap());
    let rt = Arc::new(soya_runtime(place, "unregistered = \"special_only\""));
    let store = Store::open(&dir.path().join("sonae.db")).unwrap();
    soya_residents(&store).await;
    apply(&store, &soya_snow_telegram()).await;
    let rt2 = rt.clone();
    store
        .write(move |tx| rt2.cycle_tx(tx, soon()))
        .await
        .unwrap();
    let rows = planned(&store).await;
    let got: Vec<&String> = rows
        .iter()
        .filter(|r| r.1 == user(100))
        .map(|r| &r.0)
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("大雪特別警報"), "{got:?}");
    // And with "none", nothing.
    let dir = tempfile::tempdir().unwrap();
    let place = Arc::new(PlaceData::load(&soya_files(dir.path())).unwrap());
    let rt = Arc::new(soya_runtime(place, "unregistered = \"none\""));
    let store = Store::open(&dir.path().join("sonae.db")).unwrap();
    soya_residents(&store).await;
    apply(&store, &soya_snow_telegram()).await;
    let rt2 = rt.clone();
    store
        .write(move |tx| rt2.cycle_tx(tx, soon()))
        .await
        .unwrap();
    assert!(!planned(&store).await.iter().any(|r| r.1 == user(100)));
}

#[test]
fn the_distance_and_municipality_limits_each_keep_sarufutsu_residents_from_wakkanai_shelters() {
    let dir = tempfile::tempdir().unwrap();
    let place = Arc::new(PlaceData::load(&soya_files(dir.path())).unwrap());
    let chiraibetsu = sonae::disaster::engine::DistrictRef {
        id: "sarufutsu-chiraibetsu".into(),
        name: "知来別地区".into(),
        municipality: "0151100".into(),
    };
    let names = |extra: &str| -> Vec<(String, f64)> {
        let rt = soya_runtime(place.clone(), extra);
        rt.shelters_for(&chiraibetsu, Need::Stay, &|_| ShelterStatus::Unknown)
            .into_iter()
            .map(|s| (s.name, s.distance_m))
            .collect()
    };
    // Without either limit: the bug, 稚内市's sites 25–34 km away fill the list.
    let unlimited = names("shelter_max_km = 100\nshelter_same_municipality = false");
    assert_eq!(unlimited.len(), 3, "{unlimited:?}");
    assert!(
        unlimited[1..]
            .iter()
            .all(|(n, d)| n.contains("稚内") || n.contains("声問") && *d > 20_000.0),
        "{unlimited:?}"
    );
    // The municipality limit alone, and the distance limit alone, each keep only the village's own site.
    for extra in [
        "shelter_max_km = 100\nshelter_same_municipality = true",
        "shelter_max_km = 10\nshelter_same_municipality = false",
        "",
    ] {
        let got = names(extra);
        assert_eq!(got.len(), 1, "{extra}: {got:?}");
        assert_eq!(got[0].0, "猿払村農業者トレーニングセンター");
        assert!((got[0].1 - 5_700.0).abs() < 200.0, "{}", got[0].1);
    }
}

#[test]
fn shelters_the_city_opened_come_first_and_closed_or_full_ones_never() {
    let dir = tempfile::tempdir().unwrap();
    let place = Arc::new(PlaceData::load(&soya_files(dir.path())).unwrap());
    let rt = soya_runtime(place, "");
    let chuo = sonae::disaster::engine::DistrictRef {
        id: "wakkanai-chuo".into(),
        name: "稚内中央地区".into(),
        municipality: "0121400".into(),
    };
    let list = |status: &dyn Fn(&str) -> ShelterStatus| -> Vec<(String, bool)> {
        rt.shelters_for(&chuo, Need::Stay, &status)
            .into_iter()
            .map(|s| (s.name, s.opened))
            .collect()
    };
    let none = list(&|_| ShelterStatus::Unknown);
    assert!(
        none.iter().all(|(_, o)| !o),
        "unknown is not open: {none:?}"
    );
    assert_eq!(none[0].0, "稚内中央小学校（体育館）");
    // The city opens 声問小学校 (9.6 km) and closes the nearest: the opened one leads, the closed one is gone.
    let got = list(&|id: &str| match id {
        "E0121400004111" => ShelterStatus::Open,
        "E0121400002111" => ShelterStatus::Closed,
        _ => ShelterStatus::Unknown,
    });
    assert_eq!(
        got,
        vec![
            ("声問小学校（体育館）".to_string(), true),
            ("稚内市総合体育館".to_string(), false)
        ]
    );
}

// ------------------------------------------------------------------ the snow emergency menu, end to end

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snow_emergency_shows_the_emergency_menu_that_keeps_the_plow_map() {
    use sonae::line::richmenu::{self, MenuSet, Mode};
    use sonae::line::sandbox::{Sandbox, SandboxConfig};

    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut config = crate::helpers::test_config(&dir.path().join("sonae.db"));
    config.line.api_base = sandbox.url();
    config.line.api_data_base = sandbox.url();
    config.place = soya_files(dir.path());
    config.place.enabled = true;
    let app = sonae::app::Application::build(
        config,
        sonae::app::sandbox_secrets(&SandboxConfig::default()),
    )
    .await
    .unwrap();
    let addr = app.local_addr();
    let ctx = app.context().clone();
    let menus = richmenu::embedded_templates(&format!("http://{addr}")).unwrap();
    richmenu::sync(&ctx.line.client, &ctx.infra.store, &menus)
        .await
        .unwrap();
    let snow = MenuSet {
        mode: Mode::Disaster,
        variant: "snow".into(),
    };
    let (set, snow_menu) = richmenu::entry_of(&ctx.infra.store, &snow)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(set, snow, "the snow variant is synced");
    let plain = richmenu::entry_menu(&ctx.infra.store, Mode::Disaster)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(plain, snow_menu);
    let friend = user(0xa);
    sandbox.with_state(|s| s.follow(&friend, None));
    let daemon = crate::helpers::InProcess::run(app);

    // The sample is dated 2020-06-22 23:00 JST, older than `disaster.max_report_age_secs`: move it to now.
    let now = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap());
    let stamp = now.format("%Y-%m-%dT%H:%M:00+09:00").to_string();
    let telegram = String::from_utf8(soya_snow_telegram())
        .unwrap()
        .replace("2020-06-22T23:00:00+09:00", &stamp);
    apply(&ctx.infra.store, telegram.as_bytes()).await;

    let mut shown = Vec::new();
    for _ in 0..600 {
        shown = sandbox.with_state(|s| s.shown_areas(&friend));
        if sandbox.with_state(|s| s.shown(&friend))
            == sonae::line::sandbox::state::Shown::Default(snow_menu.clone())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let labels: Vec<String> = shown
        .iter()
        .filter_map(|a| a["action"]["label"].as_str().map(str::to_string))
        .collect();
    assert!(
        labels.contains(&"除雪車マップ".to_string())
            && labels.contains(&"避難所マップ".to_string()),
        "the snow emergency menu keeps the plow map: {labels:?}"
    );
    let state = richmenu::current_menu_set(&ctx.infra.store).await.unwrap();
    assert_eq!(state, snow);
    daemon.stop().await;
}

fn texts(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    fn go(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("type").and_then(|t| t.as_str()) == Some("text") {
                    if let Some(t) = m.get("text").and_then(|t| t.as_str()) {
                        out.push(t.to_string());
                    }
                }
                m.values().for_each(|x| go(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| go(x, out)),
            _ => {}
        }
    }
    go(v, &mut out);
    out
}
