//! The sender task: claims batches, sends them through a [`Sender`], records outcomes. See the module docs
//! of [`crate::delivery`] for the invariants it keeps.
//!
//! Shape: one claim loop (the channel's one multicast token bucket, concurrency permits, global pause after
//! 429) spawns one task per
//! request; outcomes go through a bounded channel to one recorder that writes up to 256 outcomes per
//! transaction (one fsync per group instead of per request: at 200 req/s that is the difference between
//! 400 and a few dozen commits per second).

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use rusqlite::{params, Transaction};
use serde_json::Value;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::DeliveryConfig;
use crate::health::{Health, Status};
use crate::line::limits::TokenBucket;
use crate::metrics::Metrics;
use crate::store::Store;

/// What LINE said to one multicast request ([`super::LineSender`] maps the LINE client's outcome onto this).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// 200.
    Accepted { request_id: Option<String> },
    /// 409: this retry key was accepted before (an earlier attempt landed). Counts as accepted.
    AlreadyAccepted { request_id: Option<String> },
    /// Another 4xx: not retried, shown to operators.
    Rejected { status: u16, message: String },
    /// 429 "The API rate limit has been exceeded": back off the whole dispatcher.
    RateLimited,
    /// 429 "You have reached your monthly limit.": stop this traffic for `quota_pause_secs`, alarm.
    QuotaExhausted,
    /// 5xx, timeout, connection error: retry with the same key after a backoff.
    Transient { message: String },
}

impl SendOutcome {
    fn label(&self) -> &'static str {
        match self {
            SendOutcome::Accepted { .. } => "accepted",
            SendOutcome::AlreadyAccepted { .. } => "already_accepted",
            SendOutcome::Rejected { .. } => "rejected",
            SendOutcome::RateLimited => "rate_limited",
            SendOutcome::QuotaExhausted => "quota_exhausted",
            SendOutcome::Transient { .. } => "transient",
        }
    }
}

/// Sends one multicast request. Implemented by [`super::LineSender`] with the LINE client (`X-Line-Retry-Key` =
/// `retry_key`), and by fakes in tests.
pub trait Sender: Send + Sync + 'static {
    fn multicast(
        &self,
        retry_key: uuid::Uuid,
        recipients: &[String],
        messages: &[Value],
    ) -> impl Future<Output = SendOutcome> + Send;
}

/// At most this many batches are claimed per transaction.
const CLAIM_MAX: usize = 64;
/// At most this many outcomes are recorded per transaction.
const RECORD_MAX: usize = 256;
/// With nothing due, the claim loop looks again after this long (or at once when woken).
const IDLE_POLL: Duration = Duration::from_millis(250);
/// Expired batches are looked for at most this often.
const EXPIRY_SCAN: Duration = Duration::from_secs(30);

/// Wall-clock milliseconds that advance with tokio's clock, so `tokio::time::pause` drives backoff in tests
/// while the database still holds real timestamps.
#[derive(Clone, Copy, Debug)]
struct Clock {
    wall_ms: i64,
    base: Instant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            wall_ms: chrono::Utc::now().timestamp_millis(),
            base: Instant::now(),
        }
    }
    fn now_ms(&self) -> i64 {
        self.wall_ms + Instant::now().duration_since(self.base).as_millis() as i64
    }
}

struct Claimed {
    id: i64,
    alert_id: i64,
    retry_key: uuid::Uuid,
    recipients: Vec<String>,
    messages: Vec<Value>,
}

struct Done {
    id: i64,
    alert_id: i64,
    n: usize,
    outcome: SendOutcome,
}

/// The retry wait in ms after `attempt` failures: [`crate::backoff::full_jitter`] with the configured base
/// and cap.
pub fn backoff_ms(cfg: &DeliveryConfig, attempt: u32) -> u64 {
    crate::backoff::full_jitter(
        attempt,
        Duration::from_millis(cfg.backoff_base_ms),
        Duration::from_millis(cfg.backoff_cap_ms),
    )
    .as_millis() as u64
}

