//! `POST /webhook`: verify, write down, answer 200; a worker processes what was written.
//!
//! # Order of checks (nothing is parsed before the signature is verified)
//! 1. `Content-Length` above `line.webhook_body_limit_bytes` → 413 without reading the body; a body that
//!    grows past the limit while streaming → 413, reading stops there.
//! 2. `X-Line-Signature` over the exact raw bytes, constant-time → 401 when missing or wrong.
//! 3. JSON `{destination, events: [...]}` → 400 when it is not.
//! 4. Every event is inserted in `line_webhook_events` in one transaction, `INSERT OR IGNORE` on
//!    `webhookEventId` (LINE may deliver an event twice, redelivered or not) → 500 if SQLite fails, so LINE's
//!    redelivery (when enabled) tries again.
//! 5. 200, and the worker is woken. LINE wants an answer within 2 s; this path is one fsync'd transaction.
//!
//! Rejected requests are counted on `/metrics` (`sonae_line_webhook_requests_total{result}`) and recorded as
//! an operator-visible problem at most once a minute per reason, so a flood cannot fill the table.
//!
//! # Processing
//! The worker takes pending events in event-time order (`timestamp`, then arrival), parses them leniently
//! ([`Event::from_value`]), skips `standby` events, dispatches to the [`super::events::EventRouter`] and
//! marks each `done`. Unknown types are marked `ignored`. A handler error leaves the event pending for another
//! try; after [`MAX_ATTEMPTS`] it is marked `failed` and recorded as a problem. Because events can arrive out
//! of order, handlers compare event times (see `line_users.follow_event_ts`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use rusqlite::params;
use serde_json::Value;
use sha2::Digest;

use crate::line::events::{kind_label, Event};
use crate::line::signature;
use crate::line::LineRuntime;

/// Attempts before an event whose handlers keep failing is marked `failed`.
pub const MAX_ATTEMPTS: i64 = 3;
/// Events taken per worker round.
const BATCH: i64 = 200;
/// The worker also looks for pending events this often without being woken (events left by a crash).
const IDLE_POLL: Duration = Duration::from_secs(5);
/// A rejected-request problem is stored at most this often per reason.
const PROBLEM_EVERY: Duration = Duration::from_secs(60);

/// Per-process webhook state: when each rejection reason was last stored as a problem.
#[derive(Debug, Default)]
pub struct IntakeState {
    last_problem: Mutex<HashMap<&'static str, Instant>>,
}

impl IntakeState {
    /// True at most once per [`PROBLEM_EVERY`] per reason.
    fn should_record(&self, reason: &'static str, now: Instant) -> bool {
        let mut m = self.last_problem.lock().unwrap_or_else(|p| p.into_inner());
        match m.get(reason) {
            Some(t) if now.duration_since(*t) < PROBLEM_EVERY => false,
            _ => {
                m.insert(reason, now);
                true
            }
        }
    }
}

/// The webhook route, merged into the daemon's router.
pub fn router(line: LineRuntime) -> Router {
    Router::new()
        .route("/webhook", post(receive))
        .with_state(line)
}

fn count(ctx: &LineRuntime, result: &'static str) {
    ctx.metrics.inc(
        "sonae_line_webhook_requests_total",
        "Webhook requests by result (ok, too_large, signature_missing, signature_mismatch, signature_malformed, bad_json, store_error).",
        &[("result", result)],
    );
}

async fn reject(
    ctx: &LineRuntime,
    status: StatusCode,
    reason: &'static str,
    message: &str,
) -> Response {
    count(ctx, reason);
    tracing::warn!(reason, "webhook request rejected");
    if ctx.intake.should_record(reason, Instant::now()) {
        ctx.store
            .record_problem(
                "line.webhook",
                format!("Webhookの要求を拒否しました（{message}）"),
                Some(format!("reason={reason}; status={}", status.as_u16())),
            )
            .await;
    }
    (status, message.to_string()).into_response()
}

