//! Snow plows end to end: the real `sonae` binary, a real mosquitto broker (started here on a free port and
//! restarted), the embedded rumqttd broker (in a build with the `embedded-broker` feature), real SQLite files,
//! and headless Chromium for the map.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{
    chromium_dump_dom, free_port, reqwest::get_full, write_config, Daemon, InProcess, SONAE,
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
    let (_, body) = get_full(&d.admin_url("/metrics")).ok()?;
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
    let (code, _) = get_full(&d.admin_url("/healthz")).unwrap();
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
    let mq = Mosquitto::start(free_port(), dir.path());
    let broker = mq.port;
    let manifest = env!("CARGO_MANIFEST_DIR");
    let d = plow_daemon(
        dir.path(),
        broker,
        &format!(
            "service_area = [141.33, 43.045, 141.38, 43.075]\n\
             roads_file = \"{manifest}/tests/fixtures/plow/sapporo-odori-excerpt.geojson\"\n"
        ),
    );
    wait_for(Duration::from_secs(15), "MQTT connection", || {
        metric(&d, "sonae_plow_mqtt_connected") == Some(1.0)
    });
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
    let (code, js) = get_full(&d.url("/assets/leaflet/leaflet.js")).unwrap();
    assert_eq!(code, 200, "Leaflet is served from the binary");
    assert!(js.contains("Leaflet 1.9.4"));

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
    let mq = Mosquitto::start(free_port(), dir.path());
    let broker = mq.port;
    let manifest = env!("CARGO_MANIFEST_DIR");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir.path(),
        addr,
        &format!(
            "[plow]\nenabled = true\nbroker_host = \"127.0.0.1\"\nbroker_port = {broker}\nclient_id = \"sonae-it-{broker}\"\n\
             service_area = [141.33, 43.045, 141.38, 43.075]\n\
             roads_file = \"{manifest}/tests/fixtures/plow/sapporo-odori-excerpt.geojson\"\n\
             districts_file = \"{manifest}/deploy/demo/sapporo-wards.geojson\"\n"
        ),
    );
    crate::helpers::migrate(&config);
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

fn line_user(n: u128) -> String {
    format!("U{n:032x}")
}

const NOTICE: &str = "で除雪車の作業が始まりました";

/// Texts a resident received from the stand-in through `endpoint` (`multicast`, `reply`, ...).
fn texts(sandbox: &sonae::line::sandbox::SandboxHandle, user: &str, endpoint: &str) -> Vec<String> {
    sandbox.with_state(|s| {
        s.received(user)
            .into_iter()
            .filter(|r| r.endpoint == endpoint)
            .filter_map(|r| r.message["text"].as_str().map(str::to_string))
            .collect()
    })
}

fn notices(sandbox: &sonae::line::sandbox::SandboxHandle, user: &str) -> usize {
    texts(sandbox, user, "multicast")
        .iter()
        .filter(|t| t.contains(NOTICE))
        .count()
}

async fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..300 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A resident's signed webhook event, sent by the stand-in to the daemon.
async fn resident_says(
    sandbox: &sonae::line::sandbox::SandboxHandle,
    user: &str,
    event: serde_json::Value,
) {
    let r = ::reqwest::Client::new()
        .post(format!("{}/sandbox/users/{user}/events", sandbox.url()))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["webhookStatus"], 200, "{body}");
}

/// A plow driving along 大通 (中央区) with the blade down; each fix 2 s after the previous one on its own
/// clock (never behind the wall clock, so fixes after a storm start count as inside it).
struct Drive {
    port: u16,
    t: chrono::DateTime<chrono::Utc>,
    i: i64,
}

