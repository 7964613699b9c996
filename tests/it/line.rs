//! LINE client, webhook intake and rich menus against the local LINE stand-in (real HTTP, random ports,
//! real SQLite files).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sonae::app::{Application, Context};
use sonae::config::{Config, Secrets};
use sonae::health::{Health, Status};
use sonae::ids::LineUserId;
use sonae::line::client::{Alarm, ClientConfig, LineClient, RetryKey, RetryPolicy, SendOutcome};
use sonae::line::message::*;
use sonae::line::richmenu::{self, Mode, PollPlan, SwitchMethod};
use sonae::line::sandbox::{Sandbox, SandboxConfig, SandboxHandle, Settings};
use sonae::line::signature::sign;
use sonae::metrics::Metrics;
use sonae::secret::Secret;
use sonae::store::Store;

const SECRET: &str = "sandbox-channel-secret";
const TOKEN: &str = "sandbox-access-token";

fn user(n: u32) -> LineUserId {
    LineUserId::parse(&format!("U{n:032x}")).unwrap()
}

async fn sandbox(settings: Settings) -> SandboxHandle {
    Sandbox::start(SandboxConfig {
        channel_secret: SECRET.into(),
        access_token: TOKEN.into(),
        settings,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

struct Client {
    client: LineClient,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    store: Store,
    _dir: tempfile::TempDir,
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        ..RetryPolicy::default()
    }
}

fn client_for(sb: &SandboxHandle, retry: RetryPolicy) -> Client {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("sonae.db")).unwrap();
    let health = Arc::new(Health::new());
    let metrics = Arc::new(Metrics::new());
    let client = LineClient::with_alarm(
        ClientConfig {
            api_base: sb.url(),
            api_data_base: sb.url(),
            access_token: Secret::new(TOKEN),
            retry,
        },
        Alarm {
            health: health.clone(),
            metrics: metrics.clone(),
            store: Some(store.clone()),
        },
    )
    .unwrap();
    Client {
        client,
        health,
        metrics,
        store,
        _dir: dir,
    }
}

async fn get(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn post(url: String, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap_or(Value::Null)
}

async fn faults(sb: &SandboxHandle, f: Value) {
    post(format!("{}/sandbox/faults", sb.url()), f).await;
}

async fn messages_of(sb: &SandboxHandle, u: &LineUserId) -> Vec<Value> {
    let v = get(format!(
        "{}/sandbox/users/{}/messages",
        sb.url(),
        u.as_str()
    ))
    .await;
    v["messages"].as_array().cloned().unwrap_or_default()
}

async fn stats(sb: &SandboxHandle) -> Value {
    get(format!("{}/sandbox/stats", sb.url())).await
}

fn endpoint_count(stats: &Value, endpoint: &str) -> u64 {
    stats["endpoints"][endpoint]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

async fn shown_menu(sb: &SandboxHandle, u: &LineUserId) -> (Option<String>, String) {
    let v = get(format!(
        "{}/sandbox/users/{}/richmenu",
        sb.url(),
        u.as_str()
    ))
    .await;
    (
        v["richMenuId"].as_str().map(str::to_string),
        v["source"].as_str().unwrap_or_default().to_string(),
    )
}

fn alert() -> Message {
    Message::text("【大雨警報】山形市に大雨警報が発表されました。")
}

// ------------------------------------------------------------------------------------------ client

#[tokio::test]
async fn a_push_repeated_with_the_same_retry_key_is_already_accepted_and_delivered_once() {
    let sb = sandbox(Settings::default()).await;
    let c = client_for(&sb, fast_retry());
    let u = user(1);
    let key = RetryKey::new();
    let first = c.client.push(u.as_str(), vec![alert()], key).await.unwrap();
    let SendOutcome::Accepted {
        request_id: Some(first_id),
        ..
    } = first
    else {
        panic!("expected Accepted, got {first:?}")
    };
    let again = c.client.push(u.as_str(), vec![alert()], key).await.unwrap();
    assert_eq!(
        again,
        SendOutcome::AlreadyAccepted {
            request_id: Some(first_id)
        }
    );
    assert_eq!(messages_of(&sb, &u).await.len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_key_until_accepted() {
    let sb = sandbox(Settings::default()).await;
    let c = client_for(&sb, fast_retry());
    faults(&sb, json!({"fail_next": 2})).await;
    let u = user(2);
    let out = c
        .client
        .push(u.as_str(), vec![alert()], RetryKey::new())
        .await
        .unwrap();
    assert!(matches!(out, SendOutcome::Accepted { .. }), "{out:?}");
    assert_eq!(
        endpoint_count(&stats(&sb).await, "POST /v2/bot/message/push"),
        3
    );
    assert_eq!(messages_of(&sb, &u).await.len(), 1);
}

#[tokio::test]
async fn a_connection_dropped_after_acceptance_ends_as_already_accepted_with_one_delivery() {
    let sb = sandbox(Settings::default()).await;
    let c = client_for(&sb, fast_retry());
    faults(&sb, json!({"drop_next": 1})).await;
    let u = user(3);
    let out = c
        .client
        .push(u.as_str(), vec![alert()], RetryKey::new())
        .await
        .unwrap();
    let SendOutcome::AlreadyAccepted { request_id } = out else {
        panic!("expected AlreadyAccepted, got {out:?}")
    };
    assert!(
        request_id.is_some(),
        "409 carries x-line-accepted-request-id"
    );
    assert_eq!(messages_of(&sb, &u).await.len(), 1);
}

#[tokio::test]
async fn retries_that_run_out_give_up_and_a_later_try_with_the_same_key_sends_once() {
    let sb = sandbox(Settings::default()).await;
    let c = client_for(
        &sb,
        RetryPolicy {
            max_attempts: 2,
            ..fast_retry()
        },
    );
    faults(&sb, json!({"fail_next": 5})).await;
    let u = user(5);
    let key = RetryKey::new();
    let out = c.client.push(u.as_str(), vec![alert()], key).await.unwrap();
    assert!(
        matches!(out, SendOutcome::GaveUp { attempts: 2, .. }),
        "{out:?}"
    );
    faults(&sb, json!({})).await;
    let out = c.client.push(u.as_str(), vec![alert()], key).await.unwrap();
    assert!(out.is_success(), "{out:?}");
    assert_eq!(messages_of(&sb, &u).await.len(), 1);
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_carries_lines_error_body() {
    let sb = sandbox(Settings::default()).await;
    let c = client_for(&sb, fast_retry());
    let out = c
        .client
        .push("U123", vec![alert()], RetryKey::new())
        .await
        .unwrap();
    let SendOutcome::Rejected { status, body } = out else {
        panic!("expected Rejected, got {out:?}")
    };
    assert_eq!(status, 400);
    assert!(!body.message.is_empty());
    assert_eq!(
        endpoint_count(&stats(&sb).await, "POST /v2/bot/message/push"),
        1
    );
}

#[tokio::test]
async fn messages_over_lines_limits_never_leave_the_daemon() {
    let sb = sandbox(Settings::default()).await;
    let c = client_for(&sb, fast_retry());
    let too_many: Vec<LineUserId> = (0..501).map(user).collect();
    assert!(c
        .client
        .multicast_once(&too_many, vec![alert()], RetryKey::new())
        .await
        .is_err());
    let long_alt = Message::flex("警".repeat(1501), FlexContainer::Bubble(Box::default()));
    assert!(c
        .client
        .push(user(1).as_str(), vec![long_alt], RetryKey::new())
        .await
        .is_err());
    assert_eq!(stats(&sb).await["requests"].as_u64(), Some(0));
}

/// Empties the stand-in's bucket for `endpoint`, as if other traffic had just used it up.
fn drain_sandbox_bucket(sb: &SandboxHandle, endpoint: &str) {
    sb.with_state(|s| while s.take_token(endpoint, chrono::Utc::now()) {});
}

/// A multicast passes one token bucket, the outbox's: with LINE's (the stand-in's) bucket emptied by other
/// traffic, the outbox over the real client gets 429s, pauses and retries with the same keys until every
/// resident has exactly one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_429s_pause_the_outbox_and_every_multicast_is_delivered_exactly_once() {
    use sonae::delivery::{self, DeliveryConfig, LineSender, NewAlert, Planned};
    let sb = sandbox(Settings::default()).await;
    let c = client_for(&sb, fast_retry());
    drain_sandbox_bucket(&sb, "POST /v2/bot/message/multicast");
    let to: Vec<LineUserId> = (0..60u32).map(|i| user(1000 + i)).collect();
    let text = serde_json::to_value(alert()).unwrap();
    for (i, u) in to.iter().enumerate() {
        let (a, plans) = (
            NewAlert {
                step_key: format!("burst-{i}"),
                source: "test".into(),
                kind: "notice".into(),
                priority: 10,
                summary: "burst".into(),
                detail: json!({}),
            },
            vec![Planned {
                messages: vec![text.clone()],
                recipients: vec![u.as_str().to_string()].into(),
            }],
        );
        c.store
            .write(move |tx| delivery::enqueue(tx, &a, &plans, delivery::now_ms()))
            .await
            .unwrap();
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let cfg = DeliveryConfig {
        backoff_base_ms: 20,
        backoff_cap_ms: 200,
        ..DeliveryConfig::default()
    };
    let task = tokio::spawn(delivery::run_sender(
        c.store.clone(),
        Arc::new(LineSender {
            client: c.client.clone(),
        }),
        cfg,
        c.metrics.clone(),
        c.health.clone(),
        Arc::new(tokio::sync::Notify::new()),
        shutdown.clone(),
    ));
    let start = std::time::Instant::now();
    while stats(&sb).await["deliveries"].as_u64() != Some(60) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not delivered: {}",
            stats(&sb).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let s = stats(&sb).await;
    assert!(
        s["rateLimited"].as_u64().unwrap() > 0,
        "the stand-in answered 429: {s}"
    );
    let limited = c
        .metrics
        .get(
            "sonae_line_requests_total",
            &[("class", "multicast"), ("outcome", "rate_limited")],
        )
        .unwrap_or(0.0);
    assert!(limited > 0.0);
    for u in &to {
        assert_eq!(messages_of(&sb, u).await.len(), 1, "exactly once");
    }
    assert!(!c.client.quota_stopped());
}

#[tokio::test]
async fn a_rate_limited_hourly_endpoint_empties_our_bucket_instead_of_hammering_line() {
    let sb = sandbox(Settings::default()).await;
    let c = client_for(
        &sb,
        RetryPolicy {
            max_attempts: 1,
            max_rate_wait: Duration::from_secs(1),
            ..fast_retry()
        },
    );
    drain_sandbox_bucket(&sb, "POST /v2/bot/message/broadcast");
    let out = c
        .client
        .broadcast(vec![alert()], RetryKey::new())
        .await
        .unwrap();
    let SendOutcome::GaveUp { last_error, .. } = &out else {
        panic!("expected GaveUp, got {out:?}")
    };
    assert!(last_error.contains("rate limit"), "{last_error}");
    assert!(
        !c.client.quota_stopped(),
        "a rate limit is not the monthly limit"
    );
    // Our bucket is empty now (LINE's refills one per minute): the next broadcast waits locally.
    let out = c
        .client
        .broadcast(vec![alert()], RetryKey::new())
        .await
        .unwrap();
    assert!(
        matches!(out, SendOutcome::GaveUp { attempts: 0, .. }),
        "{out:?}"
    );
    assert_eq!(
        endpoint_count(&stats(&sb).await, "POST /v2/bot/message/broadcast"),
        1
    );
}

#[tokio::test]
async fn the_monthly_limit_stops_counted_sends_and_alarms_the_operator() {
    let sb = sandbox(Settings {
        monthly_quota: Some(1),
        ..Settings::default()
    })
    .await;
    let c = client_for(&sb, fast_retry());
    assert!(c
        .client
        .push(user(1).as_str(), vec![alert()], RetryKey::new())
        .await
        .unwrap()
        .is_success());
    let out = c
        .client
        .push(user(2).as_str(), vec![alert()], RetryKey::new())
        .await
        .unwrap();
    assert!(matches!(out, SendOutcome::QuotaExhausted { .. }), "{out:?}");
    assert!(c.client.quota_stopped());
    assert_eq!(c.health.snapshot()["line"].status, Status::Degraded);
    let problems: i64 = c
        .store
        .read(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM problems WHERE source = 'line.client'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(problems, 1);
    // Further counted sends stop here without a request; replies (free) still go out.
    let before = endpoint_count(&stats(&sb).await, "POST /v2/bot/message/multicast");
    let out = c
        .client
        .multicast_once(&[user(3)], vec![alert()], RetryKey::new())
        .await
        .unwrap();
    assert!(matches!(out, SendOutcome::QuotaExhausted { .. }));
    assert_eq!(
        endpoint_count(&stats(&sb).await, "POST /v2/bot/message/multicast"),
        before
    );
}

#[tokio::test]
async fn profile_and_validation_round_trip_through_the_stand_in() {
    let sb = sandbox(Settings::default()).await;
    let c = client_for(&sb, fast_retry());
    c.client
        .validate_messages("push", &every_message())
        .await
        .unwrap();
    // Unknown users are None, not an error.
    let p = c.client.profile(&user(77)).await.unwrap();
    if let Some(p) = p {
        assert_eq!(p.user_id, user(77).as_str());
    }
}

// ------------------------------------------------------------------------------------------ contract

fn every_message() -> Vec<Message> {
    let bubble = FlexBubble {
        header: Some(
            FlexComponent::boxed(
                "vertical",
                vec![FlexComponent::text("【警戒レベル4】避難指示")
                    .prop("weight", "bold")
                    .prop("color", "#FFFFFF")],
            )
            .prop("backgroundColor", "#800080"),
        ),
        body: Some(FlexComponent::boxed(
            "vertical",
            vec![
                FlexComponent::text("山形市 中央地区").prop("wrap", true),
                FlexComponent::separator(),
                FlexComponent::boxed(
                    "baseline",
                    vec![
                        FlexComponent::text("第一小学校").prop("flex", 3),
                        FlexComponent::text("350 m").prop("flex", 1),
                    ],
                ),
            ],
        )),
        footer: Some(FlexComponent::boxed(
            "vertical",
            vec![
                FlexComponent::button(Action::uri(
                    "避難所マップ",
                    "https://bousai.example.lg.jp/shelters",
                ))
                .prop("style", "primary"),
                FlexComponent::button(Action::postback("無事です", "action=safety&status=ok")),
            ],
        )),
        size: Some("mega".into()),
        ..FlexBubble::default()
    };
    vec![
        Message::text("地区を選んでください").with_quick_reply(vec![
            QuickReplyItem::new(Action::location("位置情報を送る")),
            QuickReplyItem::new(Action::postback("中央", "action=register&district=1")),
            QuickReplyItem::new(Action::message("やめる", "やめる")),
        ]),
        Message::flex(
            "【大雨特別警報】山形市",
            FlexContainer::Bubble(Box::new(bubble.clone())),
        ),
        Message::flex(
            "避難所一覧",
            FlexContainer::carousel(vec![bubble.clone(), bubble]),
        ),
        Message::image(
            "https://bousai.example.lg.jp/a.png",
            "https://bousai.example.lg.jp/a-s.png",
        ),
        Message::location("第一小学校", "山形市旅篭町二丁目", 38.2554, 140.3396),
    ]
}

#[test]
fn every_request_body_the_client_produces_matches_lines_openapi_spec() {
    use sonae::line::spec::validate_request;
    let check = |method: &str, path: &str, body: Value| {
        if let Err(e) = validate_request(method, path, &body) {
            panic!("{method} {path}: {e:?}\n{body:#}");
        }
    };
    let msgs = every_message();
    let template = Message::Template(TemplateMessage {
        alt_text: "確認".into(),
        template: json!({"type":"confirm","text":"避難しましたか？","actions":[
            {"type":"postback","label":"はい","data":"action=evac&v=1"},{"type":"postback","label":"いいえ","data":"action=evac&v=0"}]}),
        common: Default::default(),
    });
    for m in msgs.iter().chain(std::iter::once(&template)) {
        check(
            "POST",
            "/v2/bot/message/push",
            serde_json::to_value(PushRequest {
                to: user(1).as_str().into(),
                messages: vec![m.clone()],
                notification_disabled: false,
            })
            .unwrap(),
        );
        check(
            "POST",
            "/v2/bot/message/reply",
            serde_json::to_value(ReplyRequest {
                reply_token: "rt".into(),
                messages: vec![m.clone()],
                notification_disabled: false,
            })
            .unwrap(),
        );
        check(
            "POST",
            "/v2/bot/message/multicast",
            serde_json::to_value(MulticastRequest {
                to: vec![user(1).as_str().into(), user(2).as_str().into()],
                messages: vec![m.clone()],
                notification_disabled: false,
            })
            .unwrap(),
        );
        check(
            "POST",
            "/v2/bot/message/broadcast",
            serde_json::to_value(BroadcastRequest {
                messages: vec![m.clone()],
                notification_disabled: true,
            })
            .unwrap(),
        );
    }
    check(
        "POST",
        "/v2/bot/message/push",
        serde_json::to_value(PushRequest {
            to: user(1).as_str().into(),
            messages: msgs.clone(),
            notification_disabled: false,
        })
        .unwrap(),
    );
    for t in richmenu::embedded_templates("https://bousai.example.lg.jp").unwrap() {
        check(
            "POST",
            "/v2/bot/richmenu",
            serde_json::to_value(t.request()).unwrap(),
        );
        check(
            "POST",
            "/v2/bot/richmenu/validate",
            serde_json::to_value(t.request()).unwrap(),
        );
    }
    check(
        "POST",
        "/v2/bot/richmenu/alias",
        serde_json::to_value(RichMenuAlias {
            rich_menu_alias_id: "sonae-emergency".into(),
            rich_menu_id: "richmenu-1".into(),
        })
        .unwrap(),
    );
    check(
        "POST",
        "/v2/bot/richmenu/alias/sonae-emergency",
        serde_json::to_value(UpdateRichMenuAlias {
            rich_menu_id: "richmenu-2".into(),
        })
        .unwrap(),
    );
    check(
        "POST",
        "/v2/bot/richmenu/bulk/link",
        serde_json::to_value(BulkLinkRequest {
            rich_menu_id: "richmenu-1".into(),
            user_ids: vec![user(1).as_str().into()],
        })
        .unwrap(),
    );
    check(
        "POST",
        "/v2/bot/richmenu/bulk/unlink",
        serde_json::to_value(BulkUnlinkRequest {
            user_ids: vec![user(1).as_str().into()],
        })
        .unwrap(),
    );
    let batch = BatchRequest {
        operations: vec![
            BatchOperation::Link {
                from: "richmenu-a".into(),
                to: "richmenu-e".into(),
            },
            BatchOperation::Link {
                from: "richmenu-b".into(),
                to: "richmenu-e".into(),
            },
        ],
        resume_request_key: Some(uuid::Uuid::new_v4().simple().to_string()),
    };
    check(
        "POST",
        "/v2/bot/richmenu/batch",
        serde_json::to_value(&batch).unwrap(),
    );
    check(
        "POST",
        "/v2/bot/richmenu/validate/batch",
        serde_json::to_value(&batch).unwrap(),
    );
    check(
        "POST",
        "/v2/bot/message/validate/push",
        json!({ "messages": msgs }),
    );
}

// ------------------------------------------------------------------------------------------ rich menus

#[tokio::test]
async fn rich_menu_sync_creates_everything_once_and_a_second_sync_changes_nothing() {
    let sb = sandbox(Settings::default()).await;
    let c = client_for(&sb, fast_retry());
    let templates = richmenu::embedded_templates("https://bousai.example.lg.jp").unwrap();
    let first = richmenu::sync(&c.client, &c.store, &templates)
        .await
        .unwrap();
    assert_eq!(first.created.len(), 4, "{first:?}");
    assert_eq!(first.images_uploaded.len(), 4);
    assert_eq!(first.aliases_created.len(), 4);
    assert_eq!(first.default_set.as_deref(), Some("normal-a"));
    let second = richmenu::sync(&c.client, &c.store, &templates)
        .await
        .unwrap();
    assert!(second.changed_nothing(), "{second:?}");
    assert_eq!(c.client.list_rich_menus().await.unwrap().len(), 4);
    assert_eq!(c.client.list_aliases().await.unwrap().len(), 4);
    let stored: i64 = c
        .store
        .read(|x| {
            Ok(x.query_row(
                "SELECT count(*) FROM line_richmenus WHERE image_uploaded = 1",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(stored, 4);
}

#[tokio::test]
async fn sync_adopts_a_menu_created_before_a_crash_and_leaves_foreign_menus_alone() {
    let sb = sandbox(Settings::default()).await;
    let c = client_for(&sb, fast_retry());
    let templates = richmenu::embedded_templates("https://bousai.example.lg.jp").unwrap();
    // Someone else's menu on the account, and our emergency menu created by a sync that crashed before
    // writing its id down.
    let foreign = c
        .client
        .create_rich_menu(&RichMenuRequest {
            name: "観光案内".into(),
            ..templates[0].template.richmenu.clone()
        })
        .await
        .unwrap();
    let em = templates
        .iter()
        .find(|t| t.template.key == "emergency")
        .unwrap();
    let orphan = c.client.create_rich_menu(&em.request()).await.unwrap();
    let report = richmenu::sync(&c.client, &c.store, &templates)
        .await
        .unwrap();
    assert_eq!(report.adopted, vec!["emergency".to_string()]);
    assert_eq!(report.created.len(), 3);
    let ids: Vec<String> = c
        .client
        .list_rich_menus()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.rich_menu_id)
        .collect();
    assert_eq!(ids.len(), 5);
    assert!(ids.contains(&foreign) && ids.contains(&orphan));
}

async fn synced(sb: &SandboxHandle) -> Client {
    let c = client_for(sb, fast_retry());
    let templates = richmenu::embedded_templates("https://bousai.example.lg.jp").unwrap();
    richmenu::sync(&c.client, &c.store, &templates)
        .await
        .unwrap();
    c
}

fn fast_poll() -> PollPlan {
    PollPlan {
        first: Duration::from_millis(200),
        max: Duration::from_secs(1),
        timeout: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn an_account_switch_reaches_users_with_per_user_links_and_switches_back() {
    let sb = sandbox(Settings {
        batch_duration: chrono::Duration::milliseconds(300),
        ..Settings::default()
    })
    .await;
    let c = synced(&sb).await;
    let (tab_user, linked_user, plain_user) = (user(10), user(11), user(12));
    // A resident taps the 防災 tab: LINE gives them a per-user link to normal-b.
    post(
        format!("{}/sandbox/users/{}/events", sb.url(), tab_user.as_str()),
        json!({"type":"follow"}),
    )
    .await;
    post(
        format!(
            "{}/sandbox/users/{}/richmenuswitch",
            sb.url(),
            tab_user.as_str()
        ),
        json!({"richMenuAliasId":"sonae-normal-b"}),
    )
    .await;
    let normal_a = richmenu::entry_menu(&c.store, Mode::Normal)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown_menu(&sb, &tab_user).await.1, "user");
    assert_ne!(
        shown_menu(&sb, &tab_user).await.0.as_deref(),
        Some(normal_a.as_str()),
        "on the second tab"
    );
    // Another was linked by Sonae on follow; a third only sees the default.
    post(
        format!("{}/sandbox/users/{}/events", sb.url(), linked_user.as_str()),
        json!({"type":"follow"}),
    )
    .await;
    post(
        format!("{}/sandbox/users/{}/events", sb.url(), plain_user.as_str()),
        json!({"type":"follow"}),
    )
    .await;
    c.client
        .link_rich_menu(&linked_user, &normal_a)
        .await
        .unwrap();

    let report = richmenu::switch_with(&c.client, &c.store, Mode::Disaster, &fast_poll())
        .await
        .unwrap();
    let emergency = richmenu::entry_menu(&c.store, Mode::Disaster)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&report.method, SwitchMethod::Batch { phase, .. } if phase == "succeeded"),
        "{report:?}"
    );
    for u in [&tab_user, &linked_user, &plain_user] {
        assert_eq!(
            shown_menu(&sb, u).await.0.as_deref(),
            Some(emergency.as_str()),
            "{u}"
        );
    }
    assert_eq!(
        richmenu::current_mode(&c.store).await.unwrap(),
        Mode::Disaster
    );

    let back = richmenu::switch_with(&c.client, &c.store, Mode::Normal, &fast_poll())
        .await
        .unwrap();
    assert!(
        matches!(back.method, SwitchMethod::Batch { .. }),
        "{back:?}"
    );
    for u in [&tab_user, &linked_user, &plain_user] {
        assert_eq!(
            shown_menu(&sb, u).await.0.as_deref(),
            Some(normal_a.as_str()),
            "{u}"
        );
    }
}

#[tokio::test]
async fn a_snow_emergency_moves_everyone_to_the_snow_variant_with_the_plow_map_and_back() {
    let sb = sandbox(Settings {
        batch_duration: chrono::Duration::milliseconds(300),
        ..Settings::default()
    })
    .await;
    let c = synced(&sb).await;
    let normal_a = richmenu::entry_menu(&c.store, Mode::Normal)
        .await
        .unwrap()
        .unwrap();
    let (linked, plain) = (user(20), user(21));
    for u in [&linked, &plain] {
        post(
            format!("{}/sandbox/users/{}/events", sb.url(), u.as_str()),
            json!({"type":"follow"}),
        )
        .await;
    }
    c.client.link_rich_menu(&linked, &normal_a).await.unwrap();
    // Disaster mode first (rain), then snow becomes the emergency.
    richmenu::switch_with(&c.client, &c.store, Mode::Disaster, &fast_poll())
        .await
        .unwrap();
    let snow = richmenu::MenuSet {
        mode: Mode::Disaster,
        variant: "snow".into(),
    };
    let report = richmenu::switch_set_with(&c.client, &c.store, &snow, &fast_poll())
        .await
        .unwrap();
    assert_eq!(report.variant, "snow");
    assert!(
        matches!(&report.method, SwitchMethod::Batch { phase, .. } if phase == "succeeded"),
        "{report:?}"
    );
    let (_, snow_menu) = richmenu::entry_of(&c.store, &snow).await.unwrap().unwrap();
    for u in [&linked, &plain] {
        assert_eq!(
            shown_menu(&sb, u).await.0.as_deref(),
            Some(snow_menu.as_str()),
            "{u}"
        );
    }
    let areas = sb.with_state(|s| s.shown_areas(linked.as_str()));
    let labels: Vec<&str> = areas
        .iter()
        .filter_map(|a| a["action"]["label"].as_str())
        .collect();
    assert!(
        labels.contains(&"除雪車マップ") && labels.contains(&"避難所マップ"),
        "{labels:?}"
    );
    assert!(!labels.contains(&"キキクル"), "{labels:?}");
    assert_eq!(richmenu::current_menu_set(&c.store).await.unwrap(), snow);
    // Back to normal: from the snow variant too.
    richmenu::switch_with(&c.client, &c.store, Mode::Normal, &fast_poll())
        .await
        .unwrap();
    for u in [&linked, &plain] {
        assert_eq!(
            shown_menu(&sb, u).await.0.as_deref(),
            Some(normal_a.as_str()),
            "{u}"
        );
    }
}

#[tokio::test]
async fn without_batch_budget_the_switch_bulk_links_the_tracked_users() {
    let sb = sandbox(Settings::default()).await;
    let c = synced(&sb).await;
    let normal_a = richmenu::entry_menu(&c.store, Mode::Normal)
        .await
        .unwrap()
        .unwrap();
    let users: Vec<LineUserId> = (0..620).map(|i| user(5000 + i)).collect();
    for u in &users {
        post(
            format!("{}/sandbox/users/{}/events", sb.url(), u.as_str()),
            json!({"type":"follow"}),
        )
        .await;
    }
    for chunk in users.chunks(500) {
        c.client.bulk_link(&normal_a, chunk).await.unwrap();
    }
    for u in &users {
        richmenu::track_link(&c.store, u.as_str(), &normal_a)
            .await
            .unwrap();
    }
    // Two batch requests already went out in the past hour: entering emergency must keep the last one.
    c.store
        .write(|tx| {
            for _ in 0..2 {
                tx.execute(
                    "INSERT INTO line_richmenu_switches (started_at, to_mode, method, batch_sent_at) VALUES (?1, 'emergency', 'batch', ?1)",
                    [chrono::Utc::now().to_rfc3339()],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let report = richmenu::switch_with(&c.client, &c.store, Mode::Disaster, &fast_poll())
        .await
        .unwrap();
    assert_eq!(
        report.method,
        SwitchMethod::BulkLink {
            users: 620,
            requests: 2,
            reason: "batch budget: 2 of 3 used in the past hour".into()
        }
    );
    assert_eq!(
        endpoint_count(&stats(&sb).await, "POST /v2/bot/richmenu/batch"),
        0
    );
    let emergency = richmenu::entry_menu(&c.store, Mode::Disaster)
        .await
        .unwrap()
        .unwrap();
    for u in [&users[0], &users[499], &users[619]] {
        assert_eq!(
            shown_menu(&sb, u).await.0.as_deref(),
            Some(emergency.as_str())
        );
    }
    // The switch back still has its batch request.
    let back = richmenu::switch_with(&c.client, &c.store, Mode::Normal, &fast_poll())
        .await
        .unwrap();
    assert!(
        matches!(back.method, SwitchMethod::Batch { .. }),
        "{back:?}"
    );
}

// ------------------------------------------------------------------------------------------ webhook

struct TestDaemon {
    addr: std::net::SocketAddr,
    ctx: Context,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestDaemon {
    async fn start(sb: &SandboxHandle) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[store]\npath = \"{}\"\n[line]\napi_base = \"{u}\"\napi_data_base = \"{u}\"\nwebhook_body_limit_bytes = 4096\n[place]\nenabled = false\n",
            dir.path().join("sonae.db").display(),
            u = sb.url()
        );
        let config = Config::parse(&text).unwrap();
        let secrets = Secrets {
            line_channel_secret: Secret::new(SECRET),
            line_channel_access_token: Secret::new(TOKEN),
            api_token: None,
        };
        let app = Application::build(config, secrets).await.unwrap();
        let addr = app.local_addr();
        let ctx = app.context().clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            app.run_until_stopped(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        sb.set_webhook_url(&format!("http://{addr}/webhook"));
        TestDaemon {
            addr,
            ctx,
            stop: Some(tx),
            task,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    async fn post_raw(&self, body: &[u8], signature: Option<String>) -> u16 {
        let mut r = reqwest::Client::new()
            .post(self.url())
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(s) = signature {
            r = r.header("x-line-signature", s);
        }
        r.send().await.unwrap().status().as_u16()
    }

    async fn post_signed(&self, events: Value) -> u16 {
        let body = serde_json::to_vec(
            &json!({"destination": "U5a0d0e0b0a0e0d0b0e0e0f0a0c0e0d00", "events": events}),
        )
        .unwrap();
        self.post_raw(&body, Some(sign(SECRET, &body))).await
    }

    async fn count(&self, sql: &'static str) -> i64 {
        self.ctx
            .infra
            .store
            .read(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    /// Waits (bounded) until no stored event is pending.
    async fn drained(&self) {
        for _ in 0..200 {
            if self
                .count("SELECT count(*) FROM line_webhook_events WHERE state = 'pending'")
                .await
                == 0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("webhook events still pending");
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.task.await;
    }
}

fn rejected(d: &TestDaemon, reason: &str) -> f64 {
    d.ctx
        .infra
        .metrics
        .get("sonae_line_webhook_requests_total", &[("result", reason)])
        .unwrap_or(0.0)
}

#[tokio::test]
async fn webhook_signatures_are_checked_over_the_exact_body_before_anything_else() {
    let sb = sandbox(Settings::default()).await;
    let d = TestDaemon::start(&sb).await;
    let body = br#"{"destination":"U5a0d0e0b0a0e0d0b0e0e0f0a0c0e0d00","events":[{"type":"follow","webhookEventId":"01SIG","timestamp":1,"mode":"active","source":{"type":"user","userId":"U00000000000000000000000000000001"},"deliveryContext":{"isRedelivery":false}}]}"#;
    assert_eq!(d.post_raw(body, Some(sign(SECRET, body))).await, 200);
    let mut mutated = body.to_vec();
    mutated[body.len() - 10] = b'X';
    assert_eq!(d.post_raw(&mutated, Some(sign(SECRET, body))).await, 401);
    assert_eq!(
        d.post_raw(body, Some(sign("another-secret", body))).await,
        401
    );
    assert_eq!(d.post_raw(body, None).await, 401);
    // Garbage that is not even JSON is refused on its signature, never parsed.
    assert_eq!(
        d.post_raw(b"\x00\xffnot json", Some("bm9wZQ==".into()))
            .await,
        401
    );
    // Signed garbage is a 400.
    assert_eq!(
        d.post_raw(b"[1,2,3]", Some(sign(SECRET, b"[1,2,3]"))).await,
        400
    );
    assert_eq!(rejected(&d, "signature_mismatch"), 2.0);
    assert_eq!(rejected(&d, "signature_missing"), 1.0);
    assert_eq!(rejected(&d, "signature_malformed"), 1.0);
    assert_eq!(rejected(&d, "bad_json"), 1.0);
    // Only the valid request stored anything; rejections are operator-visible problems.
    assert_eq!(d.count("SELECT count(*) FROM line_webhook_events").await, 1);
    assert!(
        d.count("SELECT count(*) FROM problems WHERE source = 'line.webhook'")
            .await
            >= 2
    );
    // A resident's event signed by the stand-in passes; one it signs with a wrong secret does not.
    let ok = post(
        format!("{}/sandbox/users/{}/events", sb.url(), user(9).as_str()),
        json!({"type":"text","text":"こんにちは"}),
    )
    .await;
    assert_eq!(ok["webhookStatus"], 200, "{ok}");
    let bad = post(
        format!("{}/sandbox/users/{}/events", sb.url(), user(9).as_str()),
        json!({"type":"text","text":"x","badSignature":true}),
    )
    .await;
    assert_eq!(bad["webhookStatus"], 401, "{bad}");
    d.stop().await;
}

#[tokio::test]
async fn an_oversized_webhook_body_gets_413_declared_or_streamed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sb = sandbox(Settings::default()).await;
    let d = TestDaemon::start(&sb).await;
    let big = vec![b' '; 5000];
    assert_eq!(d.post_raw(&big, Some(sign(SECRET, &big))).await, 413);
    // Chunked, no Content-Length: the limit applies while reading.
    let mut s = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let head = format!("POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Line-Signature: {}\r\nConnection: close\r\n\r\n", sign(SECRET, &big));
    s.write_all(head.as_bytes()).await.unwrap();
    for chunk in big.chunks(1000) {
        let _ = s
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await;
        let _ = s.write_all(chunk).await;
        let _ = s.write_all(b"\r\n").await;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    assert!(
        String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    assert_eq!(rejected(&d, "too_large"), 2.0);
    d.stop().await;
}

#[tokio::test]
async fn duplicate_and_redelivered_events_are_processed_once_and_unknown_types_are_ignored() {
    let sb = sandbox(Settings::default()).await;
    let d = TestDaemon::start(&sb).await;
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s2 = seen.clone();
    d.ctx.line.events.register(
        sonae::line::events::Route::Text,
        sonae::line::events::handler_fn(move |_ev| {
            let s = s2.clone();
            async move {
                s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(sonae::line::events::Claim::Handled)
            }
        }),
    );
    let r = post(
        format!("{}/sandbox/users/{}/events", sb.url(), user(20).as_str()),
        json!({"type":"text","text":"避難所は？"}),
    )
    .await;
    assert_eq!(r["webhookStatus"], 200, "{r}");
    d.drained().await;
    let id: String = d
        .ctx
        .infra
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT webhook_event_id FROM line_webhook_events WHERE kind = 'message'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    let again = post(
        format!("{}/sandbox/webhook/redeliver", sb.url()),
        json!({"webhookEventId": id}),
    )
    .await;
    assert_eq!(again["webhookStatus"], 200, "{again}");
    let unknown = json!([{"type":"quantumEntanglement","webhookEventId":"01UNKNOWN","timestamp":5,"mode":"active","deliveryContext":{"isRedelivery":false},"spin":"up"}]);
    assert_eq!(d.post_signed(unknown.clone()).await, 200);
    assert_eq!(d.post_signed(unknown).await, 200);
    d.drained().await;
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        d.count("SELECT count(*) FROM line_webhook_events WHERE kind = 'message'")
            .await,
        1
    );
    assert_eq!(d.count("SELECT count(*) FROM line_webhook_events WHERE kind = 'quantumEntanglement' AND state = 'ignored'").await, 1);
    assert_eq!(
        d.ctx.infra.metrics.get(
            "sonae_line_webhook_events_total",
            &[("kind", "other"), ("result", "duplicate")]
        ),
        Some(1.0)
    );
    d.stop().await;
}

#[tokio::test]
async fn an_unfollow_that_arrives_before_an_older_follow_wins() {
    let sb = sandbox(Settings::default()).await;
    let d = TestDaemon::start(&sb).await;
    let u = user(30);
    let ev = |kind: &str, id: &str, ts: i64| {
        json!({"type": kind, "webhookEventId": id, "timestamp": ts, "mode": "active",
        "source": {"type":"user","userId": u.as_str()}, "deliveryContext": {"isRedelivery": false}})
    };
    assert_eq!(
        d.post_signed(json!([ev("unfollow", "01B", 2_000)])).await,
        200
    );
    d.drained().await;
    assert_eq!(
        d.post_signed(json!([ev("follow", "01A", 1_000)])).await,
        200
    );
    d.drained().await;
    assert_eq!(d.count("SELECT following FROM line_users").await, 0);
    // A later follow (re-added as a friend) does apply.
    assert_eq!(
        d.post_signed(json!([ev("follow", "01C", 3_000)])).await,
        200
    );
    d.drained().await;
    assert_eq!(d.count("SELECT following FROM line_users").await, 1);
    d.stop().await;
}

#[tokio::test]
async fn a_new_follower_is_linked_to_the_menu_of_the_current_mode() {
    let sb = sandbox(Settings {
        batch_duration: chrono::Duration::milliseconds(100),
        ..Settings::default()
    })
    .await;
    let d = TestDaemon::start(&sb).await;
    let templates = richmenu::embedded_templates("http://127.0.0.1:8080").unwrap();
    richmenu::sync(&d.ctx.line.client, &d.ctx.infra.store, &templates)
        .await
        .unwrap();
    richmenu::switch_with(
        &d.ctx.line.client,
        &d.ctx.infra.store,
        Mode::Disaster,
        &fast_poll(),
    )
    .await
    .unwrap();
    let u = user(40);
    let r = post(
        format!("{}/sandbox/users/{}/events", sb.url(), u.as_str()),
        json!({"type":"follow"}),
    )
    .await;
    assert_eq!(r["webhookStatus"], 200);
    d.drained().await;
    let emergency = richmenu::entry_menu(&d.ctx.infra.store, Mode::Disaster)
        .await
        .unwrap();
    assert_eq!(
        shown_menu(&sb, &u).await,
        (emergency.clone(), "user".to_string())
    );
    assert_eq!(
        richmenu::tracked_links(&d.ctx.infra.store)
            .await
            .unwrap()
            .get(&emergency.unwrap()),
        Some(&1)
    );
    // A tab tap is tracked as a per-user link too.
    richmenu::switch_with(
        &d.ctx.line.client,
        &d.ctx.infra.store,
        Mode::Normal,
        &fast_poll(),
    )
    .await
    .unwrap();
    let r = post(
        format!("{}/sandbox/users/{}/richmenuswitch", sb.url(), u.as_str()),
        json!({"richMenuAliasId":"sonae-normal-b"}),
    )
    .await;
    assert_eq!(r["webhookStatus"], 200, "{r}");
    d.drained().await;
    let normal_b: String = d
        .ctx
        .infra
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT rich_menu_id FROM line_richmenus WHERE template_key = 'normal-b'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(
        richmenu::tracked_links(&d.ctx.infra.store)
            .await
            .unwrap()
            .get(&normal_b),
        Some(&1)
    );
    d.stop().await;
}

// ------------------------------------------------------------------------------------------ CLI

async fn run_sonae(args: &[&str]) -> (i32, Value, String) {
    let out = tokio::process::Command::new(crate::helpers::SONAE)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn sonae_richmenu_sync_on_the_command_line_is_idempotent_and_switch_moves_the_account() {
    let sb = Sandbox::start(SandboxConfig {
        access_token: "test-access-token".into(),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = crate::helpers::write_config(
        dir.path(),
        "127.0.0.1:1".parse().unwrap(),
        &format!("api_base = \"{0}\"\napi_data_base = \"{0}\"\n", sb.url()),
    );
    crate::helpers::migrate(&config);
    let config = config.to_str().unwrap();
    let (code, first, err) =
        run_sonae(&["richmenu", "sync", "--format", "json", "--config", config]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        first["created"],
        json!(["normal-a", "normal-b", "emergency", "emergency-snow"])
    );
    assert_eq!(first["default_set"], "normal-a");
    let (code, second, err) =
        run_sonae(&["richmenu", "sync", "--format", "json", "--config", config]).await;
    assert_eq!(code, 0, "{err}");
    for k in [
        "created",
        "adopted",
        "images_uploaded",
        "aliases_created",
        "aliases_updated",
    ] {
        assert_eq!(second[k], json!([]), "{k}: {second}");
    }
    assert_eq!(second["default_set"], Value::Null);
    assert_eq!(second["unchanged"].as_array().map(Vec::len), Some(4));
    let (code, sw, err) = run_sonae(&[
        "richmenu",
        "switch",
        "--format",
        "json",
        "-c",
        config,
        "emergency",
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(sw["mode"], "emergency");
    let default = stats(&sb).await["defaultRichMenuId"]
        .as_str()
        .map(str::to_string);
    assert_eq!(default.as_deref(), sw["default_menu"].as_str());
    let (code, _, err) = run_sonae(&["richmenu", "switch", "--config", config, "panic"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"panic\" is not a mode"), "{err}");
}

#[tokio::test]
async fn text_location_and_image_events_reach_their_handlers_which_reply_and_download_the_photo() {
    use sonae::line::client::Content;
    use sonae::line::events::{handler_fn, Claim, Route};
    use std::sync::Mutex;
    let sb = sandbox(Settings::default()).await;
    let d = TestDaemon::start(&sb).await;
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let g = got.clone();
    let client = d.ctx.line.client.clone();
    d.ctx.line.events.register(
        Route::Text,
        handler_fn(move |ev| {
            let (g, client) = (g.clone(), client.clone());
            async move {
                let text = ev.message.and_then(|m| m.text).unwrap_or_default();
                g.lock().unwrap().push(format!("text:{text}"));
                let token = ev.reply_token.unwrap_or_default();
                let out = client
                    .reply(&token, vec![Message::text("受け付けました")])
                    .await?;
                anyhow::ensure!(out.is_success(), "reply: {out:?}");
                Ok(Claim::Handled)
            }
        }),
    );
    let g = got.clone();
    d.ctx.line.events.register(
        Route::Location,
        handler_fn(move |ev| {
            let g = g.clone();
            async move {
                let m = ev.message.unwrap_or_default();
                g.lock()
                    .unwrap()
                    .push(format!("location:{:?},{:?}", m.latitude, m.longitude));
                Ok(Claim::Handled)
            }
        }),
    );
    let g = got.clone();
    let client = d.ctx.line.client.clone();
    d.ctx.line.events.register(
        Route::Image,
        handler_fn(move |ev| {
            let (g, client) = (g.clone(), client.clone());
            async move {
                let id = ev.message.map(|m| m.id).unwrap_or_default();
                match client.content(&id, 10_000_000).await? {
                    Content::Ready {
                        content_type,
                        bytes,
                    } => {
                        anyhow::ensure!(bytes.starts_with(b"\x89PNG"), "not the photo");
                        g.lock().unwrap().push(format!("image:{content_type}"));
                    }
                    other => anyhow::bail!("content: {other:?}"),
                }
                Ok(Claim::Handled)
            }
        }),
    );
    let u = user(50);
    let ev = |body: Value| {
        post(
            format!("{}/sandbox/users/{}/events", sb.url(), u.as_str()),
            body,
        )
    };
    assert_eq!(
        ev(json!({"type":"text","text":"道路が陥没しています"})).await["webhookStatus"],
        200
    );
    assert_eq!(
        ev(json!({"type":"location","latitude":38.2554,"longitude":140.3396})).await
            ["webhookStatus"],
        200
    );
    assert_eq!(ev(json!({"type":"image"})).await["webhookStatus"], 200);
    d.drained().await;
    let mut got = got.lock().unwrap().clone();
    got.sort();
    assert_eq!(
        got,
        vec![
            "image:image/png".to_string(),
            "location:Some(38.2554),Some(140.3396)".to_string(),
            "text:道路が陥没しています".to_string(),
        ]
    );
    // The reply went out once, accepted (the handler checks the outcome).
    assert_eq!(
        stats(&sb).await["endpoints"]["POST /v2/bot/message/reply"]["200"],
        1
    );
    assert_eq!(
        d.count("SELECT count(*) FROM line_webhook_events WHERE state = 'done'")
            .await,
        3
    );
    d.stop().await;
}

#[test]
fn sonae_richmenu_images_redraws_the_committed_pngs_and_refuses_a_label_the_font_cannot_draw() {
    let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/richmenus"));
    let dir = tempfile::tempdir().unwrap();
    for name in ["normal-a", "normal-b", "emergency", "emergency-snow"] {
        std::fs::copy(
            src.join(format!("{name}.json")),
            dir.path().join(format!("{name}.json")),
        )
        .unwrap();
    }
    let run = || {
        std::process::Command::new(crate::helpers::SONAE)
            .args(["richmenu", "images"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let emergency = dir.path().join("emergency.png");
    let png = std::fs::read(&emergency).unwrap();
    assert!(png.len() < 1_000_000);
    // The generated images are the ones the binary embeds (same template, same pixels).
    let embedded = richmenu::embedded_templates("http://x").unwrap();
    let committed = &embedded
        .iter()
        .find(|t| t.template.key == "emergency")
        .unwrap()
        .png;
    assert_eq!(&png, committed);

    // 避難場所: 場 is not in the font subset; the step fails naming it and writes nothing.
    let json = dir.path().join("normal-b.json");
    let text = std::fs::read_to_string(&json).unwrap();
    std::fs::write(
        &json,
        text.replacen("\"避難所マップ\"", "\"避難場所マップ\"", 1),
    )
    .unwrap();
    std::fs::remove_file(&emergency).unwrap();
    let out = run();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'場' (U+5834)"), "{err}");
    assert!(err.contains("normal-b"), "{err}");
    assert!(!emergency.exists(), "a failed run wrote an image");
}