/// Runs until `shutdown`; then stops claiming, lets requests already sent finish and records their outcomes.
/// Rows claimed but not yet sent stay `in_flight` and are re-sent with their key at the next start.
#[allow(clippy::too_many_arguments)]
pub async fn run_sender<S: Sender>(
    store: Store,
    sender: Arc<S>,
    cfg: DeliveryConfig,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let clock = Clock::new();
    let resumed = store
        .write(|tx| {
            Ok(tx.execute(
                "UPDATE delivery_batches SET status = 'pending', next_attempt_at = 0 WHERE status = 'in_flight'",
                [],
            )?)
        })
        .await
        .context("resuming in-flight batches")?;
    if resumed > 0 {
        tracing::warn!(
            resumed,
            "batches were in flight at the last stop; re-sending them with their original retry keys"
        );
        metrics.add(
            "sonae_delivery_resumed_batches_total",
            "Batches found in flight at start and re-sent with their original retry key",
            &[],
            resumed as f64,
        );
    }
    health.set("delivery", Status::Ok, "配信待ちを処理しています");

    // The one multicast bucket (the LINE client does not pace multicasts again): one second's worth of
    // tokens at `multicast_per_sec`, LINE's 200/s at most.
    let mut bucket = multicast_bucket(&cfg);
    let permits = Arc::new(Semaphore::new(cfg.concurrency));
    let pause: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let rate_limited_in_row = Arc::new(AtomicU32::new(0));
    let (out_tx, out_rx) = mpsc::channel::<Done>(cfg.concurrency * 2);
    // The recorder runs inside this future (not spawned), so aborting the sender (a crash in tests) stops
    // everything at once, like kill -9 would.
    let recorder = record_loop(
        store.clone(),
        out_rx,
        cfg.clone(),
        clock,
        metrics.clone(),
        health.clone(),
        wake.clone(),
    );
    let claim_loop = async move {
        let mut sends = JoinSet::new();
        let mut last_expiry_scan: Option<Instant> = None;

        'claim: loop {
            while sends.try_join_next().is_some() {}
            metrics.set(
                "sonae_delivery_in_flight_requests",
                "Multicast requests in flight",
                &[],
                (cfg.concurrency - permits.available_permits()) as f64,
            );
            // A 429 pauses everything; the bucket is emptied as LINE's is.
            if let Some(until) = paused_until(&pause) {
                bucket.drain(Instant::now());
                // Cancel-safety: sleeping holds nothing; on shutdown nothing is lost.
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = shutdown.cancelled() => break 'claim,
                }
                continue;
            }
            // Cancel-safety: an un-acquired permit is simply dropped.
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p.context("permits closed")?,
                _ = shutdown.cancelled() => break 'claim,
            };
            let n = (1 + permits.available_permits()).min(CLAIM_MAX);
            let now = clock.now_ms();
            let scan_expiry = last_expiry_scan.is_none_or(|t| t.elapsed() >= EXPIRY_SCAN);
            if scan_expiry {
                last_expiry_scan = Some(Instant::now());
            }
            let give_up_ms = (cfg.give_up_after_secs * 1000) as i64;
            let claim_result = store
                .write(move |tx| claim(tx, now, n, scan_expiry.then_some(now - give_up_ms)))
                .await;
            let (claimed, expired) = match claim_result {
                Ok(c) => c,
                Err(e) => {
                    // The database is the outbox: without it nothing can be sent, but the task must not die.
                    // Nothing was claimed; try again in a second.
                    tracing::error!(error = %format!("{e:#}"), "claiming delivery batches failed");
                    health.set(
                        "delivery",
                        Status::Down,
                        "配信待ちをデータベースから読み出せません",
                    );
                    drop(permit);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => break 'claim,
                    }
                    continue;
                }
            };
            for (id, alert_id, n) in &expired {
                metrics.add(
                    "sonae_delivery_recipients_total",
                    "Recipients by final outcome",
                    &[("outcome", "expired")],
                    *n as f64,
                );
                store
                .record_problem(
                    "delivery",
                    format!(
                        "配信 {alert_id} の一部（{n} 人分）は、最初の送信から {} 時間以内に LINE に受け付けられず、打ち切りました。",
                        cfg.give_up_after_secs / 3600
                    ),
                    Some(format!("batch {id}")),
                )
                .await;
            }
            if claimed.is_empty() {
                drop(permit);
                let next_due = store
                .read(|c| {
                    Ok(c.query_row(
                        "SELECT min(next_attempt_at) FROM delivery_batches WHERE status = 'pending'",
                        [],
                        |r| r.get::<_, Option<i64>>(0),
                    )?)
                })
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(error = %format!("{e:#}"), "reading the next delivery time failed");
                    None
                });
                let wait = match next_due {
                    Some(t) if t > now => Duration::from_millis((t - now) as u64).min(IDLE_POLL),
                    Some(_) => Duration::from_millis(1),
                    None => IDLE_POLL,
                };
                // Cancel-safety: each branch only waits.
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => break 'claim,
                }
                continue;
            }
            let mut first = Some(permit);
            for c in claimed {
                let permit = match first.take() {
                    Some(p) => p,
                    None => permits
                        .clone()
                        .acquire_owned()
                        .await
                        .context("permits closed")?,
                };
                if let Some(until) = paused_until(&pause) {
                    bucket.drain(Instant::now());
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {}
                        // The rest of this claim stays in_flight; the next start re-sends it with its keys.
                        _ = shutdown.cancelled() => break 'claim,
                    }
                }
                // Rate limit: block, never drop. Cancel-safety: a token is taken only when one is there.
                while let Err(wait) = bucket.take(Instant::now()) {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.cancelled() => break 'claim,
                    }
                }
                let sender = sender.clone();
                let out = out_tx.clone();
                let pause = pause.clone();
                let in_row = rate_limited_in_row.clone();
                let cfg = cfg.clone();
                metrics.inc(
                    "sonae_delivery_requests_started_total",
                    "Multicast requests started",
                    &[],
                );
                sends.spawn(async move {
                    let outcome = sender
                        .multicast(c.retry_key, &c.recipients, &c.messages)
                        .await;
                    match &outcome {
                        SendOutcome::RateLimited => {
                            let k = in_row.fetch_add(1, Ordering::SeqCst) + 1;
                            let wait = Duration::from_millis(
                                backoff_ms(&cfg, k).max(cfg.backoff_base_ms / 2),
                            );
                            set_pause(&pause, Instant::now() + wait);
                        }
                        SendOutcome::QuotaExhausted => {
                            set_pause(
                                &pause,
                                Instant::now() + Duration::from_secs(cfg.quota_pause_secs),
                            );
                        }
                        SendOutcome::Accepted { .. } | SendOutcome::AlreadyAccepted { .. } => {
                            in_row.store(0, Ordering::SeqCst);
                        }
                        _ => {}
                    }
                    let _ = out
                        .send(Done {
                            id: c.id,
                            alert_id: c.alert_id,
                            n: c.recipients.len(),
                            outcome,
                        })
                        .await;
                    drop(permit);
                });
            }
        }
        // Requests already sent finish (each bounded by the client's timeout) so their outcomes are recorded.
        while sends.join_next().await.is_some() {}
        drop(out_tx);
        Ok::<(), anyhow::Error>(())
    };
    let (res, ()) = tokio::join!(claim_loop, recorder);
    res
}

