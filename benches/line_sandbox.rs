//! Throughput and memory of the LINE stand-in at the scale of the disaster fan-out benchmark (issue 5):
//! 1,000,000 recipients as 2,000 multicast requests of 500, each with its own retry key and a Flex alert,
//! over real HTTP on loopback. Every body goes through the full path (auth, bucket, spec validation,
//! documented limits, retry key, recording).
//!
//! Run: `cargo bench --bench line_sandbox`. Prints figures; asserts nothing about time.

use std::time::Instant;

use serde_json::json;
use sonae::line::sandbox::{Sandbox, SandboxConfig, Settings};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn alert() -> serde_json::Value {
    let rows: Vec<_> = (0..3)
        .map(|i| json!({"type": "box", "layout": "baseline", "contents": [
            {"type": "text", "text": format!("避難所{i}（中央区民センター）"), "flex": 4, "wrap": true},
            {"type": "text", "text": "1.2 km", "flex": 1, "align": "end"}]}))
        .collect();
    json!({"type": "flex", "altText": "【大雨特別警報】札幌市中央区 ただちに命を守る行動を", "contents": {
        "type": "bubble",
        "header": {"type": "box", "layout": "vertical", "backgroundColor": "#000000", "contents": [
            {"type": "text", "text": "大雨特別警報（警戒レベル5相当）", "color": "#ffffff", "weight": "bold"}]},
        "body": {"type": "box", "layout": "vertical", "spacing": "md", "contents": rows},
        "footer": {"type": "box", "layout": "vertical", "contents": [
            {"type": "button", "style": "primary", "action": {"type": "uri", "label": "避難所マップ", "uri": "https://example.jp/shelters?d=chuo"}},
            {"type": "button", "action": {"type": "uri", "label": "キキクル", "uri": "https://www.jma.go.jp/bosai/risk/"}}]}
    }})
}

async fn run(requests: u32, per_request: u32, concurrency: u32, rate_limits: bool) {
    let sb = Sandbox::start(SandboxConfig {
        settings: Settings {
            rate_limits,
            ..Settings::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .expect("stand-in");
    let url = format!("{}/v2/bot/message/multicast", sb.url());
    let client = reqwest::Client::new();
    let rss0 = rss_mib();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut limited = 0u64;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    return limited;
                }
                let to: Vec<String> = (i * per_request..(i + 1) * per_request)
                    .map(|n| format!("U{n:032x}"))
                    .collect();
                let body = json!({"to": to, "messages": [alert()]}).to_string();
                let key = uuid::Uuid::new_v4().to_string();
                loop {
                    let r = client
                        .post(&url)
                        .bearer_auth("sandbox-access-token")
                        .header("content-type", "application/json")
                        .header("x-line-retry-key", &key)
                        .body(body.clone())
                        .send()
                        .await
                        .expect("request");
                    match r.status().as_u16() {
                        200 => break,
                        429 => {
                            limited += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        }
                        s => panic!("unexpected status {s}"),
                    }
                }
            }
        }));
    }
    let mut limited = 0;
    for t in tasks {
        limited += t.await.expect("task");
    }
    let secs = started.elapsed().as_secs_f64();
    let recipients = sb.with_state(|s| s.stats.recipients);
    assert_eq!(recipients, (requests * per_request) as u64);
    println!(
        "rate_limits={rate_limits:<5} {requests} multicasts x {per_request} = {recipients} recipients, \
         {concurrency} connections: {secs:.2} s, {:.0} req/s, {:.0} recipients/s, {limited} x 429 retried, \
         RSS +{:.0} MiB (process {:.0} MiB)",
        requests as f64 / secs,
        recipients as f64 / secs,
        rss_mib() - rss0,
        rss_mib()
    );
    sb.stop().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Raw capacity: no rate limits.
        run(2000, 500, 8, false).await;
        // At LINE's multicast limit (200/s, bucket of 200): the bound is (2000 - 200) / 200 = 9 s.
        run(2000, 500, 8, true).await;
    });
}