async fn receive(State(ctx): State<LineRuntime>, headers: HeaderMap, body: Body) -> Response {
    let limit = ctx.webhook_body_limit_bytes;
    // 1. Size, before reading.
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return reject(
            &ctx,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "本文が大きすぎます",
        )
        .await;
    }
    let mut raw = Vec::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                if raw.len() + c.len() > limit {
                    return reject(
                        &ctx,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        "本文が大きすぎます",
                    )
                    .await;
                }
                raw.extend_from_slice(&c);
            }
            Err(_) => {
                return reject(
                    &ctx,
                    StatusCode::BAD_REQUEST,
                    "bad_json",
                    "本文を読み取れませんでした",
                )
                .await;
            }
        }
    }
    // 2. Signature over the exact bytes.
    let sig = headers.get("x-line-signature").map(|v| v.as_bytes());
    if let Err(e) = signature::verify(ctx.channel_secret.expose(), &raw, sig) {
        return reject(
            &ctx,
            StatusCode::UNAUTHORIZED,
            e.reason(),
            "署名を確認できません",
        )
        .await;
    }
    // 3. Shape.
    let events = match parse_callback(&raw) {
        Ok(ev) => ev,
        Err(e) => {
            let r = reject(
                &ctx,
                StatusCode::BAD_REQUEST,
                "bad_json",
                "本文がWebhookの形式ではありません",
            )
            .await;
            tracing::warn!(error = %e, "webhook body is not a LINE callback");
            return r;
        }
    };
    // 4. Durable first.
    let now = chrono::Utc::now().to_rfc3339();
    let stored = ctx
        .store
        .write(move |tx| store_events(tx, &events, &now))
        .await;
    match stored {
        Ok(stats) => {
            for (label, fresh, dup) in stats {
                ctx.metrics.add(
                    "sonae_line_webhook_events_total",
                    "Webhook events received, by kind and whether they were new.",
                    &[("kind", label), ("result", "stored")],
                    fresh as f64,
                );
                ctx.metrics.add(
                    "sonae_line_webhook_events_total",
                    "Webhook events received, by kind and whether they were new.",
                    &[("kind", label), ("result", "duplicate")],
                    dup as f64,
                );
            }
            count(&ctx, "ok");
            ctx.wake.notify_one();
            (StatusCode::OK, "OK").into_response()
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "could not store webhook events");
            count(&ctx, "store_error");
            ctx.store
                .record_problem(
                    "line.webhook",
                    "Webhookのイベントを保存できませんでした".into(),
                    Some(format!("{e:#}")),
                )
                .await;
            (StatusCode::INTERNAL_SERVER_ERROR, "一時的に保存できません").into_response()
        }
    }
}

/// The events of a callback body (`{destination, events}`), each as received.
pub fn parse_callback(raw: &[u8]) -> Result<Vec<Value>, String> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    let obj = v.as_object().ok_or("the body is not a JSON object")?;
    match obj.get("events") {
        Some(Value::Array(a)) => Ok(a.clone()),
        _ => Err("`events` is missing or not an array".into()),
    }
}

/// Inserts events, ignoring ones already stored. Returns `(kind label, new, duplicates)` per kind.
pub fn store_events(
    tx: &rusqlite::Transaction<'_>,
    events: &[Value],
    received_at: &str,
) -> anyhow::Result<Vec<(&'static str, usize, usize)>> {
    let mut stats: Vec<(&'static str, usize, usize)> = Vec::new();
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO line_webhook_events
            (webhook_event_id, received_at, event_ts, kind, user_id, redelivery, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for ev in events {
        let body = ev.to_string();
        let s = |k: &str| ev.get(k).and_then(Value::as_str);
        // An event without an id (never seen from LINE) is keyed by its content, so a repeat is still caught.
        let id = match s("webhookEventId") {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => format!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(body.as_bytes()))
            ),
        };
        let kind = s("type").unwrap_or("");
        let user = ev
            .get("source")
            .and_then(|src| src.get("userId"))
            .and_then(Value::as_str);
        let redelivery = ev
            .get("deliveryContext")
            .and_then(|d| d.get("isRedelivery"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let ts = ev.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
        let n = stmt.execute(params![id, received_at, ts, kind, user, redelivery, body])?;
        let label = kind_label(kind);
        let entry = match stats.iter_mut().position(|(l, _, _)| *l == label) {
            Some(i) => &mut stats[i],
            None => {
                stats.push((label, 0, 0));
                stats.last_mut().expect("just pushed")
            }
        };
        if n == 1 {
            entry.1 += 1;
        } else {
            entry.2 += 1;
        }
    }
    Ok(stats)
}

/// Processes up to one batch of pending events. Returns how many were taken.
pub async fn process_pending(ctx: &LineRuntime) -> anyhow::Result<usize> {
    let rows: Vec<(i64, String, i64)> = ctx
        .store
        .read(|c| {
            let mut st = c.prepare(
                "SELECT id, body, attempts FROM line_webhook_events WHERE state = 'pending'
                 ORDER BY event_ts, id LIMIT ?1",
            )?;
            let rows = st
                .query_map([BATCH], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    let n = rows.len();
    for (id, body, attempts) in rows {
        let (state, error) = match serde_json::from_str::<Value>(&body)
            .map_err(|e| e.to_string())
            .and_then(|v| Event::from_value(v).map_err(|e| e.to_string()))
        {
            Err(e) => ("ignored", Some(e)),
            Ok(ev) if ev.mode == "standby" => ("ignored", Some("standby mode".to_string())),
            Ok(ev) => {
                if let Some(u) = ev.user_id() {
                    touch_user(ctx, u.as_str()).await?;
                }
                if ev.routes().is_empty() {
                    ("ignored", None)
                } else {
                    match ctx.events.dispatch(&ev).await {
                        Ok(_) => ("done", None),
                        Err(e) if attempts + 1 >= MAX_ATTEMPTS => {
                            ctx.store
                                .record_problem(
                                    "line.webhook",
                                    format!(
                                        "Webhookイベント（{}）の処理に{MAX_ATTEMPTS}回失敗しました",
                                        ev.kind_label()
                                    ),
                                    Some(format!("{e:#}")),
                                )
                                .await;
                            ("failed", Some(format!("{e:#}")))
                        }
                        Err(e) => ("pending", Some(format!("{e:#}"))),
                    }
                }
            }
        };
        let now = chrono::Utc::now().to_rfc3339();
        ctx.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE line_webhook_events SET state = ?2, attempts = attempts + 1, processed_at = ?3, error = ?4 WHERE id = ?1",
                    params![id, state, now, error],
                )?;
                Ok(())
            })
            .await?;
        ctx.metrics.inc(
            "sonae_line_webhook_processed_total",
            "Stored webhook events processed, by resulting state.",
            &[("state", state)],
        );
    }
    Ok(n)
}

async fn touch_user(ctx: &LineRuntime, user: &str) -> anyhow::Result<()> {
    let user = user.to_string();
    let now = chrono::Utc::now().to_rfc3339();
    ctx.store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO line_users (user_id, first_seen_at, last_seen_at) VALUES (?1, ?2, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                params![user, now],
            )?;
            Ok(())
        })
        .await
}

