//! JMA feed/state throughput. Prints figures; asserts nothing about time.
//!
//! `cargo bench --bench jma_feed`
//!
//! 1. `jma::state` alone: full-state VPWW54-like reports for a prefecture of 60 municipalities, each listing
//!    3 kinds, with the status changing every report (so events are produced).
//! 2. The pipeline with SQLite (`synchronous=FULL`): archive row + parse (a lookup, to isolate our cost) +
//!    apply + persist (state rows, apply-once key, events, `jma_active`) per telegram.
//! 3. The poller catching up from a long feed of 300 entries served by `jma::replay` over local HTTP: feed
//!    poll + 300 downloads (20 KB VPWW55 sample each) + archive, 4 downloads in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};
use sonae::health::Health;
use sonae::jma::feed::{Clock, Poller, SystemClock};
use sonae::jma::pipeline::{ParseFn, Pipeline};
use sonae::jma::report::{
    Area, Control, DocStatus, Head, InfoType, Kind, Report, WarningBlock, WarningItem,
};
use sonae::jma::state::{KindClass, Severity, States};
use sonae::jma::JmaConfig;
use sonae::metrics::Metrics;
use sonae::store::Store;

const MUNIS: usize = 60;

fn table(_: &str, code: &str) -> Option<KindClass> {
    let (p, s, l) = match code {
        "10" => ("大雨", Severity::Advisory, Some(2)),
        "03" => ("大雨", Severity::Warning, Some(3)),
        "33" => ("大雨", Severity::Emergency, Some(5)),
        "18" => ("洪水", Severity::Advisory, Some(2)),
        "04" => ("洪水", Severity::Warning, Some(3)),
        "15" => ("強風", Severity::Advisory, None),
        "05" => ("暴風", Severity::Warning, None),
        _ => return None,
    };
    Some(KindClass {
        phenomenon: p.into(),
        severity: s,
        level: l,
        name: None,
    })
}

fn report(i: usize) -> Report {
    let at: DateTime<FixedOffset> = DateTime::parse_from_rfc3339("2026-07-01T00:00:00+09:00")
        .unwrap()
        + chrono::Duration::minutes(i as i64);
    let rain = ["10", "03", "33", "03"][i % 4];
    let flood = ["18", "04"][i % 2];
    let wind = ["15", "05"][(i / 2) % 2];
    let items = (0..MUNIS)
        .map(|m| WarningItem {
            areas: vec![Area {
                code: format!("{:07}", 620100 + m * 100),
                name: format!("市{m}"),
            }],
            kinds: [rain, flood, wind]
                .iter()
                .map(|c| Kind {
                    code: c.to_string(),
                    name: String::new(),
                    status: "発表".into(),
                })
                .collect(),
        })
        .collect();
    Report {
        data_type: "VPWW54".into(),
        control: Control {
            title: "気象警報・注意報（Ｈ２７）".into(),
            datetime: None,
            status: DocStatus::Normal,
            editorial_office: "山形地方気象台".into(),
            publishing_office: "山形地方気象台".into(),
        },
        head: Head {
            title: "山形県気象警報・注意報".into(),
            report_datetime: Some(at),
            target_datetime: None,
            event_id: String::new(),
            info_type: InfoType::Issue,
            serial: String::new(),
            info_kind: "気象警報・注意報".into(),
            info_kind_version: "1.2_2".into(),
            headline: String::new(),
        },
        details: Default::default(),
        warnings: vec![WarningBlock {
            block_type: "気象警報・注意報（市町村等）".into(),
            items,
        }],
    }
}

fn bench_state() {
    let reports: Vec<Report> = (0..2000).map(report).collect();
    let mut states = States::default();
    let start = Instant::now();
    let mut events = 0;
    for r in &reports {
        events += states.apply(r, &table).1.events.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "state apply: {} reports x {MUNIS} municipalities in {secs:.3} s = {:.0} reports/s ({:.0} municipality-items/s), {events} events",
        reports.len(),
        reports.len() as f64 / secs,
        (reports.len() * MUNIS) as f64 / secs
    );
}

async fn bench_pipeline() {
    let n = 300;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("b.db")).unwrap();
    let reports: Vec<Report> = (0..n).map(report).collect();
    let map: Arc<Vec<Report>> = Arc::new(reports);
    let m2 = map.clone();
    let parse: ParseFn = Arc::new(move |b: &[u8]| {
        let i: usize = std::str::from_utf8(b).unwrap().parse().unwrap();
        Ok(m2[i].clone())
    });
    let p = Pipeline::open(store.clone(), Some(parse), Arc::new(table), None)
        .await
        .unwrap();
    let start = Instant::now();
    for i in 0..n {
        let url = format!("http://bench/{i}_VPWW54.xml");
        store
            .write(move |tx| {
                sonae::jma::archive::insert(
                    tx,
                    &url,
                    Utc::now(),
                    i.to_string().as_bytes(),
                    Some("VPWW54"),
                )
            })
            .await
            .unwrap();
        p.drain().await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "pipeline (archive + apply + persist, SQLite synchronous=FULL): {n} telegrams x {MUNIS} municipalities in {secs:.3} s = {:.0} telegrams/s",
        n as f64 / secs
    );
}

async fn bench_catch_up() {
    let n = 300;
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/jma/samples/official/15_17_01_251222_VPWW55.xml"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("scenario");
    std::fs::create_dir_all(sc.join("t")).unwrap();
    let mut toml = String::from(
        "name = \"bench\"\ndescription = \"benchmark\"\nbase_time = \"2026-07-01T00:00:00+09:00\"\n",
    );
    for i in 0..n {
        std::fs::write(sc.join(format!("t/{i:04}_VPWW55.xml")), &sample).unwrap();
        toml.push_str(&format!(
            "[[step]]\nat = \"2026-07-01T00:00:00+09:00\"\nfeed = \"extra\"\nfile = \"t/{i:04}_VPWW55.xml\"\ntitle = \"x\"\n"
        ));
    }
    std::fs::write(sc.join("scenario.toml"), toml).unwrap();
    let scenario = sonae::jma::replay::Scenario::load(&sc).unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let server = sonae::jma::replay::ReplayServer::start(
        scenario,
        "127.0.0.1:0".parse().unwrap(),
        1.0,
        Utc::now(),
        token.clone(),
    )
    .await
    .unwrap();
    let store = Store::open(&dir.path().join("c.db")).unwrap();
    let pipeline = Arc::new(
        Pipeline::open(store.clone(), None, Arc::new(table), None)
            .await
            .unwrap(),
    );
    let cfg = JmaConfig {
        feeds: vec![server.feed_url("extra")],
        ..JmaConfig::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let poller = Poller::new(
        cfg,
        store.clone(),
        pipeline,
        Arc::new(Metrics::new()),
        Arc::new(Health::new()),
        clock,
    )
    .unwrap();
    // Let the short feed's window pass so the entries are only in the long feed.
    server.advance(Duration::from_secs(3600));
    let mut catchup = false;
    let start = Instant::now();
    let r = poller.cycle(&server.feed_url("extra"), &mut catchup).await;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(r.downloaded, n);
    println!(
        "catch-up over local HTTP: {n} telegrams ({} KB each) downloaded and archived in {secs:.3} s = {:.0} telegrams/s ({:.1} MB/s)",
        sample.len() / 1024,
        n as f64 / secs,
        (n * sample.len()) as f64 / secs / 1e6
    );
    token.cancel();
}

fn main() {
    bench_state();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench_pipeline());
    rt.block_on(bench_catch_up());
}