impl Drive {
    fn fixes(&mut self, n: i64) -> chrono::DateTime<chrono::Utc> {
        for _ in 0..n {
            self.t = (self.t + chrono::Duration::seconds(2)).max(now());
            // Back and forth over ~150 m of 大通.
            let m = self.i % 24;
            let k = if m <= 12 { m } else { 24 - m } as f64;
            publish(
                self.port,
                "sonae/plows/N-1/position",
                &format!(
                    r#"{{"vehicle":"N-1","lat":{},"lon":{},"ts":"{}","speed_kmh":20,"blade":"down"}}"#,
                    43.06057 - 0.0000215 * k,
                    141.3553 - 0.00016 * k,
                    self.t.to_rfc3339()
                ),
            );
            self.i += 1;
        }
        self.t
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opted_in_resident_gets_one_plow_notice_per_storm_and_none_after_opting_out() {
    use sonae::ids::LineUserId;
    use sonae::line::sandbox::{Sandbox, SandboxConfig};

    let dir = tempfile::tempdir().unwrap();
    let manifest = env!("CARGO_MANIFEST_DIR");
    let mq = Mosquitto::start(free_port(), dir.path());
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut config = crate::helpers::test_config(&dir.path().join("sonae.db"));
    config.line.api_base = sandbox.url();
    config.line.api_data_base = sandbox.url();
    config.place.enabled = true;
    config.place.districts = format!("{manifest}/deploy/demo/sapporo-districts.geojson").into();
    config.place.shelters =
        vec![format!("{manifest}/deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv").into()];
    let p = &mut config.plow;
    p.enabled = true;
    p.broker_port = mq.port;
    p.client_id = format!("sonae-notice-{}", mq.port);
    p.service_area = [141.33, 43.045, 141.38, 43.075];
    p.roads_file =
        Some(format!("{manifest}/tests/fixtures/plow/sapporo-odori-excerpt.geojson").into());
    // Plow districts are wards; residents register towns (mapped to the ward containing them).
    p.districts_file = Some(format!("{manifest}/deploy/demo/sapporo-wards.geojson").into());
    let place = sonae::place::PlaceData::load(&config.place).unwrap();
    let town_at = |lat: f64, lon: f64| {
        place
            .districts
            .locate(sonae::place::LatLon::new(lat, lon).unwrap())
            .unwrap()
            .clone()
    };
    let odori = town_at(43.0597, 141.3468); // 中央区
    let kita = town_at(43.0770, 141.3400); // 北区 (北海道大学)
    assert_eq!(odori.group.as_deref(), Some("中央区"));
    assert_eq!(kita.group.as_deref(), Some("北区"));

    let app = sonae::app::Application::build(
        config,
        sonae::app::sandbox_secrets(&SandboxConfig::default()),
    )
    .await
    .unwrap();
    let addr = app.local_addr();
    let admin = app.admin_addr();
    let store = app.context().infra.store.clone();

    // A: 中央区 resident (text), B: 北区 resident (text), C: no district, D: postback naming 中央区 (01101).
    let (a, b, c, d) = (
        line_user(0xa1),
        line_user(0xb1),
        line_user(0xc1),
        line_user(0xd1),
    );
    let (a2, b2, c2, d2) = (a.clone(), b.clone(), c.clone(), d.clone());
    let (odori_id, kita_id) = (odori.id.clone(), kita.id.clone());
    let hash = sonae::console::users::hash_password(STAFF_PASSWORD).unwrap();
    store
        .write(move |tx| {
            for u in [&a2, &b2, &c2, &d2] {
                sonae::resident::follow_tx(tx, &LineUserId::new(u.clone()))?;
            }
            sonae::resident::set_district_tx(tx, &LineUserId::new(a2.clone()), &odori_id)?;
            sonae::resident::set_district_tx(tx, &LineUserId::new(b2.clone()), &kita_id)?;
            sonae::console::users::add_user(
                tx,
                &sonae::console::users::UserName::parse("haisha").unwrap(),
                sonae::console::Role::Operator,
                &hash,
                "test",
                chrono::Utc::now(),
            )?;
            Ok(())
        })
        .await
        .unwrap();
    sandbox.with_state(|s| {
        for u in [&a, &b, &c, &d] {
            s.follow(u, None);
        }
    });
    let daemon = InProcess::run(app);
    sandbox.set_webhook_url(&format!("http://{addr}/webhook"));
    // The daemon serves HTTP once its components are up.
    eventually("the daemon to serve", || {
        get_full(&format!("http://{admin}/healthz")).is_ok_and(|(code, _)| code == 200)
    })
    .await;

    // Opt in through signed webhooks; each gets a short reply.
    let text = |t: &str| serde_json::json!({"type": "text", "text": t});
    resident_says(&sandbox, &a, text("除雪通知")).await;
    resident_says(&sandbox, &b, text("除雪通知")).await;
    resident_says(&sandbox, &c, text("除雪通知")).await;
    resident_says(
        &sandbox,
        &d,
        serde_json::json!({"type": "postback", "data": "action=plow-notice&set=on&district=01101"}),
    )
    .await;
    let replied =
        |u: &str, want: &str| texts(&sandbox, u, "reply").iter().any(|t| t.contains(want));
    eventually("the opt-in replies", || {
        replied(&a, "除雪車が中央区に入ったとき")
            && replied(&b, "除雪車が北区に入ったとき")
            && replied(&c, "先にお住まいの地区を登録してください")
            && replied(&d, "除雪車が中央区に入ったとき")
    })
    .await;
    let subs: Vec<(String, String)> = store
        .read(|c| {
            let mut st = c.prepare(
                "SELECT user_id, scope FROM resident_topics WHERE topic = 'plow-notice' ORDER BY user_id",
            )?;
            let v = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .await
        .unwrap();
    assert_eq!(
        subs,
        vec![
            (a.clone(), "01101".to_string()),
            (b.clone(), "01102".to_string()),
            (d.clone(), "01101".to_string()),
        ]
    );

    eventually("the MQTT connection", || {
        metric_at(admin, "sonae_plow_mqtt_connected") == Some(1.0)
    })
    .await;
    let mut drive = Drive {
        port: mq.port,
        t: now() - chrono::Duration::seconds(60),
        i: 0,
    };
    // Before any storm, a plow in 中央区 notifies nobody.
    let last = drive.fixes(3);
    wait_applied(&store, last).await;

    let mut staff = Staff::login(addr, "haisha").await;
    // Storm 1: the plow enters 中央区 → A and D get exactly one notice, however long it stays.
    assert_eq!(
        staff.storm("start", "第1回").await.location.as_deref(),
        Some("/console/plows?msg=storm_started")
    );
    drive.fixes(3);
    eventually("the first notices", || {
        notices(&sandbox, &a) == 1 && notices(&sandbox, &d) == 1
    })
    .await;
    let last = drive.fixes(6);
    wait_applied(&store, last).await;
    assert!(outbox_empty(&store).await);
    assert_eq!((notices(&sandbox, &a), notices(&sandbox, &d)), (1, 1));
    let text_a = texts(&sandbox, &a, "multicast");
    assert!(
        text_a[0].contains("中央区で除雪車の作業が始まりました"),
        "{text_a:?}"
    );

    // Storm 2: one new notice each.
    staff.storm("end", "").await;
    staff.storm("start", "第2回").await;
    drive.fixes(3);
    eventually("the second notices", || {
        notices(&sandbox, &a) == 2 && notices(&sandbox, &d) == 2
    })
    .await;

    // A opts out by text; storm 3 reaches D only.
    resident_says(&sandbox, &a, text("除雪通知停止")).await;
    eventually("the opt-out reply", || {
        replied(&a, "除雪通知を停止しました")
    })
    .await;
    staff.storm("end", "").await;
    staff.storm("start", "第3回").await;
    drive.fixes(3);
    eventually("the third notice for D", || notices(&sandbox, &d) == 3).await;
    let last = drive.fixes(3);
    wait_applied(&store, last).await;
    assert!(outbox_empty(&store).await);
    assert_eq!(notices(&sandbox, &a), 2, "nothing after opting out");
    assert_eq!(notices(&sandbox, &b), 0, "北区 saw no plow");
    assert_eq!(notices(&sandbox, &c), 0);
    let plow_alerts: i64 = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM delivery_alerts a JOIN delivery_batches b ON b.alert_id = a.id
                 WHERE a.source = 'plow' AND b.status = 'accepted'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(plow_alerts, 3, "one outbox alert per storm, all accepted");

    daemon.stop().await;
    drop(mq);
}

fn metric_at(addr: SocketAddr, series: &str) -> Option<f64> {
    let (_, body) = get_full(&format!("http://{addr}/metrics")).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits until the pipeline has stored the fix at `at` (so every earlier one is applied too).
async fn wait_applied(store: &sonae::store::Store, at: chrono::DateTime<chrono::Utc>) {
    let ms = at.timestamp_millis() / 1000 * 1000;
    for _ in 0..300 {
        let seen: i64 = store
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM plow_positions WHERE vehicle = 'N-1' AND ts_ms >= ?1",
                    [ms],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        if seen > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the fix at {at} was never stored");
}

async fn outbox_empty(store: &sonae::store::Store) -> bool {
    store
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM delivery_batches WHERE status IN ('pending', 'in_flight')",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .await
        .unwrap()
        == 0
}

#[cfg(not(feature = "embedded-broker"))]
#[test]
fn a_build_without_the_embedded_broker_refuses_it_in_check_and_points_at_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "127.0.0.1:1".parse().unwrap(),
        "[plow]\nenabled = true\nembedded_broker = true\n",
    );
    for cmd in ["check", "run"] {
        let out = Command::new(SONAE)
            .arg(cmd)
            .arg("-c")
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(
                "plow.embedded_broker: this sonae is built without the embedded MQTT broker"
            ) && err.contains("apt install mosquitto"),
            "{cmd}: {err}"
        );
    }
}

#[cfg(feature = "embedded-broker")]
#[test]
fn the_embedded_broker_readiness_probe_leaves_no_error_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let broker = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir.path(),
        addr,
        &format!(
            "[plow]\nenabled = true\nbroker_host = \"127.0.0.1\"\nbroker_port = {broker}\n\
             embedded_broker = true\nembedded_broker_listen = \"127.0.0.1:{broker}\"\n"
        ),
    );
    let log_path = dir.path().join("stderr.log");
    let child = Command::new(SONAE)
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let d = Daemon {
        child,
        addr,
        admin: crate::helpers::admin_of(&config),
    };
    d.wait_healthy(Duration::from_secs(20));
    // Sonae's own MQTT client connects after the probe has finished.
    wait_for(Duration::from_secs(15), "MQTT connection", || {
        metric(&d, "sonae_plow_mqtt_connected") == Some(1.0)
    });
    drop(d);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("embedded MQTT broker listening"),
        "the broker started: {log}"
    );
    assert!(
        !log.contains("Error while handling MQTT connect packet"),
        "the readiness probe made the broker log an error:\n{log}"
    );
}
