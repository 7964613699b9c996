//! Plow ingest throughput through a real mosquitto, against raw `mosquitto_sub` on the same messages.
//!
//! Run: `cargo bench --bench plow_ingest` (env `PLOW_BENCH_N`, default 200 000 positions).
//!
//! Method (backlog drain, so the publisher's speed does not cap either side):
//! 1. start mosquitto on a free port (`max_queued_messages 0`, `max_inflight_messages 1000`, no persistence);
//! 2. register two persistent sessions (clean session off) subscribed with QoS 1 to `sonae/plows/+/position`:
//!    Sonae's ingest (started, connected, stopped) and `mosquitto_sub -c` (subscribe and exit);
//! 3. publish N Sonae-JSON positions of 200 vehicles driving the real 札幌市 central road network
//!    (blade down, 1 s apart) with QoS 1 while neither subscriber is connected — mosquitto queues N for each;
//! 4. drain raw: start `mosquitto_sub -c -C N` and time until it has printed N messages;
//! 5. drain Sonae: start the full ingest (rumqttc → parse → validate → coverage with a storm open → SQLite
//!    batch writes with `synchronous=FULL`) and time until `sonae_plow_positions_total` reaches N.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sonae::health::Health;
use sonae::metrics::Metrics;
use sonae::plow::coverage::RoadNetwork;
use sonae::plow::replay::{Graph, Walker};
use sonae::plow::{Plow, PlowConfig};
use sonae::store::Store;
use tokio_util::sync::CancellationToken;

