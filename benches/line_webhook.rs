//! Webhook intake: how fast `POST /webhook` answers (signature check + one durable SQLite transaction) and
//! how many requests per second one daemon takes, sequentially and with 16 concurrent senders.
//!
//! Run: `cargo bench --bench line_webhook` (prints figures; asserts nothing about time).

use std::time::{Duration, Instant};

use serde_json::json;
use sonae::app::Application;
use sonae::config::{Config, Secrets};
use sonae::secret::Secret;

const SECRET: &str = "bench-channel-secret";

fn body(i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({"destination": "U5a0d0e0b0a0e0d0b0e0e0f0a0c0e0d00", "events": [{
        "type": "message", "mode": "active", "timestamp": 1_700_000_000_000i64 + i as i64,
        "webhookEventId": format!("01BENCH{i:019}"),
        "source": {"type": "user", "userId": format!("U{:032x}", i % 5000)},
        "deliveryContext": {"isRedelivery": false}, "replyToken": format!("rt{i}"),
        "message": {"id": i.to_string(), "type": "text", "text": "避難所はどこですか", "quoteToken": "q"}}]}))
    .unwrap()
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[store]\npath = \"{}\"\n[line]\napi_base = \"http://127.0.0.1:9\"\napi_data_base = \"http://127.0.0.1:9\"\n[place]\nenabled = false\n",
        dir.path().join("bench.db").display()
    );
    let config = Config::parse(&text).unwrap();
    let secrets = Secrets {
        line_channel_secret: Secret::new(SECRET),
        line_channel_access_token: Secret::new("t"),
        api_token: None,
    };
    let app = Application::build(config, secrets).await.unwrap();
    let url = format!("http://{}/webhook", app.local_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    let http = reqwest::Client::new();
    let send = move |i: usize| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let b = body(i);
            let sig = sonae::line::signature::sign(SECRET, &b);
            let t = Instant::now();
            let r = http
                .post(&url)
                .header("x-line-signature", sig)
                .body(b)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            t.elapsed()
        }
    };
    // Warm-up.
    for i in 0..50 {
        send(1_000_000 + i).await;
    }
    let n = 1000;
    let start = Instant::now();
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        lat.push(send(i).await);
    }
    let seq = start.elapsed();
    println!(
        "sequential: {n} requests in {:.2} s = {:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        seq.as_secs_f64(),
        n as f64 / seq.as_secs_f64(),
        percentile(&mut lat, 0.5).as_secs_f64() * 1e3,
        percentile(&mut lat, 0.99).as_secs_f64() * 1e3,
        percentile(&mut lat, 1.0).as_secs_f64() * 1e3,
    );
    let conc = 16;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conc {
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            let mut l = Vec::new();
            for k in 0..(n / conc) {
                l.push(send(2_000_000 + w * 100_000 + k).await);
            }
            l
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let el = start.elapsed();
    println!(
        "{conc} concurrent senders: {} requests in {:.2} s = {:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        el.as_secs_f64(),
        lat.len() as f64 / el.as_secs_f64(),
        percentile(&mut lat, 0.5).as_secs_f64() * 1e3,
        percentile(&mut lat, 0.99).as_secs_f64() * 1e3,
        percentile(&mut lat, 1.0).as_secs_f64() * 1e3,
    );
    let _ = stop_tx.send(());
    let _ = server.await;
}
