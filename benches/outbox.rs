//! Outbox throughput: `cargo bench --bench outbox`.
//!
//! 1. Enqueue a 1,000,000-recipient alert (20 districts × 50,000) in one transaction: 2,000 batches.
//! 2. Drain it through the real sender at LINE's multicast limit (200 req/s) against a fake LINE that
//!    answers after 30 ms: time to the last batch accepted, against the 10 s rate-limit bound.
//! 3. Drain another 1,000,000 with the rate limit lifted (zero-latency fake): what the claim/record
//!    machinery itself sustains, in requests/s and recipients/s.
//!
//! Prints figures; asserts nothing about speed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sonae::delivery::{self, DeliveryConfig, NewAlert, Planned, SendOutcome, Sender};
use sonae::health::Health;
use sonae::metrics::Metrics;
use sonae::store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

struct FakeLine {
    latency: Duration,
    accepted: AtomicUsize,
}

impl Sender for FakeLine {
    async fn multicast(&self, _key: uuid::Uuid, to: &[String], _m: &[Value]) -> SendOutcome {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        self.accepted.fetch_add(to.len(), Ordering::SeqCst);
        SendOutcome::Accepted { request_id: None }
    }
}

fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

fn enqueue(store: &Store, key: &str, n: usize) -> (i64, Duration) {
    let message =
        vec![json!({"type": "text", "text": "【大雨特別警報】山形市 命の危険　直ちに安全確保！"})];
    let plans: Vec<Planned> = (0..20)
        .map(|d| Planned {
            messages: message.clone(),
            recipients: (0..n / 20)
                .map(|i| format!("U{key}{d:02}{i:0w$x}", w = 32 - key.len() - 2))
                .collect(),
        })
        .collect();
    let alert = NewAlert {
        step_key: key.into(),
        source: "bench".into(),
        kind: "issue".into(),
        priority: 100,
        summary: "bench".into(),
        detail: json!({}),
    };
    let t = Instant::now();
    let e = store
        .write_blocking(move |tx| delivery::enqueue(tx, &alert, &plans, delivery::now_ms()))
        .expect("enqueue");
    (e.alert_id(), t.elapsed())
}

async fn drain(
    store: &Store,
    alert_id: i64,
    cfg: DeliveryConfig,
    latency: Duration,
) -> (Duration, usize) {
    let line = Arc::new(FakeLine {
        latency,
        accepted: AtomicUsize::new(0),
    });
    let shutdown = CancellationToken::new();
    let t = Instant::now();
    let h = tokio::spawn(delivery::run_sender(
        store.clone(),
        line.clone(),
        cfg,
        Arc::new(Metrics::new()),
        Arc::new(Health::new()),
        Arc::new(Notify::new()),
        shutdown.clone(),
    ));
    let mut done_at = None;
    loop {
        let p = delivery::progress_of(store, alert_id)
            .await
            .expect("progress")
            .expect("alert");
        if p.remaining == 0 {
            done_at.get_or_insert(t.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    h.await.expect("join").expect("sender");
    (
        done_at.unwrap_or_default(),
        line.accepted.load(Ordering::SeqCst),
    )
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("bench.db")).expect("store");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let (id, t) = enqueue(&store, "a", 1_000_000);
    println!(
        "enqueue 1,000,000 recipients (2,000 batches) in one transaction: {:.2} s",
        t.as_secs_f64()
    );
    let (d, n) = rt.block_on(drain(
        &store,
        id,
        DeliveryConfig::default(),
        Duration::from_millis(30),
    ));
    println!(
        "fan-out at 200 req/s, 30 ms fake LINE: {n} recipients accepted in {:.2} s ({:.1} % of the 10 s bound; {:.0} req/s)",
        d.as_secs_f64(),
        d.as_secs_f64() / 10.0 * 100.0,
        2000.0 / d.as_secs_f64()
    );

    let (id, _) = enqueue(&store, "b", 1_000_000);
    let unlimited = DeliveryConfig {
        multicast_per_sec: 1_000_000,
        concurrency: 64,
        ..DeliveryConfig::default()
    };
    let (d, n) = rt.block_on(drain(&store, id, unlimited, Duration::ZERO));
    println!(
        "outbox ceiling (no rate limit, zero-latency fake): {n} recipients in {:.2} s = {:.0} req/s, {:.0} recipients/s",
        d.as_secs_f64(),
        2000.0 / d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    );
    let (rss, hwm) = rss_kib();
    println!(
        "process RSS now {} MiB, peak {} MiB",
        rss / 1024,
        hwm / 1024
    );
}