/// The worker: processes pending events whenever woken (and every few seconds), until shutdown.
pub async fn run_worker(ctx: LineRuntime, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        loop {
            match process_pending(&ctx).await {
                Ok(n) if n as i64 >= BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "webhook worker round failed");
                    break;
                }
            }
        }
        // Cancel-safety: `notified()` and `sleep` hold no data; dropping either loses nothing, because the
        // events are in SQLite and the next round reads them. A wake-up that arrives while a round runs is
        // kept by `Notify` (one stored permit) and starts the next round.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ctx.wake.notified() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, crate::store::Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::Store::open(&dir.path().join("s.db")).unwrap();
        (dir, s)
    }

    #[test]
    fn the_same_webhook_event_id_is_stored_once() {
        let (_d, s) = store();
        let e = json!({"type":"follow","webhookEventId":"01A","timestamp":5,"source":{"type":"user","userId":"U0"}});
        let redelivered = json!({"type":"follow","webhookEventId":"01A","timestamp":5,"deliveryContext":{"isRedelivery":true}});
        let first = s
            .write_blocking(|tx| store_events(tx, std::slice::from_ref(&e), "t"))
            .unwrap();
        assert_eq!(first, vec![("follow", 1, 0)]);
        let second = s
            .write_blocking(|tx| store_events(tx, &[e, redelivered], "t"))
            .unwrap();
        assert_eq!(second, vec![("follow", 0, 2)]);
        let n: i64 = s
            .read_blocking(|c| {
                Ok(c.query_row("SELECT count(*) FROM line_webhook_events", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn unknown_event_types_are_stored_as_received() {
        let (_d, s) = store();
        let e = json!({"type":"somethingNew","webhookEventId":"01B","timestamp":1,"extra":[1,2]});
        s.write_blocking(|tx| store_events(tx, std::slice::from_ref(&e), "t"))
            .unwrap();
        let (kind, body): (String, String) = s
            .read_blocking(|c| {
                Ok(
                    c.query_row("SELECT kind, body FROM line_webhook_events", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?,
                )
            })
            .unwrap();
        assert_eq!(kind, "somethingNew");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), e);
    }

    #[test]
    fn an_event_without_an_id_is_deduplicated_by_content() {
        let (_d, s) = store();
        let e = json!({"type":"message","timestamp":1});
        s.write_blocking(|tx| store_events(tx, &[e.clone(), e], "t"))
            .unwrap();
        let n: i64 = s
            .read_blocking(|c| {
                Ok(c.query_row("SELECT count(*) FROM line_webhook_events", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_callback_must_be_an_object_with_an_events_array() {
        assert_eq!(
            parse_callback(br#"{"destination":"U1","events":[]}"#)
                .unwrap()
                .len(),
            0
        );
        assert!(parse_callback(br#"{"destination":"U1"}"#).is_err());
        assert!(parse_callback(b"[1]").is_err());
        assert!(parse_callback(b"\xff\xfe").is_err());
    }

    #[test]
    fn rejection_problems_are_recorded_at_most_once_a_minute_per_reason() {
        let st = IntakeState::default();
        let t0 = Instant::now();
        assert!(st.should_record("signature_mismatch", t0));
        assert!(!st.should_record("signature_mismatch", t0 + Duration::from_secs(59)));
        assert!(st.should_record("too_large", t0 + Duration::from_secs(1)));
        assert!(st.should_record("signature_mismatch", t0 + Duration::from_secs(61)));
    }
}