/// The outbox's multicast bucket: `multicast_per_sec` tokens refilling at that rate (a configured rate above
/// LINE's 200/s is refused by validation; benchmarks may set more to measure the outbox alone).
fn multicast_bucket(cfg: &DeliveryConfig) -> TokenBucket {
    let rate = cfg.multicast_per_sec.max(1);
    TokenBucket::new(rate, Duration::from_secs(1) / rate, Instant::now())
}

fn paused_until(pause: &Mutex<Option<Instant>>) -> Option<Instant> {
    let mut p = pause.lock().unwrap_or_else(|e| e.into_inner());
    match *p {
        Some(t) if t > Instant::now() => Some(t),
        Some(_) => {
            *p = None;
            None
        }
        None => None,
    }
}

fn set_pause(pause: &Mutex<Option<Instant>>, until: Instant) {
    let mut p = pause.lock().unwrap_or_else(|e| e.into_inner());
    if p.is_none_or(|t| t < until) {
        *p = Some(until);
    }
}

type Expired = Vec<(i64, i64, i64)>;

/// One short transaction: expire hopeless rows (when `expire_before` is given), then move up to `n` due
/// batches, highest priority first, to `in_flight`.
fn claim(
    tx: &Transaction<'_>,
    now: i64,
    n: usize,
    expire_before: Option<i64>,
) -> anyhow::Result<(Vec<Claimed>, Expired)> {
    let mut expired = Vec::new();
    if let Some(cutoff) = expire_before {
        let mut stmt = tx.prepare_cached(
            "UPDATE delivery_batches SET status = 'expired', finished_at = ?1,
                    last_error = 'not accepted by LINE within the retry-key window; given up'
             WHERE status = 'pending' AND first_attempt_at IS NOT NULL AND first_attempt_at < ?2
             RETURNING id, alert_id, n_recipients",
        )?;
        let rows = stmt.query_map(params![now, cutoff], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        for r in rows {
            expired.push(r?);
        }
    }
    let mut stmt = tx.prepare_cached(
        "SELECT b.id, b.alert_id, b.retry_key, b.recipients, m.body
         FROM delivery_batches b JOIN delivery_messages m ON m.id = b.message_id
         WHERE b.status = 'pending' AND b.next_attempt_at <= ?1
         ORDER BY b.priority DESC, b.id LIMIT ?2",
    )?;
    let rows: Vec<(i64, i64, String, String, String)> = stmt
        .query_map(params![now, n as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut mark = tx.prepare_cached(
        "UPDATE delivery_batches SET status = 'in_flight', attempts = attempts + 1,
                first_attempt_at = coalesce(first_attempt_at, ?2)
         WHERE id = ?1",
    )?;
    let mut reject = tx.prepare_cached(
        "UPDATE delivery_batches SET status = 'rejected', finished_at = ?2, last_error = ?3 WHERE id = ?1",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, alert_id, key, recipients, body) in rows {
        let parsed = uuid::Uuid::parse_str(&key)
            .map_err(|e| format!("stored retry key is not a UUID: {e}"))
            .and_then(|k| {
                serde_json::from_str::<Vec<Value>>(&body)
                    .map(|m| (k, m))
                    .map_err(|e| format!("stored messages are not JSON: {e}"))
            });
        match parsed {
            Ok((retry_key, messages)) => {
                mark.execute(params![id, now])?;
                out.push(Claimed {
                    id,
                    alert_id,
                    retry_key,
                    recipients: recipients.lines().map(str::to_string).collect(),
                    messages,
                });
            }
            Err(e) => {
                reject.execute(params![id, now, e])?;
            }
        }
    }
    Ok((out, expired))
}

async fn record_loop(
    store: Store,
    mut rx: mpsc::Receiver<Done>,
    cfg: DeliveryConfig,
    clock: Clock,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    wake: Arc<Notify>,
) {
    while let Some(first) = rx.recv().await {
        let mut items = vec![first];
        while items.len() < RECORD_MAX {
            match rx.try_recv() {
                Ok(d) => items.push(d),
                Err(_) => break,
            }
        }
        let now = clock.now_ms();
        let mut attempt = 0;
        let items = Arc::new(items);
        loop {
            let batch = items.clone();
            let cfg2 = cfg.clone();
            let res = store
                .write(move |tx| {
                    for d in batch.iter() {
                        apply(tx, d, now, &cfg2)?;
                    }
                    Ok(())
                })
                .await;
            match res {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::error!(error = %format!("{e:#}"), attempt, "recording delivery outcomes failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => {
                    // The rows stay in_flight and are re-sent with their keys at the next start (409 then).
                    tracing::error!(error = %format!("{e:#}"), "could not record delivery outcomes");
                    health.set(
                        "delivery",
                        Status::Down,
                        "配信結果をデータベースに記録できません",
                    );
                    break;
                }
            }
        }
        let mut retry_soon = false;
        for d in items.iter() {
            metrics.inc(
                "sonae_delivery_requests_total",
                "Multicast requests by LINE's answer",
                &[("outcome", d.outcome.label())],
            );
            match &d.outcome {
                SendOutcome::Accepted { .. } | SendOutcome::AlreadyAccepted { .. } => {
                    metrics.add(
                        "sonae_delivery_recipients_total",
                        "Recipients by final outcome",
                        &[("outcome", "accepted")],
                        d.n as f64,
                    );
                }
                SendOutcome::Rejected { status, message } => {
                    metrics.add(
                        "sonae_delivery_recipients_total",
                        "Recipients by final outcome",
                        &[("outcome", "rejected")],
                        d.n as f64,
                    );
                    store
                        .record_problem(
                            "delivery",
                            format!(
                                "LINE が配信 {} の送信（{} 人分）を受け付けませんでした（HTTP {status}）。",
                                d.alert_id, d.n
                            ),
                            Some(message.clone()),
                        )
                        .await;
                }
                SendOutcome::QuotaExhausted => {
                    health.set(
                        "delivery",
                        Status::Degraded,
                        "LINE の月間メッセージ上限に達しました。上限の引き上げが必要です",
                    );
                    store
                        .record_problem(
                            "delivery",
                            "LINE の月間メッセージ上限に達したため、配信を一時停止しています。LINE Official Account Manager で上限を確認してください。".into(),
                            None,
                        )
                        .await;
                    retry_soon = true;
                }
                SendOutcome::RateLimited | SendOutcome::Transient { .. } => retry_soon = true,
            }
        }
        let quota = items
            .iter()
            .any(|d| d.outcome == SendOutcome::QuotaExhausted);
        let accepted = items.iter().any(|d| {
            matches!(
                d.outcome,
                SendOutcome::Accepted { .. } | SendOutcome::AlreadyAccepted { .. }
            )
        });
        if accepted && !quota {
            health.set("delivery", Status::Ok, "配信待ちを処理しています");
        }
        if retry_soon {
            wake.notify_one();
        }
    }
}

/// Records one outcome. Only rows still `in_flight` are touched.
fn apply(tx: &Transaction<'_>, d: &Done, now: i64, cfg: &DeliveryConfig) -> anyhow::Result<()> {
    match &d.outcome {
        SendOutcome::Accepted { request_id } | SendOutcome::AlreadyAccepted { request_id } => {
            tx.prepare_cached(
                "UPDATE delivery_batches SET status = 'accepted', finished_at = ?2, request_id = ?3, last_error = NULL
                 WHERE id = ?1 AND status = 'in_flight'",
            )?
            .execute(params![d.id, now, request_id])?;
        }
        SendOutcome::Rejected { status, message } => {
            tx.prepare_cached(
                "UPDATE delivery_batches SET status = 'rejected', finished_at = ?2, last_error = ?3
                 WHERE id = ?1 AND status = 'in_flight'",
            )?
            .execute(params![d.id, now, format!("HTTP {status}: {message}")])?;
        }
        SendOutcome::RateLimited | SendOutcome::Transient { .. } | SendOutcome::QuotaExhausted => {
            let (attempts, first): (i64, Option<i64>) = tx.query_row(
                "SELECT attempts, first_attempt_at FROM delivery_batches WHERE id = ?1",
                [d.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let error = match &d.outcome {
                SendOutcome::Transient { message } => message.clone(),
                SendOutcome::QuotaExhausted => "429 monthly limit".into(),
                _ => "429 rate limit".into(),
            };
            let give_up = (cfg.give_up_after_secs * 1000) as i64;
            if first.is_some_and(|f| now - f > give_up) {
                tx.prepare_cached(
                    "UPDATE delivery_batches SET status = 'expired', finished_at = ?2, last_error = ?3
                     WHERE id = ?1 AND status = 'in_flight'",
                )?
                .execute(params![d.id, now, error])?;
            } else {
                let delay = if d.outcome == SendOutcome::QuotaExhausted {
                    (cfg.quota_pause_secs * 1000) as i64
                } else {
                    backoff_ms(cfg, attempts.max(1) as u32) as i64
                };
                tx.prepare_cached(
                    "UPDATE delivery_batches SET status = 'pending', next_attempt_at = ?2, last_error = ?3
                     WHERE id = ?1 AND status = 'in_flight'",
                )?
                .execute(params![d.id, now + delay, error])?;
            }
        }
    }
    Ok(())
}