const ROADS: &str = include_str!("../deploy/demo/sapporo-central-authorized-roads.geojson");
const VEHICLES: usize = 200;
const TOPIC: &str = "sonae/plows/+/position";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("PLOW_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 1000\n{}",
            if is_root() { "user root\n" } else { "" }
        ),
    )?;
    let mut mosquitto = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(10),
            "mosquitto did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let result = run(n, port, dir.path());
    let _ = mosquitto.kill();
    let _ = mosquitto.wait();
    result
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run(n: usize, port: u16, dir: &std::path::Path) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let net = Arc::new(RoadNetwork::from_geojson(ROADS, None)?);
    let config = PlowConfig {
        enabled: true,
        broker_port: port,
        client_id: "sonae-bench".into(),
        topics: vec![TOPIC.into()],
        service_area: [141.33, 43.045, 141.38, 43.075],
        ..PlowConfig::default()
    };
    let store = Store::open(&dir.join("bench.db"))?;

    // 2a. Sonae's persistent session.
    let plow = Arc::new(Plow::new(config.clone(), Some(net.clone())));
    rt.block_on(async {
        plow.change_storm(&store, true, "bench", "").await?;
        let (m, h, stop) = (
            Arc::new(Metrics::new()),
            Arc::new(Health::new()),
            CancellationToken::new(),
        );
        let task = tokio::spawn(sonae::plow::ingest::run(
            plow.clone(),
            store.clone(),
            m.clone(),
            h,
            None,
            stop.clone(),
        ));
        while m.get("sonae_plow_mqtt_connected", &[]) != Some(1.0) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await; // SUBACK
        stop.cancel();
        let _ = task.await;
        anyhow::Ok(())
    })?;
    // 2b. The raw subscriber's persistent session.
    let st = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-c",
            "-i",
            "raw-bench",
            "-q",
            "1",
            "-t",
            TOPIC,
            "-E",
        ])
        .status()?;
    anyhow::ensure!(st.success(), "mosquitto_sub -E failed");

    // 3. Publish N positions while nobody is connected.
    let graph = Graph::new(&net);
    let mut walkers: Vec<Walker> = (0..VEHICLES)
        .filter_map(|i| {
            Walker::new(
                format!("bench-{i:03}"),
                &net,
                (i * 7919) % net.segments.len(),
                0xabcdef + i as u64,
            )
        })
        .collect();
    let per_vehicle = n.div_ceil(VEHICLES);
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(per_vehicle as i64 + 60);
    let mut msgs = Vec::with_capacity(n);
    'outer: for step in 0..per_vehicle {
        let ts = (t0 + chrono::Duration::seconds(step as i64))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for w in &mut walkers {
            if msgs.len() == n {
                break 'outer;
            }
            let (lat, lon, heading) = w.advance(&graph, 7.0);
            msgs.push((
                format!("sonae/plows/{}/position", w.vehicle),
                format!(
                    r#"{{"vehicle":"{}","lat":{lat:.7},"lon":{lon:.7},"ts":"{ts}","speed_kmh":25,"heading":{heading:.1},"blade":"down"}}"#,
                    w.vehicle
                ),
            ));
        }
    }
    let bytes: usize = msgs.iter().map(|(_, p)| p.len()).sum();
    let publish_secs = rt.block_on(publish_all(port, msgs))?;
    println!(
        "plow_ingest: published {n} positions ({} bytes avg) in {publish_secs:.2} s ({:.0}/s)",
        bytes / n,
        n as f64 / publish_secs
    );

    // 4. Raw drain.
    let started = Instant::now();
    let mut sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-c",
            "-i",
            "raw-bench",
            "-q",
            "1",
            "-t",
            TOPIC,
            "-C",
            &n.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = 0usize;
    for line in BufReader::new(sub.stdout.take().expect("piped")).lines() {
        line?;
        lines += 1;
    }
    let raw_secs = started.elapsed().as_secs_f64();
    let _ = sub.wait();
    anyhow::ensure!(lines == n, "mosquitto_sub printed {lines} of {n}");
    let raw_rate = n as f64 / raw_secs;
    println!(
        "plow_ingest: raw mosquitto_sub drained {n} in {raw_secs:.2} s = {raw_rate:.0} positions/s"
    );

    // 5. Sonae drain: the full pipeline.
    let plow = Arc::new(Plow::new(config, Some(net)));
    let (sonae_secs, segs) = rt.block_on(async {
        let (m, h, stop) = (
            Arc::new(Metrics::new()),
            Arc::new(Health::new()),
            CancellationToken::new(),
        );
        let started = Instant::now();
        let task = tokio::spawn(sonae::plow::ingest::run(
            plow.clone(),
            store.clone(),
            m.clone(),
            h,
            None,
            stop.clone(),
        ));
        loop {
            let stored = m.get("sonae_plow_positions_total", &[]).unwrap_or(0.0) as usize;
            let dup = m.get("sonae_plow_duplicates_total", &[]).unwrap_or(0.0) as usize;
            if stored + dup >= n {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "ingest stalled at {stored}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let segs = m.get("sonae_plow_segment_passes_total", &[]).unwrap_or(0.0);
        let rejected: f64 = ["outside_area", "implausible_speed", "future_timestamp"]
            .iter()
            .map(|r| {
                m.get("sonae_plow_rejected_total", &[("reason", r)])
                    .unwrap_or(0.0)
            })
            .sum();
        anyhow::ensure!(rejected == 0.0, "{rejected} positions rejected");
        stop.cancel();
        let _ = task.await;
        anyhow::Ok((secs, segs))
    })?;
    let stored: i64 = store.read_blocking(|c| {
        Ok(c.query_row("SELECT count(*) FROM plow_positions", [], |r| r.get(0))?)
    })?;
    anyhow::ensure!(stored as usize == n, "stored {stored} of {n}");
    let sonae_rate = n as f64 / sonae_secs;
    println!(
        "plow_ingest: sonae ingest drained {n} in {sonae_secs:.2} s = {sonae_rate:.0} positions/s \
         (parse + validate + coverage: {segs:.0} segment passes + SQLite), {:.0} % of raw",
        100.0 * sonae_rate / raw_rate
    );
    Ok(())
}

async fn publish_all(port: u16, msgs: Vec<(String, String)>) -> anyhow::Result<f64> {
    let mut o = MqttOptions::new("bench-pub", "127.0.0.1", port);
    o.set_inflight(1000);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut ev) = AsyncClient::new(o, 1000);
    let n = msgs.len();
    let started = Instant::now();
    let producer = tokio::spawn(async move {
        for (t, p) in msgs {
            client.publish(t, QoS::AtLeastOnce, false, p).await?;
        }
        anyhow::Ok(client)
    });
    let mut acked = 0;
    while acked < n {
        if let Event::Incoming(Packet::PubAck(_)) = ev.poll().await? {
            acked += 1;
        }
    }
    let client = producer.await??;
    let secs = started.elapsed().as_secs_f64();
    client.disconnect().await?;
    let _ = tokio::time::timeout(Duration::from_secs(1), ev.poll()).await;
    Ok(secs)
}
