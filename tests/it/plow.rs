//! Snow plows end to end: the real `sonae` binary, a real mosquitto broker (started here on a free port and
//! restarted), the embedded rumqttd broker, real SQLite files, and headless Chromium for the map.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{
    chromium_dump_dom, free_port, reqwest::get_full, write_config, Daemon, SONAE,
};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

fn mosquitto_bin() -> PathBuf {
    if Path::new(MOSQUITTO).exists() {
        MOSQUITTO.into()
    } else {
        "mosquitto".into()
    }
}

/// A mosquitto process on `port` with persistence in `dir`; killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Mosquitto {
    fn start(port: u16, dir: &Path) -> Mosquitto {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n{}",
                dir.display(),
                if is_root { "user root\n" } else { "" }
            ),
        )
        .unwrap();
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto (run scripts/install-test-deps)");
        let m = Mosquitto {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        wait_for(Duration::from_secs(10), "mosquitto listening", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        m
    }

    /// SIGTERM (mosquitto saves its persistent sessions) and wait for exit.
    fn stop(mut self) -> (u16, PathBuf) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        (self.port, self.dir.clone())
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn publish(port: u16, topic: &str, payload: &str) {
    // An explicit client id: rumqttd (the embedded broker) refuses the empty id mosquitto_pub sends by default.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let id = format!(
        "it-pub-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let status = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-i",
            &id,
            "-t",
            topic,
            "-m",
            payload,
        ])
        .status()
        .expect("mosquitto_pub");
    assert!(status.success(), "mosquitto_pub {topic}");
}

