//! End-to-end fan-out benchmark (issue 5, item 12): 1,000,000 registered residents in 札幌市 districts, the
//! daemon (`Application`, in process) polling a local JMA feed, the LINE stand-in in process with LINE's
//! multicast limit on (200 requests/s, 500 recipients each). The daemon runs first on an empty feed; then the
//! telegrams are listed. Measures the time from the feed listing them being served to the daemon's poll to
//! the last batch accepted, against the rate-limit bound of 1,000,000 / 500 / 200 = 10 s, and the process's
//! peak RSS (VmHWM; daemon and stand-in share the process). The wait for the next poll (JMA asks for about
//! one a minute) and the daemon's start-up are printed separately.
//!
//! `cargo bench --bench fanout` (`SONAE_FANOUT_RESIDENTS` changes the count, `SONAE_FANOUT_DISTRICTS` how many
//! districts they live in; `SONAE_BENCH_LOG=1` prints the daemon's log with its planning times).

#[path = "../tests/it/feed_replay.rs"]
mod feed_replay;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sonae::ids::LineUserId;
use sonae::line::sandbox::{Sandbox, SandboxConfig};

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> anyhow::Result<()> {
    let residents: u64 = std::env::var("SONAE_FANOUT_RESIDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if std::env::var_os("SONAE_BENCH_LOG").is_some() {
        // The daemon's own log (with timestamps) shows where the time before the first send goes.
        let log = sonae::config::LogConfig {
            filter: "info".into(),
            ..Default::default()
        };
        sonae::telemetry::init(&log, std::io::stderr)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(residents))
}

async fn run(residents: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("sonae.db");
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;

    let mut config = sonae::config::Config::default();
    config.server.listen = "127.0.0.1:0".parse()?;
    config.server.admin_listen = "127.0.0.1:0".parse()?;
    config.store.path = db.clone();
    config.line.api_base = sandbox.url();
    config.line.api_data_base = sandbox.url();
    config.jma.poll_interval_secs = 10;
    config.disaster.max_report_age_secs = 604_800;
    config.place.districts = repo("deploy/demo/sapporo-districts.geojson");
    config.place.shelters = vec![repo(
        "deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv",
    )];
    let place = sonae::place::PlaceData::load(&config.place)?;
    // Residents live in the first N districts (default 3). Every district gets its own message (its name and
    // its nearest shelters), so more districts mean more, smaller batches and more messages to compose.
    let all = sonae::disaster::runtime::districts_of(&place);
    let spread: usize = std::env::var("SONAE_FANOUT_DISTRICTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .clamp(1, all.len());
    let districts: Vec<String> = all[..spread].iter().map(|d| d.id.clone()).collect();

    let t = Instant::now();
    {
        let store = sonae::store::Store::open(&db)?;
        store
            .write(move |tx| {
                for n in 1..=residents {
                    let u = LineUserId::new(format!("U{n:032x}"));
                    sonae::resident::set_district_tx(tx, &u, &districts[n as usize % spread])?;
                }
                Ok(())
            })
            .await?;
    }
    println!("registered {residents} residents in {:?}", t.elapsed());

    // The daemon starts on a feed that lists nothing yet, as it runs before a storm; the telegrams appear
    // once it is up, and it reads them on its next poll.
    let feed = feed_replay::FeedServer::start_hidden(feed_replay::TELEGRAMS).await;
    config.jma.feeds = vec![feed.feed_url()];
    let secrets = sonae::app::sandbox_secrets(&SandboxConfig::default());
    let starting = Instant::now();
    let app = sonae::app::Application::build(config, secrets).await?;
    let startup = starting.elapsed();
    let stop = tokio_util::sync::CancellationToken::new();
    let stop2 = stop.clone();
    let daemon = tokio::spawn(app.run_until_stopped(async move { stop2.cancelled().await }));
    tokio::time::sleep(Duration::from_secs(1)).await;
    feed.reveal();
    let published = Instant::now();
    let visible = loop {
        if let Some(t) = feed.first_served() {
            break t;
        }
        anyhow::ensure!(
            published.elapsed() < Duration::from_secs(60),
            "the daemon did not poll the feed within a minute"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    eprintln!("feed served at {}", chrono::Utc::now().to_rfc3339());

    let conn = rusqlite::Connection::open(&db)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let (mut planned_at, mut first_accepted_at) = (None, None);
    let done_at = loop {
        let (left, total, accepted): (i64, i64, i64) = conn.query_row(
            "SELECT coalesce(sum(status IN ('pending', 'in_flight')), 0), count(*),
                    coalesce(sum(status = 'accepted'), 0) FROM delivery_batches",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if total > 0 && planned_at.is_none() {
            planned_at = Some(visible.elapsed());
        }
        if accepted > 0 && first_accepted_at.is_none() {
            first_accepted_at = Some(visible.elapsed());
        }
        if total > 0 && left == 0 {
            break visible.elapsed();
        }
        anyhow::ensure!(
            visible.elapsed() < Duration::from_secs(600),
            "fan-out not finished in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    stop.cancel();
    daemon.await??;

    let (batches, not_accepted, recipients): (i64, i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(sum(status != 'accepted'), 0),
                coalesce(sum(length(recipients) - length(replace(recipients, char(10), '')) + 1), 0)
         FROM delivery_batches",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let sent = sandbox.with_state(|s| (s.stats.accepted_sends, s.stats.recipients));
    // LINE allows 200 multicast requests per second: the batches alone take this long.
    let bound = batches as f64 / 200.0;
    println!(
        "fan-out of {residents} residents in {spread} districts (stand-in at 200 multicast/s × 500):"
    );
    println!("  batches: {batches} ({not_accepted} not accepted), {recipients} recipient slots");
    println!(
        "  stand-in: {} accepted multicasts, {} recipients",
        sent.0, sent.1
    );
    println!("  daemon start-up (Application::build): {startup:.2?}");
    println!(
        "  telegrams listed → first served to the daemon's poll (poll interval 10 s): {:.2?}",
        visible.duration_since(published)
    );
    println!("  feed served → first batch planned: {planned_at:.2?}");
    println!("  feed served → first batch accepted: {first_accepted_at:.2?}");
    println!("  feed served → last batch accepted: {done_at:.2?}");
    println!(
        "  rate-limit bound: {bound:.2} s ({:+.1} % over it)",
        (done_at.as_secs_f64() / bound - 1.0) * 100.0
    );
    if let Some(first) = first_accepted_at {
        println!(
            "  sending phase (first → last accepted): {:.2?}",
            done_at.saturating_sub(first)
        );
    }
    println!(
        "  peak RSS (VmHWM, daemon + stand-in in one process): {}",
        vm_hwm()
    );
    Ok(())
}
