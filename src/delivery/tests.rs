//! Outbox tests with a fake LINE that remembers accepted retry keys (answering 409 for them, as LINE does):
//! exactly once per recipient, crash and resume with the same keys, batch size, priority, rate limit,
//! 429/5xx backoff, rejections and quota exhaustion.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::*;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::Store;

/// LINE's side, shared across "restarts" of the sender.
#[derive(Default)]
struct Line {
    accepted_keys: Mutex<HashSet<Uuid>>,
    delivered: Mutex<HashMap<String, usize>>,
    /// Every request: (retry key, first recipient, recipients).
    calls: Mutex<Vec<(Uuid, String, usize)>>,
}

struct FakeSender {
    line: Arc<Line>,
    /// Outcomes returned (without accepting) before normal behaviour resumes.
    script: Mutex<VecDeque<SendOutcome>>,
    /// After this many accepted requests, accept and then never answer (the process "dies" mid-request).
    hang_after: Option<usize>,
    accepted_here: AtomicUsize,
    latency: Duration,
}

impl FakeSender {
    fn new(line: Arc<Line>) -> Self {
        FakeSender {
            line,
            script: Mutex::new(VecDeque::new()),
            hang_after: None,
            accepted_here: AtomicUsize::new(0),
            latency: Duration::from_millis(0),
        }
    }
}

impl Sender for FakeSender {
    async fn multicast(
        &self,
        retry_key: Uuid,
        recipients: &[String],
        messages: &[Value],
    ) -> SendOutcome {
        assert!(!recipients.is_empty() && recipients.len() <= MAX_RECIPIENTS);
        assert!(!messages.is_empty() && messages.len() <= MAX_MESSAGES);
        self.line
            .calls
            .lock()
            .unwrap()
            .push((retry_key, recipients[0].clone(), recipients.len()));
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        if let Some(o) = self.script.lock().unwrap().pop_front() {
            return o;
        }
        if !self.line.accepted_keys.lock().unwrap().insert(retry_key) {
            return SendOutcome::AlreadyAccepted {
                request_id: Some(format!("accepted-{retry_key}")),
            };
        }
        {
            let mut d = self.line.delivered.lock().unwrap();
            for r in recipients {
                *d.entry(r.clone()).or_default() += 1;
            }
        }
        let n = self.accepted_here.fetch_add(1, Ordering::SeqCst) + 1;
        if self.hang_after.is_some_and(|h| n > h) {
            std::future::pending::<()>().await;
        }
        SendOutcome::Accepted {
            request_id: Some(format!("req-{retry_key}")),
        }
    }
}

fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("U{prefix}{i:0w$x}", w = 32 - prefix.len()))
        .collect()
}

fn message(text: &str) -> Vec<Value> {
    vec![json!({"type": "text", "text": text})]
}

fn alert(key: &str, priority: i64) -> NewAlert {
    NewAlert {
        step_key: key.into(),
        source: "disaster".into(),
        kind: "issue".into(),
        priority,
        summary: format!("test {key}"),
        detail: json!({}),
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("sonae.db")).unwrap();
    (dir, store)
}

fn enqueue_now(store: &Store, a: NewAlert, plans: Vec<Planned>) -> Enqueued {
    store
        .write_blocking(move |tx| enqueue(tx, &a, &plans, now_ms()))
        .unwrap()
}

fn fast() -> DeliveryConfig {
    DeliveryConfig {
        backoff_base_ms: 20,
        backoff_cap_ms: 200,
        ..DeliveryConfig::default()
    }
}