fn wait_for(within: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < within {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

fn json(d: &Daemon, path: &str) -> serde_json::Value {
    let (code, body) = get_full(&d.url(path)).unwrap();
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn metric(d: &Daemon, series: &str) -> Option<f64> {
    let (_, body) = get_full(&d.url("/metrics")).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

fn vehicle(d: &Daemon, id: &str) -> Option<serde_json::Value> {
    json(d, "/api/plows/vehicles")["vehicles"]
        .as_array()?
        .iter()
        .find(|v| v["vehicle"] == id)
        .cloned()
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn sonae_json(vehicle: &str, lat: f64, lon: f64, ts: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        r#"{{"vehicle":"{vehicle}","lat":{lat},"lon":{lon},"ts":"{}","speed_kmh":20,"heading":90,"blade":"down"}}"#,
        ts.to_rfc3339()
    )
}

fn plow_daemon(dir: &Path, broker_port: u16, extra: &str) -> Daemon {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir,
        addr,
        &format!(
            "[plow]\nenabled = true\nbroker_host = \"127.0.0.1\"\nbroker_port = {broker_port}\nclient_id = \"sonae-it-{}\"\n{extra}",
            broker_port
        ),
    );
    Daemon::start(&config, addr)
}

#[test]
fn both_payload_formats_are_stored_and_every_rejection_reason_is_counted_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mq = Mosquitto::start(free_port(), dir.path());
    let d = plow_daemon(
        dir.path(),
        mq.port,
        "topics = [\"sonae/plows/+/position\", \"owntracks/+/+\", \"legacy/#\"]\n",
    );
    wait_for(Duration::from_secs(15), "MQTT connection", || {
        metric(&d, "sonae_plow_mqtt_connected") == Some(1.0)
    });

    let t = now() - chrono::Duration::seconds(30);
    let p1 = sonae_json("P1", 38.2554, 140.3396, t);
    publish(mq.port, "sonae/plows/P1/position", &p1);
    publish(mq.port, "sonae/plows/P1/position", &p1); // QoS 1 redelivery / retry: applied once
    publish(
        mq.port,
        "owntracks/yamagata-city/plow-017",
        &format!(
            r#"{{"_type":"location","lat":38.2400,"lon":140.3600,"tst":{},"tid":"17"}}"#,
            t.timestamp()
        ),
    );
    let rejections: Vec<(&str, String, &str)> = vec![
        ("sonae/plows/P9/position", "x".repeat(5000), "too_large"),
        ("sonae/plows/P9/position", "{not json".into(), "malformed"),
        ("legacy/plow/9", "{}".into(), "unknown_topic"),
        (
            "sonae/plows/a b/position",
            sonae_json("a b", 38.25, 140.33, t),
            "bad_vehicle",
        ),
        (
            "sonae/plows/P9/position",
            sonae_json("P8", 38.25, 140.33, t),
            "topic_mismatch",
        ),
        (
            "sonae/plows/P9/position",
            r#"{"vehicle":"P9","lat":38.25,"lon":140.33,"ts":"今朝"}"#.into(),
            "bad_timestamp",
        ),
        (
            "sonae/plows/P9/position",
            format!(
                r#"{{"vehicle":"P9","lat":38.25,"lon":140.33,"ts":"{}","blade":"half"}}"#,
                t.to_rfc3339()
            ),
            "bad_field",
        ),
        (
            "sonae/plows/P9/position",
            sonae_json("P9", 91.0, 140.33, t),
            "bad_coordinates",
        ),
        (
            "sonae/plows/P9/position",
            sonae_json("P9", 35.68, 139.76, t),
            "outside_area",
        ),
        (
            "sonae/plows/P9/position",
            sonae_json("P9", 38.25, 140.33, now() + chrono::Duration::hours(1)),
            "future_timestamp",
        ),
        // 11 km north of P1's position one second later.
        (
            "sonae/plows/P1/position",
            sonae_json("P1", 38.3554, 140.3396, t + chrono::Duration::seconds(1)),
            "implausible_speed",
        ),
    ];
    for (topic, payload, _) in &rejections {
        publish(mq.port, topic, payload);
    }
    publish(
        mq.port,
        "owntracks/yamagata-city/plow-017",
        &format!(r#"{{"_type":"lwt","tst":{}}}"#, now().timestamp()),
    );

    wait_for(Duration::from_secs(15), "every rejection counted", || {
        rejections.iter().all(|(_, _, r)| {
            metric(&d, &format!("sonae_plow_rejected_total{{reason=\"{r}\"}}")) == Some(1.0)
        }) && vehicle(&d, "yamagata-city/plow-017").is_some_and(|v| v["state"] == "offline")
    });
    assert_eq!(metric(&d, "sonae_plow_duplicates_total"), Some(1.0));
    assert_eq!(metric(&d, "sonae_plow_positions_total"), Some(2.0));

    let p1 = vehicle(&d, "P1").expect("P1 stored");
    assert_eq!(p1["lat"], 38.2554, "the implausible jump did not move P1");
    assert_eq!(p1["blade"], "down");
    assert_eq!(p1["state"], "active");
    let ot = vehicle(&d, "yamagata-city/plow-017").unwrap();
    assert_eq!(ot["speed_kmh"], 0.0, "OwnTracks omits vel when zero");
    assert!(ot["heading"].is_null());

    let trails = json(&d, "/api/plows/trails");
    let p1_points = trails["trails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["vehicle"] == "P1")
        .map(|t| t["points"].as_array().unwrap().len());
    assert_eq!(p1_points, Some(1), "the duplicate is one trail point");

    // Operators see the rejections (rate-limited: one problem per reason).
    let db = rusqlite::Connection::open(dir.path().join("sonae.db")).unwrap();
    let problems: i64 = db
        .query_row(
            "SELECT count(*) FROM problems WHERE source = 'plow.ingest'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(problems, rejections.len() as i64);
    let (code, _) = get_full(&d.url("/healthz")).unwrap();
    assert_eq!(code, 200, "garbage never takes the daemon down");
}

#[test]
fn positions_published_after_a_mosquitto_restart_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mq = Mosquitto::start(free_port(), dir.path());
    let d = plow_daemon(dir.path(), mq.port, "");
    wait_for(Duration::from_secs(15), "MQTT connection", || {
        metric(&d, "sonae_plow_mqtt_connected") == Some(1.0)
    });
    let t0 = now() - chrono::Duration::seconds(60);
    publish(
        mq.port,
        "sonae/plows/R1/position",
        &sonae_json("R1", 38.25, 140.33, t0),
    );
    wait_for(Duration::from_secs(10), "first position", || {
        vehicle(&d, "R1").is_some()
    });

    // 1. Broker restarts with its persistent sessions: a position published the moment it is back (before
    //    Sonae has reconnected) is queued in Sonae's session and delivered.
    let (port, mqdir) = mq.stop();
    wait_for(
        Duration::from_secs(15),
        "Sonae to notice the broker is gone",
        || metric(&d, "sonae_plow_mqtt_connected") == Some(0.0),
    );
    let mq = Mosquitto::start(port, &mqdir);
    let t1 = t0 + chrono::Duration::seconds(10);
    publish(
        port,
        "sonae/plows/R1/position",
        &sonae_json("R1", 38.2501, 140.33, t1),
    );
    wait_for(
        Duration::from_secs(20),
        "the position published right after the restart",
        || {
            vehicle(&d, "R1")
                .is_some_and(|v| v["ts"] == t1.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        },
    );

    // 2. Broker restarts with its state wiped: Sonae resubscribes on the new ConnAck, and positions published
    //    once it is connected again arrive.
    let disconnects = metric(&d, "sonae_plow_mqtt_disconnects_total").unwrap_or(0.0);
    let (port, mqdir) = mq.stop();
    std::fs::remove_file(mqdir.join("mosquitto.db")).unwrap();
    wait_for(
        Duration::from_secs(15),
        "Sonae to notice the broker is gone",
        || metric(&d, "sonae_plow_mqtt_disconnects_total").unwrap_or(0.0) > disconnects,
    );
    let _mq = Mosquitto::start(port, &mqdir);
    wait_for(Duration::from_secs(20), "reconnection", || {
        metric(&d, "sonae_plow_mqtt_connected") == Some(1.0)
    });
    let t2 = t1 + chrono::Duration::seconds(10);
    // The subscription is sent right after ConnAck; publish until it has taken (each with a new time).
    let mut t = t2;
    wait_for(
        Duration::from_secs(20),
        "a position after resubscribing",
        || {
            publish(
                port,
                "sonae/plows/R1/position",
                &sonae_json("R1", 38.2502, 140.33, t),
            );
            t += chrono::Duration::seconds(1);
            std::thread::sleep(Duration::from_millis(300));
            vehicle(&d, "R1").is_some_and(|v| v["lat"] == 38.2502)
        },
    );
    let trail = json(&d, "/api/plows/trails");
    let ts: Vec<i64> = trail["trails"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[2].as_f64().unwrap() as i64)
        .collect();
    assert!(
        ts.contains(&t0.timestamp()) && ts.contains(&t1.timestamp()),
        "{ts:?}"
    );
}

#[test]
fn the_resident_map_renders_live_vehicle_markers_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let broker = free_port();
    let manifest = env!("CARGO_MANIFEST_DIR");
    let d = plow_daemon(
        dir.path(),
        broker,
        &format!(
            "embedded_broker = true\nembedded_broker_listen = \"127.0.0.1:{broker}\"\n\
             service_area = [141.33, 43.045, 141.38, 43.075]\n\
             roads_file = \"{manifest}/tests/fixtures/plow/sapporo-odori-excerpt.geojson\"\n\
             leaflet_dir = \"{manifest}/templates/web/node_modules/leaflet/dist\"\n"
        ),
    );
    wait_for(
        Duration::from_secs(15),
        "MQTT connection to the embedded broker",
        || metric(&d, "sonae_plow_mqtt_connected") == Some(1.0),
    );
    let t = now() - chrono::Duration::seconds(5);
    // Two plows on 大通 (Sapporo); the map must show exactly what the API holds.
    publish(
        broker,
        "sonae/plows/T-1/position",
        &sonae_json("T-1", 43.06057, 141.3553, t),
    );
    publish(
        broker,
        "owntracks/sapporo/t2",
        &format!(
            r#"{{"_type":"location","lat":43.0600,"lon":141.3520,"tst":{},"vel":12,"cog":260}}"#,
            t.timestamp()
        ),
    );
    wait_for(Duration::from_secs(10), "both vehicles stored", || {
        vehicle(&d, "T-1").is_some() && vehicle(&d, "sapporo/t2").is_some()
    });
    let (code, js) = get_full(&d.url("/plows/assets/leaflet/leaflet.js")).unwrap();
    assert_eq!(
        code, 200,
        "Leaflet is served from templates/web/node_modules"
    );
    assert!(js.contains("Leaflet"));

    let profile = tempfile::tempdir().unwrap();
    let dom = chromium_dump_dom(&d.url("/plows"), profile.path());
    assert!(
        dom.contains(r#"class="plow-marker active" data-vehicle="T-1""#),
        "no marker for T-1 in:\n{}",
        &dom[..dom.len().min(4000)]
    );
    assert!(dom.contains(r#"data-vehicle="sapporo/t2""#));
    assert!(
        dom.contains("leaflet-marker-icon"),
        "markers are placed by Leaflet"
    );
    assert!(
        dom.contains("GPSの通過記録は、道路の除雪が完了していることを保証するものではありません。")
    );
    assert!(
        dom.contains("車両 2 台"),
        "the status line reflects the live data"
    );
    assert!(
        dom.contains("leaflet-interactive"),
        "roads are drawn as vector overlays"
    );
}

const STAFF_PASSWORD: &str = "yukimichi-2026-fuyu";

/// A console session over real HTTP: cookies kept by hand, redirects not followed.
struct Staff {
    base: String,
    client: ::reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Answer {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let i = self.body.find(marker).expect("page has a CSRF field") + marker.len();
        self.body[i..].split('"').next().unwrap().to_string()
    }
}

impl Staff {
    fn new(addr: SocketAddr) -> Staff {
        Staff {
            base: format!("http://{addr}"),
            client: ::reqwest::Client::builder()
                .redirect(::reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, req: ::reqwest::RequestBuilder) -> Answer {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let res = req
            .header(::reqwest::header::COOKIE, cookie)
            .send()
            .await
            .unwrap();
        for c in res.headers().get_all(::reqwest::header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.into(), v.into());
            }
        }
        Answer {
            status: res.status().as_u16(),
            location: res
                .headers()
                .get(::reqwest::header::LOCATION)
                .map(|v| v.to_str().unwrap().to_string()),
            body: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header(
                ::reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        self.send(req).await
    }

    async fn login(addr: SocketAddr, name: &str) -> Staff {
        let mut s = Staff::new(addr);
        let form = s.get("/console/login").await;
        let csrf = form.csrf();
        let p = s
            .post(
                "/console/login",
                &[
                    ("csrf", &csrf),
                    ("name", name),
                    ("password", STAFF_PASSWORD),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "login: {}", p.body);
        s
    }

    /// Starts (`start`) or ends (`end`) a storm through the console form.
    async fn storm(&mut self, action: &str, note: &str) -> Answer {
        let page = self.get("/console/plows").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = page.csrf();
        self.post(
            "/console/plows/storm",
            &[("csrf", &csrf), ("action", action), ("note", note)],
        )
        .await
    }
}

/// `sonae user add NAME --role operator` against the daemon's config.
fn add_operator(config: &Path, name: &str) {
    use std::io::Write;
    let mut child = Command::new(SONAE)
        .args(["user", "add", name, "--role", "operator", "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{STAFF_PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_starts_a_storm_in_the_console_and_sees_coverage_grow_per_district() {
    let dir = tempfile::tempdir().unwrap();
    let broker = free_port();
    let manifest = env!("CARGO_MANIFEST_DIR");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir.path(),
        addr,
        &format!(
            "[plow]\nenabled = true\nbroker_host = \"127.0.0.1\"\nbroker_port = {broker}\nclient_id = \"sonae-it-{broker}\"\n\
             embedded_broker = true\nembedded_broker_listen = \"127.0.0.1:{broker}\"\n\
             service_area = [141.33, 43.045, 141.38, 43.075]\n\
             roads_file = \"{manifest}/tests/fixtures/plow/sapporo-odori-excerpt.geojson\"\n\
             districts_file = \"{manifest}/deploy/demo/sapporo-wards.geojson\"\n"
        ),
    );
    add_operator(&config, "haisha");
    let d = Daemon::start(&config, addr);
    wait_for(Duration::from_secs(15), "MQTT connection", || {
        metric(&d, "sonae_plow_mqtt_connected") == Some(1.0)
    });
    // Staff data needs a console session; the old open endpoints are gone.
    let mut anon = Staff::new(addr);
    assert_eq!(anon.get("/api/plows/dispatch").await.status, 401);
    let old = anon.post("/api/plows/storm", &[("action", "start")]).await;
    assert!(old.status == 404 || old.status == 405, "{}", old.status);
    assert_eq!(
        anon.post("/console/plows/storm", &[("action", "start")])
            .await
            .status,
        401
    );

    let mut staff = Staff::login(addr, "haisha").await;
    let dispatch = |body: &str| -> serde_json::Value { serde_json::from_str(body).unwrap() };
    let before = dispatch(&staff.get("/api/plows/dispatch").await.body);
    assert!(before["storm"].is_null());
    let chuo = |v: &serde_json::Value| {
        v["coverage"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "中央区")
            .cloned()
            .unwrap()
    };
    assert!(chuo(&before)["road_km"].as_f64().unwrap() > 10.0);

    let p = staff.storm("start", "大雪").await;
    assert_eq!(
        p.location.as_deref(),
        Some("/console/plows?msg=storm_started"),
        "{}",
        p.body
    );
    let p = staff.storm("start", "").await;
    assert_eq!(
        p.location.as_deref(),
        Some("/console/plows?msg=unchanged"),
        "a second start while a storm is open changes nothing"
    );

    // Drive west along 大通 with the blade down, one fix per ~13 m.
    let base = now();
    for i in 0..12 {
        let lon = 141.3553 - 0.00016 * i as f64;
        let lat = 43.06057 - 0.0000215 * i as f64;
        publish(
            broker,
            "sonae/plows/D-1/position",
            &format!(
                r#"{{"vehicle":"D-1","lat":{lat},"lon":{lon},"ts":"{}","heading":259,"blade":"down"}}"#,
                (base + chrono::Duration::seconds(2 * i)).to_rfc3339()
            ),
        );
    }
    let mut after = serde_json::Value::Null;
    for _ in 0..100 {
        after = dispatch(&staff.get("/api/plows/dispatch").await.body);
        if chuo(&after)["plowed_km"].as_f64().unwrap() > 0.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        chuo(&after)["plowed_km"].as_f64().unwrap() > 0.1,
        "coverage in 中央区: {after}"
    );
    assert_eq!(after["storm"]["note"], "大雪");
    assert_eq!(after["vehicles"][0]["vehicle"], "D-1");
    assert_eq!(after["stale_count"], 0);
    let page = staff.get("/console/plows").await;
    assert!(page
        .body
        .contains(r#"data-vehicle="D-1" data-state="active""#));
    assert!(page.body.contains("（大雪）"));
    let roads = json(&d, "/api/plows/roads");
    assert!(roads["features"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["properties"]["road"] == "11971-0" && f["properties"]["band"] == "lt1h"));

    let db = rusqlite::Connection::open(dir.path().join("sonae.db")).unwrap();
    let actors: Vec<(String, String)> = db
        .prepare("SELECT actor, action FROM audit_log WHERE action LIKE 'plow.storm.%' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(actors, vec![("haisha".into(), "plow.storm.start".into())]);
}