struct Running {
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

fn start(store: &Store, sender: FakeSender, cfg: DeliveryConfig) -> Running {
    let shutdown = CancellationToken::new();
    let health = Arc::new(Health::new());
    let metrics = Arc::new(Metrics::new());
    let handle = tokio::spawn(run_sender(
        store.clone(),
        Arc::new(sender),
        cfg,
        metrics.clone(),
        health.clone(),
        Arc::new(Notify::new()),
        shutdown.clone(),
    ));
    Running {
        shutdown,
        handle,
        health,
        metrics,
    }
}

async fn wait_done(store: &Store, alert_id: i64) -> Progress {
    for _ in 0..20_000 {
        let p = progress_of(store, alert_id).await.unwrap().unwrap();
        if p.remaining == 0 {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("alert {alert_id} did not finish");
}

async fn stop(r: Running) {
    r.shutdown.cancel();
    r.handle.await.unwrap().unwrap();
}

fn keys_of(store: &Store, alert_id: i64) -> Vec<(i64, String, String)> {
    store
        .read_blocking(move |c| {
            let mut s = c.prepare("SELECT id, retry_key, status FROM delivery_batches WHERE alert_id = ?1 ORDER BY id")?;
            let v = s
                .query_map([alert_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .unwrap()
}

#[test]
fn enqueue_cuts_recipients_into_batches_of_at_most_500_each_with_its_own_uuid_key() {
    let (_d, store) = store();
    let e = enqueue_now(
        &store,
        alert("a", 100),
        vec![
            Planned {
                messages: message("中央"),
                recipients: users("a", 1234).into(),
            },
            Planned {
                messages: message("南部"),
                recipients: users("b", 10).into(),
            },
        ],
    );
    let Enqueued::Created {
        alert_id,
        batches,
        recipients,
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!((batches, recipients), (4, 1244));
    let sizes: Vec<i64> = store
        .read_blocking(move |c| {
            let mut s = c.prepare(
                "SELECT n_recipients FROM delivery_batches WHERE alert_id = ?1 ORDER BY id",
            )?;
            let v = s
                .query_map([alert_id], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .unwrap();
    assert_eq!(sizes, vec![500, 500, 234, 10]);
    let keys = keys_of(&store, alert_id);
    let distinct: HashSet<&String> = keys.iter().map(|k| &k.1).collect();
    assert_eq!(distinct.len(), 4);
    for (_, k, status) in &keys {
        assert!(Uuid::parse_str(k).is_ok());
        assert_eq!(status, "pending");
    }
    let p = store
        .read_blocking(move |c| progress(c, alert_id))
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.planned, p.sent, p.failed, p.remaining),
        (1244, 0, 0, 1244)
    );
}

#[test]
fn the_same_step_key_twice_inserts_nothing_and_a_recipient_in_two_districts_is_planned_once() {
    let (_d, store) = store();
    let mut both = users("a", 3);
    both.push(users("b", 1)[0].clone());
    let plans = vec![
        Planned {
            messages: message("中央"),
            recipients: users("a", 3).into(),
        },
        Planned {
            messages: message("南部"),
            recipients: both.into(),
        },
    ];
    let first = enqueue_now(&store, alert("same", 100), plans.clone());
    assert!(matches!(first, Enqueued::Created { recipients: 4, .. }));
    let second = enqueue_now(&store, alert("same", 100), plans);
    assert_eq!(
        second,
        Enqueued::Duplicate {
            alert_id: first.alert_id()
        }
    );
    let n: i64 = store
        .read_blocking(|c| {
            Ok(c.query_row("SELECT count(*) FROM delivery_batches", [], |r| r.get(0))?)
        })
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn a_malformed_user_id_is_dropped_and_reported_so_it_cannot_sink_its_batch() {
    let (_d, store) = store();
    let mut r = users("a", 3);
    r.push("not-a-user".into());
    r.push(String::new());
    let e = enqueue_now(
        &store,
        alert("ids", 100),
        vec![Planned {
            messages: message("避難"),
            recipients: r.into(),
        }],
    );
    assert!(
        matches!(
            e,
            Enqueued::Created {
                recipients: 3,
                invalid: 2,
                ..
            }
        ),
        "{e:?}"
    );
    let problems: i64 = store
        .read_blocking(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM problems WHERE source = 'delivery' AND message LIKE '%2 件%'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(problems, 1);
}

#[test]
fn a_plan_with_more_than_five_messages_is_refused() {
    let (_d, store) = store();
    let a = alert("x", 10);
    let plans = vec![Planned {
        messages: (0..6)
            .map(|i| json!({"type": "text", "text": i.to_string()}))
            .collect(),
        recipients: users("a", 1).into(),
    }];
    assert!(store
        .write_blocking(move |tx| enqueue(tx, &a, &plans, 0))
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipient_gets_exactly_one_message_and_progress_shows_it() {
    let (_d, store) = store();
    let e = enqueue_now(
        &store,
        alert("fanout", 100),
        vec![Planned {
            messages: message("避難"),
            recipients: users("a", 2600).into(),
        }],
    );
    let line = Arc::new(Line::default());
    let r = start(&store, FakeSender::new(line.clone()), fast());
    let p = wait_done(&store, e.alert_id()).await;
    assert_eq!(
        (p.planned, p.sent, p.failed, p.remaining),
        (2600, 2600, 0, 0)
    );
    assert_eq!((p.batches_total, p.batches_done), (6, 6));
    let d = line.delivered.lock().unwrap().clone();
    assert_eq!(d.len(), 2600);
    assert!(d.values().all(|&n| n == 1));
    let per = store
        .read_blocking(move |c| recipient_outcomes(c, e.alert_id()))
        .unwrap();
    assert_eq!(per.len(), 2600);
    assert!(per.iter().all(|(_, s)| s == "accepted"));
    // Counted once the outcome is recorded, so the last batch's count may land just after the progress.
    let accepted = || {
        r.metrics.get(
            "sonae_delivery_recipients_total",
            &[("outcome", "accepted")],
        )
    };
    for _ in 0..500 {
        if accepted() == Some(2600.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(accepted(), Some(2600.0));
    stop(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_fan_out_resumes_with_the_same_keys_and_duplicates_nobody() {
    let (_d, store) = store();
    let e = enqueue_now(
        &store,
        alert("crash", 100),
        vec![Planned {
            messages: message("避難"),
            recipients: users("a", 5000).into(),
        }],
    );
    let all_keys: HashSet<String> = keys_of(&store, e.alert_id())
        .into_iter()
        .map(|k| k.1)
        .collect();
    assert_eq!(all_keys.len(), 10);
    let line = Arc::new(Line::default());
    // First run: LINE accepts 4 requests normally, then accepts the next ones but the answers never arrive
    // (the daemon dies with those requests in flight).
    let mut s1 = FakeSender::new(line.clone());
    s1.hang_after = Some(4);
    let r1 = start(&store, s1, fast());
    for _ in 0..2000 {
        if line.accepted_keys.lock().unwrap().len() >= 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // "kill -9": drop the sender mid-batch, no graceful drain.
    r1.handle.abort();
    let _ = r1.handle.await;
    // A SQLite write already handed to the blocking pool still commits (as it would have before a real
    // kill); let it land before looking at the rows.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_crash = keys_of(&store, e.alert_id());
    let in_flight: Vec<String> = after_crash
        .iter()
        .filter(|k| k.2 == "in_flight")
        .map(|k| k.1.clone())
        .collect();
    assert!(
        !in_flight.is_empty(),
        "some batches were cut short: {after_crash:?}"
    );
    let calls_before = line.calls.lock().unwrap().len();

    // Restart with the same LINE (which remembers accepted keys, answering 409).
    let r2 = start(&store, FakeSender::new(line.clone()), fast());
    let p = wait_done(&store, e.alert_id()).await;
    assert_eq!((p.sent, p.failed), (5000, 0));
    let calls = line.calls.lock().unwrap().clone();
    let resent: Vec<&Uuid> = calls[calls_before..].iter().map(|c| &c.0).collect();
    for k in &in_flight {
        let k = Uuid::parse_str(k).unwrap();
        assert!(
            resent.contains(&&k),
            "in-flight batch {k} re-sent with its own key"
        );
    }
    for (k, _, _) in &calls {
        assert!(
            all_keys.contains(&k.to_string()),
            "no key other than the stored ones is ever used"
        );
    }
    let d = line.delivered.lock().unwrap().clone();
    assert_eq!(d.len(), 5000, "zero lost");
    assert!(d.values().all(|&n| n == 1), "zero duplicated");
    assert!(
        r2.metrics
            .get(
                "sonae_delivery_requests_total",
                &[("outcome", "already_accepted")]
            )
            .unwrap_or(0.0)
            >= 1.0,
        "LINE answered 409 for batches accepted before the crash"
    );
    store.integrity_check().unwrap();
    stop(r2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disaster_alerts_are_claimed_before_normal_traffic() {
    let (_d, store) = store();
    let normal = enqueue_now(
        &store,
        alert("normal", 10),
        vec![Planned {
            messages: message("ゴミ出し"),
            recipients: users("e", 2000).into(),
        }],
    );
    let urgent = enqueue_now(
        &store,
        alert("urgent", 100),
        vec![Planned {
            messages: message("避難"),
            recipients: users("d", 2000).into(),
        }],
    );
    let line = Arc::new(Line::default());
    let cfg = DeliveryConfig {
        concurrency: 1,
        ..fast()
    };
    let r = start(&store, FakeSender::new(line.clone()), cfg);
    wait_done(&store, normal.alert_id()).await;
    wait_done(&store, urgent.alert_id()).await;
    let order: Vec<char> = line
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.1.chars().nth(1).unwrap())
        .collect();
    assert_eq!(order, vec!['d', 'd', 'd', 'd', 'e', 'e', 'e', 'e']);
    stop(r).await;
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_blocks_and_never_drops() {
    let (_d, store) = store();
    // 300 one-recipient alerts at 100 requests/s: the first 100 go at once, the other 200 need ≥ 2 s.
    for i in 0..300 {
        enqueue_now(
            &store,
            alert(&format!("r{i}"), 50),
            vec![Planned {
                messages: message("お知らせ"),
                recipients: users(&format!("{i:03}"), 1).into(),
            }],
        );
    }
    let line = Arc::new(Line::default());
    let cfg = DeliveryConfig {
        multicast_per_sec: 100,
        ..fast()
    };
    let start_at = Instant::now();
    let r = start(&store, FakeSender::new(line.clone()), cfg);
    for id in 1..=300 {
        wait_done(&store, id).await;
    }
    let elapsed = Instant::now() - start_at;
    assert!(elapsed >= Duration::from_millis(1990), "{elapsed:?}");
    assert_eq!(line.delivered.lock().unwrap().len(), 300);
    assert_eq!(
        line.calls.lock().unwrap().len(),
        300,
        "no request dropped or repeated"
    );
    stop(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_and_server_errors_are_retried_with_the_same_key() {
    let (_d, store) = store();
    let e = enqueue_now(
        &store,
        alert("retry", 100),
        vec![Planned {
            messages: message("避難"),
            recipients: users("a", 10).into(),
        }],
    );
    let line = Arc::new(Line::default());
    let s = FakeSender::new(line.clone());
    s.script.lock().unwrap().extend([
        SendOutcome::RateLimited,
        SendOutcome::Transient {
            message: "HTTP 500".into(),
        },
        SendOutcome::Transient {
            message: "timeout".into(),
        },
    ]);
    let r = start(&store, s, fast());
    let p = wait_done(&store, e.alert_id()).await;
    assert_eq!(p.sent, 10);
    let calls = line.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 4);
    let key = keys_of(&store, e.alert_id())[0].1.clone();
    assert!(
        calls.iter().all(|c| c.0.to_string() == key),
        "one key for the batch's whole life"
    );
    let attempts: i64 = store
        .read_blocking(|c| {
            Ok(c.query_row("SELECT attempts FROM delivery_batches", [], |r| r.get(0))?)
        })
        .unwrap();
    assert_eq!(attempts, 4);
    assert_eq!(
        r.metrics.get(
            "sonae_delivery_requests_total",
            &[("outcome", "rate_limited")]
        ),
        Some(1.0)
    );
    stop(r).await;
}

#[tokio::test(start_paused = true)]
async fn a_429_pauses_the_whole_dispatcher_with_backoff() {
    let (_d, store) = store();
    let e = enqueue_now(
        &store,
        alert("pause", 100),
        vec![Planned {
            messages: message("避難"),
            recipients: users("a", 1).into(),
        }],
    );
    let line = Arc::new(Line::default());
    let s = FakeSender::new(line.clone());
    s.script.lock().unwrap().extend([
        SendOutcome::RateLimited,
        SendOutcome::RateLimited,
        SendOutcome::RateLimited,
    ]);
    let cfg = DeliveryConfig {
        backoff_base_ms: 1000,
        backoff_cap_ms: 8000,
        ..DeliveryConfig::default()
    };
    let t0 = Instant::now();
    let r = start(&store, s, cfg);
    wait_done(&store, e.alert_id()).await;
    // Each 429 pauses at least base/2 = 500 ms.
    assert!(
        Instant::now() - t0 >= Duration::from_millis(1500),
        "{:?}",
        Instant::now() - t0
    );
    assert_eq!(line.calls.lock().unwrap().len(), 4);
    stop(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_batch_is_final_and_shown_to_operators() {
    let (_d, store) = store();
    let e = enqueue_now(
        &store,
        alert("bad", 100),
        vec![Planned {
            messages: message("避難"),
            recipients: users("a", 700).into(),
        }],
    );
    let line = Arc::new(Line::default());
    let s = FakeSender::new(line.clone());
    s.script.lock().unwrap().push_back(SendOutcome::Rejected {
        status: 400,
        message: "{\"message\":\"The request body has 1 error(s)\"}".into(),
    });
    let r = start(
        &store,
        s,
        DeliveryConfig {
            concurrency: 1,
            ..fast()
        },
    );
    let p = wait_done(&store, e.alert_id()).await;
    assert_eq!((p.sent, p.failed), (200, 500));
    assert_eq!(
        line.calls.lock().unwrap().len(),
        2,
        "a rejection is not retried"
    );
    let problems: Vec<(String, String)> = store
        .read_blocking(|c| {
            let mut s = c.prepare("SELECT source, coalesce(detail, '') FROM problems")?;
            let v = s
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .unwrap();
    assert!(
        problems
            .iter()
            .any(|(s, d)| s == "delivery" && d.contains("1 error")),
        "{problems:?}"
    );
    stop(r).await;
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_monthly_quota_pauses_sending_and_raises_an_alarm() {
    let (_d, store) = store();
    let e = enqueue_now(
        &store,
        alert("quota", 100),
        vec![Planned {
            messages: message("避難"),
            recipients: users("a", 1).into(),
        }],
    );
    let line = Arc::new(Line::default());
    let s = FakeSender::new(line.clone());
    s.script
        .lock()
        .unwrap()
        .push_back(SendOutcome::QuotaExhausted);
    let cfg = DeliveryConfig {
        quota_pause_secs: 600,
        ..fast()
    };
    let t0 = Instant::now();
    let r = start(&store, s, cfg);
    // Wait for the first (refused) attempt to be recorded.
    for _ in 0..1000 {
        if r.metrics
            .get(
                "sonae_delivery_requests_total",
                &[("outcome", "quota_exhausted")],
            )
            .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let h = serde_json::to_value(r.health.snapshot()).unwrap();
    assert_eq!(h["delivery"]["status"], "degraded", "{h}");
    assert_eq!(
        line.calls.lock().unwrap().len(),
        1,
        "nothing more is sent during the pause"
    );
    tokio::time::sleep(Duration::from_secs(590)).await;
    assert_eq!(
        line.calls.lock().unwrap().len(),
        1,
        "nothing more is sent during the pause"
    );
    wait_done(&store, e.alert_id()).await;
    assert!(Instant::now() - t0 >= Duration::from_secs(600));
    let h = serde_json::to_value(r.health.snapshot()).unwrap();
    assert_eq!(
        h["delivery"]["status"], "ok",
        "sending again clears the alarm: {h}"
    );
    assert_eq!(line.calls.lock().unwrap().len(), 2);
    stop(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_already_sent_and_records_them() {
    let (_d, store) = store();
    let e = enqueue_now(
        &store,
        alert("drain", 100),
        vec![Planned {
            messages: message("避難"),
            recipients: users("a", 500 * 8).into(),
        }],
    );
    let line = Arc::new(Line::default());
    let mut s = FakeSender::new(line.clone());
    s.latency = Duration::from_millis(200);
    let r = start(&store, s, fast());
    while line.calls.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r.shutdown.cancel();
    r.handle.await.unwrap().unwrap();
    let keys = keys_of(&store, e.alert_id());
    let accepted = keys.iter().filter(|k| k.2 == "accepted").count();
    let sent = line.accepted_keys.lock().unwrap().len();
    assert_eq!(
        accepted, sent,
        "every request that reached LINE has its outcome recorded"
    );
    assert!(keys.iter().all(|k| k.2 != "rejected"));
}

#[test]
fn progress_of_an_unknown_alert_is_none_and_recent_alerts_lists_newest_first() {
    let (_d, store) = store();
    assert_eq!(store.read_blocking(|c| progress(c, 42)).unwrap(), None);
    for k in ["first", "second"] {
        enqueue_now(
            &store,
            alert(k, 50),
            vec![Planned {
                messages: message(k),
                recipients: users("a", 2).into(),
            }],
        );
    }
    let list = store.read_blocking(|c| recent_alerts(c, 10)).unwrap();
    let names: Vec<&str> = list.iter().map(|a| a.summary.as_str()).collect();
    assert_eq!(names, vec!["test second", "test first"]);
    assert_eq!(list[0].progress.planned, 2);
    assert_eq!(list[0].progress.remaining, 2);
}

/// Registers `n` residents of `district` (every third opted in to レベル3 alerts); returns their ids.
fn residents(store: &Store, prefix: &str, district: &str, n: usize) -> Vec<String> {
    let ids = users(prefix, n);
    let (ids2, district) = (ids.clone(), district.to_string());
    store
        .write_blocking(move |tx| {
            for (i, id) in ids2.iter().enumerate() {
                let u = crate::ids::LineUserId::new(id.clone());
                crate::resident::set_district_tx(tx, &u, &district)?;
                crate::resident::set_opt_level3_tx(tx, &u, i % 3 == 0)?;
            }
            Ok(())
        })
        .unwrap();
    ids
}

fn batch_recipients(store: &Store, alert_id: i64) -> Vec<Vec<String>> {
    store
        .read_blocking(move |c| {
            let mut s = c.prepare(
                "SELECT recipients FROM delivery_batches WHERE alert_id = ?1 ORDER BY id",
            )?;
            let v = s
                .query_map([alert_id], |r| r.get::<_, String>(0))?
                .map(|r| r.map(|t| t.split('\n').map(String::from).collect()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .unwrap()
}

#[test]
fn a_resident_audience_is_streamed_into_full_batches_once_per_district_even_if_listed_twice() {
    let (_d, store) = store();
    let mut north = residents(&store, "a", "north", 1201);
    let south = residents(&store, "b", "south", 7);
    residents(&store, "c", "elsewhere", 30);
    let audience = |d: &[&str], opt: bool| {
        Recipients::Residents(crate::resident::Audience {
            districts: d.iter().map(|s| s.to_string()).collect(),
            level3_opt_in_only: opt,
            unregistered: false,
        })
    };
    let e = enqueue_now(
        &store,
        alert("streamed", 100),
        vec![
            Planned {
                messages: message("北"),
                recipients: audience(&["north", "north"], false),
            },
            Planned {
                messages: message("南"),
                recipients: audience(&["south", "north"], false),
            },
        ],
    );
    let Enqueued::Created {
        alert_id,
        batches,
        recipients,
        invalid: 0,
    } = e
    else {
        panic!("{e:?}")
    };
    // 1201 north residents fill 500 + 500 + 201; the second plan adds only south (north was planned).
    assert_eq!((batches, recipients), (4, 1208));
    let got = batch_recipients(&store, alert_id);
    assert_eq!(
        got.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![500, 500, 201, 7]
    );
    let mut first: Vec<String> = got[..3].concat();
    first.sort();
    north.sort();
    assert_eq!(first, north);
    let mut last = got[3].clone();
    last.sort();
    assert_eq!(last, south);
    let planned: i64 = store
        .read_blocking(move |c| {
            Ok(c.query_row(
                "SELECT planned FROM delivery_alerts WHERE id = ?1",
                [alert_id],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(planned, 1208);

    // Only the opted-in third of the district for a レベル3 alert.
    let e = enqueue_now(
        &store,
        alert("opted-in", 50),
        vec![Planned {
            messages: message("北"),
            recipients: audience(&["north"], true),
        }],
    );
    assert!(
        matches!(
            e,
            Enqueued::Created {
                recipients: 401,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn an_alert_mixing_explicit_recipients_and_resident_audiences_is_refused() {
    let (_d, store) = store();
    residents(&store, "a", "north", 3);
    let a = alert("mixed", 10);
    let plans = vec![
        Planned {
            messages: message("北"),
            recipients: Recipients::Residents(crate::resident::Audience {
                districts: vec!["north".into()],
                level3_opt_in_only: false,
                unregistered: false,
            }),
        },
        Planned {
            messages: message("職員"),
            recipients: users("a", 1).into(),
        },
    ];
    let err = store
        .write_blocking(move |tx| enqueue(tx, &a, &plans, 0))
        .unwrap_err();
    assert!(format!("{err:#}").contains("mixes"), "{err:#}");
}
