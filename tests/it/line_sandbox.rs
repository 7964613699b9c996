//! The local LINE stand-in over real HTTP: every limit and semantic it promises, and its responses against
//! the official OpenAPI response schemas.

use std::sync::{Arc, Mutex};

use ::reqwest::{Client, Method};
use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::{json, Value};
use sonae::line::sandbox::{limits, Faults, Sandbox, SandboxConfig, SandboxHandle, Settings};
use sonae::line::spec;

const TOKEN: &str = "sandbox-access-token";
const SECRET: &str = "sandbox-channel-secret";

fn uid(n: u32) -> String {
    format!("U{n:032x}")
}

fn text(s: &str) -> Value {
    json!({"type": "text", "text": s})
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

struct Resp {
    status: u16,
    body: Value,
    headers: ::reqwest::header::HeaderMap,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }
}

/// A stand-in plus a client that checks every JSON response of a LINE endpoint against the spec.
struct Sb {
    h: SandboxHandle,
    c: Client,
    /// (method, path, status) of every call, for the contract test's coverage check.
    calls: Mutex<Vec<(String, String, u16)>>,
}

impl Sb {
    async fn start() -> Sb {
        Sb::with(SandboxConfig::default()).await
    }

    async fn with(cfg: SandboxConfig) -> Sb {
        Sb {
            h: Sandbox::start(cfg).await.expect("stand-in starts"),
            c: Client::new(),
            calls: Mutex::new(Vec::new()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.h.url(), path)
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, ::reqwest::Error> {
        let mut rb = self.c.request(method.clone(), self.url(path));
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            rb = rb.header("authorization", format!("Bearer {TOKEN}"));
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let r = rb.send().await?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let is_json = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"));
        let bytes = r.bytes().await?;
        let body = if is_json {
            serde_json::from_slice(&bytes).expect("JSON body parses")
        } else {
            Value::Null
        };
        if path.starts_with("/v2/") {
            assert!(
                headers.contains_key("x-line-request-id"),
                "{method} {path}: every LINE response carries X-Line-Request-Id"
            );
            if is_json || status >= 400 {
                if let Err(e) = spec::validate_response(method.as_str(), path, status, &body) {
                    panic!("{method} {path} {status} {body} breaks the spec: {e:?}");
                }
            }
            self.calls
                .lock()
                .unwrap()
                .push((method.to_string(), path.to_string(), status));
        }
        Ok(Resp {
            status,
            body,
            headers,
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call_h(method, path, body, &[]).await
    }

    async fn call_h(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut h = headers.to_vec();
        if body.is_some() {
            h.push(("content-type", "application/json"));
        }
        self.raw(method, path, body.map(|b| b.to_string().into_bytes()), &h)
            .await
            .expect("request completes")
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    async fn push(&self, to: &str, msgs: Value, retry_key: Option<&str>) -> Resp {
        let h: Vec<(&str, &str)> = retry_key
            .map(|k| vec![("x-line-retry-key", k)])
            .unwrap_or_default();
        self.call_h(
            Method::POST,
            "/v2/bot/message/push",
            Some(json!({"to": to, "messages": msgs})),
            &h,
        )
        .await
    }

    async fn sandbox(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut rb = self.c.request(method, self.url(path));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("sandbox call");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.expect("sandbox JSON")
    }

    async fn received(&self, user: &str) -> Vec<Value> {
        let v = self
            .sandbox(
                Method::GET,
                &format!("/sandbox/users/{user}/messages"),
                None,
            )
            .await;
        v["messages"].as_array().cloned().unwrap_or_default()
    }

    async fn advance(&self, seconds: i64) {
        self.sandbox(
            Method::POST,
            "/sandbox/clock/advance",
            Some(json!({"seconds": seconds})),
        )
        .await;
    }

    async fn event(&self, user: &str, ev: Value) -> Value {
        self.sandbox(
            Method::POST,
            &format!("/sandbox/users/{user}/events"),
            Some(ev),
        )
        .await
    }

    async fn stats(&self) -> Value {
        self.sandbox(Method::GET, "/sandbox/stats", None).await
    }

    /// Creates a 2500×843 menu with the given areas and uploads its image.
    async fn menu(&self, name: &str, areas: Value) -> String {
        let r = self
            .post(
                "/v2/bot/richmenu",
                json!({"size": {"width": 2500, "height": 843}, "selected": true, "name": name, "chatBarText": "メニュー", "areas": areas}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let id = r.body["richMenuId"].as_str().unwrap().to_string();
        let up = self
            .raw(
                Method::POST,
                &format!("/v2/bot/richmenu/{id}/content"),
                Some(limits::png_header(2500, 843)),
                &[("content-type", "image/png")],
            )
            .await
            .unwrap();
        assert_eq!(up.status, 200, "{}", up.body);
        id
    }

    async fn shown(&self, user: &str) -> (Value, String) {
        let v = self
            .sandbox(
                Method::GET,
                &format!("/sandbox/users/{user}/richmenu"),
                None,
            )
            .await;
        (
            v["richMenuId"].clone(),
            v["source"].as_str().unwrap().to_string(),
        )
    }
}

/// A webhook receiver: records every request and answers 200.
struct Hook {
    url: String,
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Hook {
    async fn start() -> Hook {
        let got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
        let g = got.clone();
        let app = axum::Router::new().route(
            "/webhook",
            axum::routing::post(move |h: HeaderMap, b: Bytes| {
                let g = g.clone();
                async move {
                    g.lock().unwrap().push((h, b));
                    "ok"
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        Hook { url, got }
    }

    /// The last webhook body, after checking its signature and its schema.
    fn last(&self) -> Value {
        let (h, b) = self
            .got
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a webhook arrived");
        let sig = h["x-line-signature"].to_str().unwrap();
        assert_eq!(
            sig,
            sonae::line::sandbox::http::sign(SECRET, &b),
            "signed over the raw body"
        );
        let v: Value = serde_json::from_slice(&b).unwrap();
        spec::validate_schema("webhook:CallbackRequest", &v)
            .expect("webhook body matches webhook.yml");
        v
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_is_recorded_for_the_user_with_its_request_id_and_retry_key() {
    let sb = Sb::start().await;
    let k = key();
    let r = sb
        .push(&uid(1), json!([text("避難してください")]), Some(&k))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["sentMessages"][0]["id"].is_string());
    let got = sb.received(&uid(1)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["message"]["text"], "避難してください");
    assert_eq!(got[0]["retryKey"], json!(k));
    assert_eq!(
        got[0]["requestId"],
        json!(r.header("x-line-request-id").unwrap())
    );
    assert!(sb.received(&uid(2)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_retry_key_gets_409_with_the_accepted_request_id_and_delivers_nothing_more() {
    let sb = Sb::start().await;
    let k = key();
    let to: Vec<String> = (1..=3).map(uid).collect();
    let body = json!({"to": to, "messages": [text("a")]});
    let first = sb
        .call_h(
            Method::POST,
            "/v2/bot/message/multicast",
            Some(body.clone()),
            &[("x-line-retry-key", &k)],
        )
        .await;
    assert_eq!(first.status, 200);
    let again = sb
        .call_h(
            Method::POST,
            "/v2/bot/message/multicast",
            Some(body),
            &[("x-line-retry-key", &k)],
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["message"], "The retry key is already accepted");
    assert_eq!(
        again.header("x-line-accepted-request-id"),
        first.header("x-line-request-id")
    );
    assert_ne!(
        again.header("x-line-request-id"),
        first.header("x-line-request-id")
    );
    for n in 1..=3 {
        assert_eq!(sb.received(&uid(n)).await.len(), 1);
    }
    // Push 409s also carry the accepted request's sentMessages.
    let k2 = key();
    let p1 = sb.push(&uid(1), json!([text("b")]), Some(&k2)).await;
    let p2 = sb.push(&uid(1), json!([text("b")]), Some(&k2)).await;
    assert_eq!(p2.status, 409);
    assert_eq!(p2.body["sentMessages"], p1.body["sentMessages"]);
    assert_eq!(sb.stats().await["conflicts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_keys_are_kept_24_hours_on_the_stand_ins_clock() {
    let sb = Sb::start().await;
    let k = key();
    assert_eq!(
        sb.push(&uid(1), json!([text("a")]), Some(&k)).await.status,
        200
    );
    sb.advance(24 * 3600 - 60).await;
    assert_eq!(
        sb.push(&uid(1), json!([text("a")]), Some(&k)).await.status,
        409
    );
    sb.advance(120).await;
    assert_eq!(
        sb.push(&uid(1), json!([text("a")]), Some(&k)).await.status,
        200,
        "after 24 h the same key is a new request (and a duplicate message)"
    );
    assert_eq!(sb.received(&uid(1)).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_key_must_be_a_uuid_and_only_send_endpoints_take_it() {
    let sb = Sb::start().await;
    let bad = sb
        .push(&uid(1), json!([text("a")]), Some("not-a-uuid"))
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body["message"].as_str().unwrap().contains("UUID"));
    let r = sb
        .call_h(
            Method::GET,
            "/v2/bot/message/quota",
            None,
            &[("x-line-retry-key", &key())],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(sb.received(&uid(1)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_right_bearer_token_get_401() {
    let sb = Sb::start().await;
    let url = sb.url("/v2/bot/message/quota");
    let none = sb.c.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let wrong = sb.c.get(&url).bearer_auth("stolen").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("Authentication failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_validated_against_the_spec_with_line_style_details() {
    let sb = Sb::start().await;
    let r = sb
        .post(
            "/v2/bot/message/push",
            json!({"messages": [{"type": "text"}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["message"], "The request body has 2 error(s)");
    let props: Vec<&str> = r.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["property"].as_str().unwrap())
        .collect();
    assert!(
        props.contains(&"to") && props.contains(&"messages[0].text"),
        "{props:?}"
    );
    let garbage = sb
        .raw(
            Method::POST,
            "/v2/bot/message/push",
            Some(b"{not json".to_vec()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(garbage.status, 400);
    assert!(garbage.body["message"]
        .as_str()
        .unwrap()
        .contains("could not be parsed as JSON"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multicast_takes_at_most_500_recipients_and_5_messages() {
    let sb = Sb::start().await;
    let to: Vec<String> = (0..500).map(uid).collect();
    let ok = sb
        .post(
            "/v2/bot/message/multicast",
            json!({"to": to, "messages": vec![text("a"); 5]}),
        )
        .await;
    assert_eq!(ok.status, 200);
    let to501: Vec<String> = (0..501).map(uid).collect();
    let r = sb
        .post(
            "/v2/bot/message/multicast",
            json!({"to": to501, "messages": [text("a")]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["details"][0]["property"], "to");
    let r = sb
        .post(
            "/v2/bot/message/multicast",
            json!({"to": [uid(1)], "messages": vec![text("a"); 6]}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = sb
        .post(
            "/v2/bot/message/multicast",
            json!({"to": ["Cgroup"], "messages": [text("a")]}),
        )
        .await;
    assert_eq!(r.status, 400, "multicast takes user ids only");
    assert_eq!(sb.received(&uid(0)).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_message_limits_beyond_the_schema_are_enforced() {
    let sb = Sb::start().await;
    let bubble = json!({"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "避難所"}]}});
    let flex = |alt: String, contents: Value| json!({"type": "flex", "altText": alt, "contents": contents});
    let cases = [
        (
            flex("あ".repeat(1501), bubble.clone()),
            "messages[0].altText",
        ),
        (
            flex(
                "a".into(),
                json!({"type": "carousel", "contents": vec![bubble.clone(); 13]}),
            ),
            "messages[0].contents.contents",
        ),
        (
            flex(
                "a".into(),
                json!({"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "x".repeat(31 * 1024)}]}}),
            ),
            "messages[0].contents",
        ),
        (
            json!({"type": "text", "text": "x", "quickReply": {"items": vec![json!({"type": "action", "action": {"type": "message", "label": "a", "text": "a"}}); 14]}}),
            "messages[0].quickReply.items",
        ),
        (
            json!({"type": "text", "text": "x".repeat(5001)}),
            "messages[0].text",
        ),
    ];
    for (msg, prop) in cases {
        let r = sb.push(&uid(1), json!([msg]), None).await;
        assert_eq!(r.status, 400, "{prop}");
        let props: Vec<String> = r.body["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["property"].as_str().unwrap().to_string())
            .collect();
        assert!(props.iter().any(|p| p == prop), "{prop}: {props:?}");
    }
    let ok = sb
        .push(
            &uid(1),
            json!([flex(
                "あ".repeat(1500),
                json!({"type": "carousel", "contents": vec![bubble; 12]})
            )]),
            None,
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let v = sb
        .post(
            "/v2/bot/message/validate/push",
            json!({"messages": [text(&"x".repeat(5001))]}),
        )
        .await;
    assert_eq!(v.status, 400, "the validate endpoints apply the same rules");
    assert_eq!(sb.received(&uid(1)).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_allows_60_an_hour_then_429_until_the_bucket_refills() {
    let sb = Sb::start().await;
    for _ in 0..60 {
        let r = sb
            .post(
                "/v2/bot/message/broadcast",
                json!({"messages": [text("a")]}),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let r = sb
        .post(
            "/v2/bot/message/broadcast",
            json!({"messages": [text("a")]}),
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.body["message"],
        "The API rate limit has been exceeded. Try again later."
    );
    sb.advance(61).await;
    let r = sb
        .post(
            "/v2/bot/message/broadcast",
            json!({"messages": [text("a")]}),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "a 60/h bucket refills one request per minute"
    );
    // Buckets are per endpoint: push is unaffected.
    assert_eq!(sb.push(&uid(1), json!([text("a")]), None).await.status, 200);
    assert_eq!(sb.stats().await["rateLimited"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multicast_is_held_to_200_requests_per_second() {
    let sb = Arc::new(Sb::start().await);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..400u32 {
        let sb = sb.clone();
        tasks.push(tokio::spawn(async move {
            sb.post(
                "/v2/bot/message/multicast",
                json!({"to": [uid(i)], "messages": [text("a")]}),
            )
            .await
            .status
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => limited += 1,
            s => panic!("unexpected {s}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // A full bucket of 200 plus 200/s of refill while the burst lasted.
    let bound = 200.0 + 200.0 * elapsed + 1.0;
    assert!(
        (ok as f64) <= bound,
        "{ok} accepted in {elapsed:.2}s (bound {bound:.0})"
    );
    assert!(ok >= 200, "the first 200 fit the bucket");
    assert_eq!(ok + limited, 400);
    if elapsed < 0.9 {
        assert!(
            limited > 0,
            "400 requests in {elapsed:.2}s must hit the limit"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_quota_stops_sends_with_lines_message_and_reply_stays_free() {
    let hook = Hook::start().await;
    let sb = Sb::with(SandboxConfig {
        webhook_url: Some(hook.url.clone()),
        settings: Settings {
            monthly_quota: Some(3),
            ..Settings::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let q = sb.get("/v2/bot/message/quota").await;
    assert_eq!(q.body, json!({"type": "limited", "value": 3}));
    let r = sb
        .post(
            "/v2/bot/message/multicast",
            json!({"to": [uid(1), uid(2)], "messages": [text("a")]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = sb
        .post(
            "/v2/bot/message/multicast",
            json!({"to": [uid(3), uid(4)], "messages": [text("a")]}),
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["message"], "You have reached your monthly limit.");
    assert!(
        sb.received(&uid(3)).await.is_empty(),
        "nobody receives a rejected multicast"
    );
    assert_eq!(
        sb.get("/v2/bot/message/quota/consumption").await.body["totalUsage"],
        2
    );
    let ev = sb
        .event(&uid(5), json!({"type": "text", "text": "避難所は？"}))
        .await;
    let token = ev["event"]["replyToken"].as_str().unwrap();
    let r = sb
        .post(
            "/v2/bot/message/reply",
            json!({"replyToken": token, "messages": [text("こちらです")]}),
        )
        .await;
    assert_eq!(r.status, 200, "reply is not counted against the quota");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_tokens_from_webhooks_are_single_use_and_expire_after_a_minute() {
    let hook = Hook::start().await;
    let sb = Sb::start().await;
    sb.h.set_webhook_url(&hook.url);
    let ev = sb
        .event(&uid(7), json!({"type": "text", "text": "こんにちは"}))
        .await;
    assert_eq!(ev["webhookStatus"], 200);
    let body = hook.last();
    let token = body["events"][0]["replyToken"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = json!({"replyToken": token, "messages": [text("ようこそ")]});
    assert_eq!(
        sb.post("/v2/bot/message/reply", reply.clone()).await.status,
        200
    );
    let again = sb.post("/v2/bot/message/reply", reply).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.body["message"], "Invalid reply token");
    assert_eq!(sb.received(&uid(7)).await.len(), 1);

    let ev = sb
        .event(
            &uid(7),
            json!({"type": "postback", "data": "menu=shelters"}),
        )
        .await;
    let token = ev["event"]["replyToken"].as_str().unwrap().to_string();
    sb.advance(61).await;
    let late = sb
        .post(
            "/v2/bot/message/reply",
            json!({"replyToken": token, "messages": [text("遅い")]}),
        )
        .await;
    assert_eq!(late.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_residents_send_signed_events_of_every_kind() {
    let hook = Hook::start().await;
    let sb = Sb::start().await;
    // LINE's own endpoint sets the webhook URL.
    let r = sb
        .call(
            Method::PUT,
            "/v2/bot/channel/webhook/endpoint",
            Some(json!({"endpoint": hook.url})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        sb.get("/v2/bot/channel/webhook/endpoint").await.body["endpoint"],
        json!(hook.url)
    );
    let u = uid(9);
    let cases = [
        (
            json!({"type": "follow", "displayName": "山田花子"}),
            "follow",
        ),
        (json!({"type": "text", "text": "登録"}), "message"),
        (
            json!({"type": "location", "latitude": 43.0621, "longitude": 141.3544, "title": "自宅"}),
            "message",
        ),
        (json!({"type": "image"}), "message"),
        (
            json!({"type": "postback", "data": "district=chuo"}),
            "postback",
        ),
        (json!({"type": "unfollow"}), "unfollow"),
    ];
    let mut ids = Vec::new();
    for (ev, kind) in cases {
        let out = sb.event(&u, ev.clone()).await;
        assert_eq!(out["webhookStatus"], 200, "{ev}");
        let body = hook.last();
        let e = &body["events"][0];
        assert_eq!(e["type"], kind);
        assert_eq!(e["source"]["userId"], json!(u));
        assert_eq!(e["deliveryContext"]["isRedelivery"], false);
        assert_eq!(e["webhookEventId"].as_str().unwrap().len(), 26);
        assert_eq!(e.get("replyToken").is_some(), kind != "unfollow");
        ids.push(e["webhookEventId"].as_str().unwrap().to_string());
        if ev["type"] == "follow" {
            let p = sb.get(&format!("/v2/bot/profile/{u}")).await;
            assert_eq!(p.body["displayName"], "山田花子");
        }
        if ev["type"] == "location" {
            assert_eq!(e["message"]["latitude"], 43.0621);
        }
        if ev["type"] == "image" {
            let id = e["message"]["id"].as_str().unwrap();
            let c = sb
                .raw(
                    Method::GET,
                    &format!("/v2/bot/message/{id}/content"),
                    None,
                    &[],
                )
                .await
                .unwrap();
            assert_eq!(c.status, 200);
            assert_eq!(c.header("content-type").as_deref(), Some("image/png"));
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "every event has its own webhookEventId");
    // After unfollow: profile is gone and pushes are accepted but not delivered.
    assert_eq!(sb.get(&format!("/v2/bot/profile/{u}")).await.status, 404);
    assert_eq!(
        sb.push(&u, json!([text("届かない")]), None).await.status,
        200
    );
    assert!(sb.received(&u).await.is_empty());
    assert_eq!(sb.stats().await["skippedRecipients"], 1);
    let missing = sb
        .raw(Method::GET, "/v2/bot/message/999/content", None, &[])
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_keeps_its_id_and_reply_token_and_says_so() {
    let hook = Hook::start().await;
    let sb = Sb::start().await;
    sb.h.set_webhook_url(&hook.url);
    let first = sb
        .event(&uid(3), json!({"type": "text", "text": "a"}))
        .await;
    let id = first["event"]["webhookEventId"]
        .as_str()
        .unwrap()
        .to_string();
    let again = sb
        .sandbox(
            Method::POST,
            "/sandbox/webhook/redeliver",
            Some(json!({"webhookEventId": id})),
        )
        .await;
    assert_eq!(again["webhookStatus"], 200);
    let body = hook.last();
    let e = &body["events"][0];
    assert_eq!(e["webhookEventId"], json!(id));
    assert_eq!(e["replyToken"], first["event"]["replyToken"]);
    assert_eq!(e["deliveryContext"]["isRedelivery"], true);
    assert_eq!(hook.got.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_can_be_requested_to_test_the_daemons_rejection() {
    let hook = Hook::start().await;
    let sb = Sb::start().await;
    sb.h.set_webhook_url(&hook.url);
    sb.event(
        &uid(1),
        json!({"type": "text", "text": "a", "badSignature": true}),
    )
    .await;
    let (h, b) = hook.got.lock().unwrap().last().cloned().unwrap();
    assert_ne!(
        h["x-line-signature"].to_str().unwrap(),
        sonae::line::sandbox::http::sign(SECRET, &b)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rich_menu_images_follow_lines_rules_and_cannot_be_replaced() {
    let sb = Sb::start().await;
    let bad = sb
        .post("/v2/bot/richmenu", json!({"size": {"width": 1200, "height": 900}, "selected": false, "name": "x", "chatBarText": "x", "areas": []}))
        .await;
    assert_eq!(bad.status, 400, "ratio 1.33 is below 1.45");
    let long = sb
        .post("/v2/bot/richmenu", json!({"size": {"width": 2500, "height": 843}, "selected": false, "name": "x", "chatBarText": "十五文字のメニューバーテキスト", "areas": []}))
        .await;
    assert_eq!(long.status, 400, "chatBarText ≤ 14");
    let v = sb
        .post("/v2/bot/richmenu/validate", json!({"size": {"width": 2500, "height": 843}, "selected": false, "name": "x", "chatBarText": "x", "areas": []}))
        .await;
    assert_eq!(v.status, 200);
    let r = sb
        .post("/v2/bot/richmenu", json!({"size": {"width": 2500, "height": 843}, "selected": false, "name": "normal", "chatBarText": "メニュー", "areas": []}))
        .await;
    let id = r.body["richMenuId"].as_str().unwrap().to_string();
    let path = format!("/v2/bot/richmenu/{id}/content");
    // Not linkable before it has an image.
    let r = sb
        .call(
            Method::POST,
            &format!("/v2/bot/user/all/richmenu/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    let gif = sb
        .raw(
            Method::POST,
            &path,
            Some(b"GIF89a".to_vec()),
            &[("content-type", "image/gif")],
        )
        .await
        .unwrap();
    assert_eq!(gif.status, 415);
    let wrong_size = sb
        .raw(
            Method::POST,
            &path,
            Some(limits::png_header(2500, 1686)),
            &[("content-type", "image/png")],
        )
        .await
        .unwrap();
    assert_eq!(wrong_size.status, 400, "image must match the menu's size");
    let mut huge = limits::png_header(2500, 843);
    huge.resize(limits::RICH_MENU_IMAGE_MAX_BYTES + 1, 0);
    let big = sb
        .raw(
            Method::POST,
            &path,
            Some(huge),
            &[("content-type", "image/png")],
        )
        .await
        .unwrap();
    assert_eq!(big.status, 413);
    let fake = sb
        .raw(
            Method::POST,
            &path,
            Some(limits::png_header(2500, 843)),
            &[("content-type", "image/jpeg")],
        )
        .await
        .unwrap();
    assert_eq!(fake.status, 400, "a PNG labelled JPEG is rejected");
    let good = limits::png_header(2500, 843);
    let up = sb
        .raw(
            Method::POST,
            &path,
            Some(good.clone()),
            &[("content-type", "image/png")],
        )
        .await
        .unwrap();
    assert_eq!(up.status, 200);
    let again = sb
        .raw(
            Method::POST,
            &path,
            Some(good.clone()),
            &[("content-type", "image/png")],
        )
        .await
        .unwrap();
    assert_eq!(again.status, 400);
    assert_eq!(
        again.body["message"],
        "An image has already been uploaded to the richmenu"
    );
    let down =
        sb.c.get(sb.url(&path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
    assert_eq!(down.bytes().await.unwrap().to_vec(), good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_user_link_beats_the_default_and_a_tab_switch_creates_one() {
    let hook = Hook::start().await;
    let sb = Sb::start().await;
    sb.h.set_webhook_url(&hook.url);
    let tab2 = sb.menu("tab2", json!([])).await;
    assert_eq!(
        sb.post(
            "/v2/bot/richmenu/alias",
            json!({"richMenuAliasId": "tab2", "richMenuId": tab2})
        )
        .await
        .status,
        200
    );
    let area = json!([{"bounds": {"x": 0, "y": 0, "width": 1250, "height": 843}, "action": {"type": "richmenuswitch", "richMenuAliasId": "tab2", "data": "tab=2"}}]);
    let normal = sb.menu("normal", area).await;
    assert_eq!(
        sb.call(
            Method::POST,
            &format!("/v2/bot/user/all/richmenu/{normal}"),
            None
        )
        .await
        .status,
        200
    );
    let (a, b) = (uid(1), uid(2));
    assert_eq!(sb.shown(&a).await, (json!(normal), "default".into()));
    // Resident a taps the tab.
    let tap = sb
        .sandbox(
            Method::POST,
            &format!("/sandbox/users/{a}/richmenuswitch"),
            Some(json!({"area": 0})),
        )
        .await;
    assert_eq!(tap["webhookStatus"], 200);
    let body = hook.last();
    assert_eq!(
        body["events"][0]["postback"]["params"],
        json!({"newRichMenuAliasId": "tab2", "status": "SUCCESS"})
    );
    assert_eq!(sb.shown(&a).await, (json!(tab2), "user".into()));
    assert_eq!(
        sb.get(&format!("/v2/bot/user/{a}/richmenu")).await.body["richMenuId"],
        json!(tab2)
    );
    // Disaster mode sets a new default: b sees it, a (per-user link) does not.
    let emergency = sb.menu("emergency", json!([])).await;
    sb.call(
        Method::POST,
        &format!("/v2/bot/user/all/richmenu/{emergency}"),
        None,
    )
    .await;
    assert_eq!(
        sb.get("/v2/bot/user/all/richmenu").await.body["richMenuId"],
        json!(emergency)
    );
    assert_eq!(sb.shown(&b).await, (json!(emergency), "default".into()));
    assert_eq!(sb.shown(&a).await, (json!(tab2), "user".into()));
    // Per-user link and unlink.
    assert_eq!(
        sb.call(
            Method::POST,
            &format!("/v2/bot/user/{a}/richmenu/{emergency}"),
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(sb.shown(&a).await, (json!(emergency), "user".into()));
    sb.call(Method::DELETE, &format!("/v2/bot/user/{a}/richmenu"), None)
        .await;
    assert_eq!(
        sb.get(&format!("/v2/bot/user/{a}/richmenu")).await.status,
        404
    );
    sb.call(Method::DELETE, "/v2/bot/user/all/richmenu", None)
        .await;
    assert_eq!(sb.shown(&a).await, (Value::Null, "none".into()));
    // A tab tap on a missing alias reports LINE's status.
    let tap = sb
        .sandbox(
            Method::POST,
            &format!("/sandbox/users/{b}/richmenuswitch"),
            Some(json!({"richMenuAliasId": "nope", "data": "x"})),
        )
        .await;
    assert_eq!(
        tap["event"]["postback"]["params"]["status"],
        "RICHMENU_ALIAS_ID_NOTFOUND"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_link_and_unlink_take_at_most_500_users() {
    let sb = Sb::start().await;
    let m = sb.menu("m", json!([])).await;
    let users: Vec<String> = (0..500).map(uid).collect();
    let r = sb
        .post(
            "/v2/bot/richmenu/bulk/link",
            json!({"richMenuId": m, "userIds": users}),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(sb.shown(&uid(499)).await.1, "user");
    let too_many: Vec<String> = (0..501).map(uid).collect();
    assert_eq!(
        sb.post(
            "/v2/bot/richmenu/bulk/link",
            json!({"richMenuId": m, "userIds": too_many})
        )
        .await
        .status,
        400
    );
    let r = sb
        .post(
            "/v2/bot/richmenu/bulk/unlink",
            json!({"userIds": [uid(0), uid(1)]}),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(sb.shown(&uid(0)).await.1, "none");
    assert_eq!(sb.stats().await["linkedUsersPerMenu"][&m], 498);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_control_moves_in_parallel_reports_progress_resumes_and_allows_3_an_hour() {
    let sb = Sb::start().await;
    let (a, b, c) = (
        sb.menu("a", json!([])).await,
        sb.menu("b", json!([])).await,
        sb.menu("c", json!([])).await,
    );
    for (u, m) in [(1, &a), (2, &b), (3, &c)] {
        sb.call(
            Method::POST,
            &format!("/v2/bot/user/{}/richmenu/{m}", uid(u)),
            None,
        )
        .await;
    }
    // Duplicate `from` and unlinkAll-with-others are rejected, by validate/batch too (not counted in 3/h).
    let dup = json!({"operations": [{"type": "link", "from": a, "to": b}, {"type": "unlink", "from": a}]});
    assert_eq!(
        sb.post("/v2/bot/richmenu/validate/batch", dup.clone())
            .await
            .status,
        400
    );
    let mixed = json!({"operations": [{"type": "unlinkAll"}, {"type": "unlink", "from": a}]});
    assert_eq!(
        sb.post("/v2/bot/richmenu/validate/batch", mixed)
            .await
            .status,
        400
    );
    let moves = json!({"operations": [{"type": "link", "from": a, "to": b}, {"type": "link", "from": b, "to": c}], "resumeRequestKey": "to-disaster-1"});
    assert_eq!(
        sb.post("/v2/bot/richmenu/validate/batch", moves.clone())
            .await
            .status,
        200
    );

    let r = sb.post("/v2/bot/richmenu/batch", moves.clone()).await;
    assert_eq!(r.status, 200);
    let req = r.header("x-line-request-id").unwrap();
    assert_eq!(sb.shown(&uid(1)).await.0, json!(b), "a → b");
    assert_eq!(
        sb.shown(&uid(2)).await.0,
        json!(c),
        "b → c, not chained from a"
    );
    assert_eq!(sb.shown(&uid(3)).await.0, json!(c));
    let p = sb
        .get(&format!("/v2/bot/richmenu/progress/batch?requestId={req}"))
        .await;
    assert_eq!(p.body["phase"], "ongoing");
    sb.advance(5).await;
    let p = sb
        .get(&format!("/v2/bot/richmenu/progress/batch?requestId={req}"))
        .await;
    assert_eq!(p.body["phase"], "succeeded");
    assert!(p.body["completedTime"].is_string());

    // Resending with the same resumeRequestKey processes nobody again.
    sb.call(
        Method::POST,
        &format!("/v2/bot/user/{}/richmenu/{a}", uid(4)),
        None,
    )
    .await;
    assert_eq!(sb.post("/v2/bot/richmenu/batch", moves).await.status, 200);
    assert_eq!(
        sb.shown(&uid(4)).await.0,
        json!(a),
        "a resumed request does not run again"
    );
    assert_eq!(sb.shown(&uid(2)).await.0, json!(c));

    let all = json!({"operations": [{"type": "unlinkAll"}]});
    assert_eq!(
        sb.post("/v2/bot/richmenu/batch", all.clone()).await.status,
        200
    );
    assert_eq!(sb.shown(&uid(1)).await.1, "none");
    let fourth = sb.post("/v2/bot/richmenu/batch", all.clone()).await;
    assert_eq!(fourth.status, 429, "3 batch requests per hour");
    sb.advance(20 * 60).await;
    assert_eq!(sb.post("/v2/bot/richmenu/batch", all).await.status, 200);
    assert_eq!(
        sb.get("/v2/bot/richmenu/progress/batch?requestId=unknown")
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_are_created_updated_listed_and_deleted_with_lines_rules() {
    let sb = Sb::start().await;
    let (m1, m2) = (
        sb.menu("m1", json!([])).await,
        sb.menu("m2", json!([])).await,
    );
    let bare = sb
        .post("/v2/bot/richmenu", json!({"size": {"width": 2500, "height": 843}, "selected": false, "name": "bare", "chatBarText": "x", "areas": []}))
        .await
        .body["richMenuId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sb.post(
            "/v2/bot/richmenu/alias",
            json!({"richMenuAliasId": "t", "richMenuId": bare})
        )
        .await
        .status,
        400,
        "needs an image"
    );
    assert_eq!(
        sb.post(
            "/v2/bot/richmenu/alias",
            json!({"richMenuAliasId": "Bad Id", "richMenuId": m1})
        )
        .await
        .status,
        400,
        "pattern"
    );
    assert_eq!(
        sb.post(
            "/v2/bot/richmenu/alias",
            json!({"richMenuAliasId": "tab-a", "richMenuId": m1})
        )
        .await
        .status,
        200
    );
    let dup = sb
        .post(
            "/v2/bot/richmenu/alias",
            json!({"richMenuAliasId": "tab-a", "richMenuId": m2}),
        )
        .await;
    assert_eq!(
        (dup.status, dup.body["message"].as_str()),
        (400, Some("conflict richmenu alias id"))
    );
    assert_eq!(
        sb.post("/v2/bot/richmenu/alias/tab-a", json!({"richMenuId": m2}))
            .await
            .status,
        200
    );
    assert_eq!(
        sb.get("/v2/bot/richmenu/alias/tab-a").await.body["richMenuId"],
        json!(m2)
    );
    assert_eq!(
        sb.get("/v2/bot/richmenu/alias/list").await.body["aliases"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        sb.call(Method::DELETE, "/v2/bot/richmenu/alias/tab-a", None)
            .await
            .status,
        200
    );
    assert_eq!(sb.get("/v2/bot/richmenu/alias/tab-a").await.status, 404);
    // Deleting a menu unlinks its users and clears it as default.
    sb.call(
        Method::POST,
        &format!("/v2/bot/user/all/richmenu/{m1}"),
        None,
    )
    .await;
    sb.call(
        Method::POST,
        &format!("/v2/bot/user/{}/richmenu/{m1}", uid(1)),
        None,
    )
    .await;
    assert_eq!(
        sb.call(Method::DELETE, &format!("/v2/bot/richmenu/{m1}"), None)
            .await
            .status,
        200
    );
    assert_eq!(sb.shown(&uid(1)).await.1, "none");
    assert_eq!(sb.get(&format!("/v2/bot/richmenu/{m1}")).await.status, 404);
    assert_eq!(
        sb.get("/v2/bot/richmenu/list").await.body["richmenus"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_500_takes_no_effect_and_a_dropped_connection_does() {
    let sb = Sb::start().await;
    let set = |f: Faults| serde_json::to_value(f).unwrap();
    sb.sandbox(
        Method::POST,
        "/sandbox/faults",
        Some(set(Faults {
            fail_next: 1,
            ..Faults::default()
        })),
    )
    .await;
    let k = key();
    let r = sb.push(&uid(1), json!([text("a")]), Some(&k)).await;
    assert_eq!(r.status, 500);
    assert!(
        sb.received(&uid(1)).await.is_empty(),
        "a 500 delivered nothing"
    );
    // Retrying with the same key after a 500 is accepted.
    assert_eq!(
        sb.push(&uid(1), json!([text("a")]), Some(&k)).await.status,
        200
    );

    sb.sandbox(
        Method::POST,
        "/sandbox/faults",
        Some(set(Faults {
            drop_next: 1,
            ..Faults::default()
        })),
    )
    .await;
    let k2 = key();
    let body = json!({"to": uid(2), "messages": [text("b")]})
        .to_string()
        .into_bytes();
    let dropped = sb
        .raw(
            Method::POST,
            "/v2/bot/message/push",
            Some(body),
            &[
                ("x-line-retry-key", &k2),
                ("content-type", "application/json"),
            ],
        )
        .await;
    assert!(
        dropped.is_err(),
        "the connection closes before any response"
    );
    let got = sb.received(&uid(2)).await;
    assert_eq!(got.len(), 1, "but the push took effect");
    let retry = sb.push(&uid(2), json!([text("b")]), Some(&k2)).await;
    assert_eq!(retry.status, 409);
    assert_eq!(
        retry.header("x-line-accepted-request-id"),
        got[0]["requestId"].as_str().map(String::from)
    );
    assert_eq!(sb.received(&uid(2)).await.len(), 1, "exactly once");
    let s = sb.stats().await;
    assert_eq!(
        (
            s["faultsInjected"].as_u64(),
            s["connectionsDropped"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // Path filters confine faults.
    sb.sandbox(
        Method::POST,
        "/sandbox/faults",
        Some(json!({"error_rate": 1.0, "paths": ["/v2/bot/message/multicast"]})),
    )
    .await;
    assert_eq!(sb.push(&uid(3), json!([text("c")]), None).await.status, 200);
    let m = sb
        .post(
            "/v2/bot/message/multicast",
            json!({"to": [uid(3)], "messages": [text("c")]}),
        )
        .await;
    assert_eq!(m.status, 500);
    let bad =
        sb.c.post(sb.url("/sandbox/faults"))
            .json(&json!({"error_rate": 2.0}))
            .send()
            .await
            .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_2_mb_get_413() {
    let sb = Sb::start().await;
    let big = vec![b' '; limits::BODY_MAX_BYTES + 10];
    let r = sb
        .raw(Method::POST, "/v2/bot/message/push", Some(big), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_requests_per_endpoint_and_recipients() {
    let sb = Sb::with(SandboxConfig {
        settings: Settings {
            rate_limits: false,
            ..Settings::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    for chunk in 0..20u32 {
        let to: Vec<String> = (chunk * 500..(chunk + 1) * 500).map(uid).collect();
        let r = sb
            .call_h(
                Method::POST,
                "/v2/bot/message/multicast",
                Some(json!({"to": to, "messages": [text("大雨警報")]})),
                &[("x-line-retry-key", &key())],
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let s = sb.stats().await;
    assert_eq!(s["recipients"], 10_000);
    assert_eq!(s["deliveries"], 10_000);
    assert_eq!(s["endpoints"]["POST /v2/bot/message/multicast"]["200"], 20);
    assert_eq!(sb.received(&uid(9_999)).await.len(), 1);
    assert_eq!(sb.received(&uid(10_000)).await.len(), 0);
}

#[test]
fn the_line_sandbox_command_serves_with_a_monthly_quota_and_rejects_bad_flags() {
    use std::process::{Command, Stdio};
    let port = crate::helpers::free_port();
    let mut child = Command::new(crate::helpers::SONAE)
        .args([
            "line-sandbox",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--monthly-quota",
            "1",
            "--access-token",
            "t0ken",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let c = Client::new();
        let url = format!("http://127.0.0.1:{port}/v2/bot/message/push");
        let mut last = None;
        for _ in 0..100 {
            match c
                .get(format!("http://127.0.0.1:{port}/sandbox/stats"))
                .send()
                .await
            {
                Ok(_) => break,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = last;
        let mut statuses = Vec::new();
        for n in 1..=2 {
            let r = c
                .post(&url)
                .bearer_auth("t0ken")
                .json(&json!({"to": uid(n), "messages": [text("a")]}))
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        statuses
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(result, vec![200, 429]);
    let bad = Command::new(crate::helpers::SONAE)
        .args(["line-sandbox", "--error-rate", "3"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--error-rate"));
}

/// The contract test: a scripted session that calls every endpoint the stand-in serves; `Sb::raw`
/// validates each response with `spec::validate_response`, and this checks the session covered them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_ins_responses_match_the_specs_response_schemas() {
    let hook = Hook::start().await;
    let sb = Sb::with(SandboxConfig {
        webhook_url: Some(hook.url.clone()),
        settings: Settings {
            monthly_quota: Some(1000),
            ..Settings::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let u = uid(42);
    let flex = json!({"type": "flex", "altText": "【大雨警報】札幌市", "contents": {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "避難"}]}}});
    let k = key();
    sb.push(&u, json!([text("a"), flex]), Some(&k)).await;
    sb.push(&u, json!([text("a")]), Some(&k)).await; // 409
    sb.push(&u, json!([{"type": "text"}]), None).await; // 400
    sb.post(
        "/v2/bot/message/multicast",
        json!({"to": [u], "messages": [text("b")]}),
    )
    .await;
    sb.post(
        "/v2/bot/message/broadcast",
        json!({"messages": [text("c")]}),
    )
    .await;
    let n = sb
        .post(
            "/v2/bot/message/narrowcast",
            json!({"messages": [text("d")]}),
        )
        .await;
    assert_eq!(n.status, 202);
    let nid = n.header("x-line-request-id").unwrap();
    let p = sb
        .get(&format!(
            "/v2/bot/message/progress/narrowcast?requestId={nid}"
        ))
        .await;
    assert_eq!(p.body["phase"], "succeeded");
    let ev = sb.event(&u, json!({"type": "image"})).await;
    let token = ev["event"]["replyToken"].as_str().unwrap().to_string();
    let mid = ev["event"]["message"]["id"].as_str().unwrap().to_string();
    sb.post(
        "/v2/bot/message/reply",
        json!({"replyToken": token, "messages": [text("e")]}),
    )
    .await;
    for kind in ["reply", "push", "multicast", "narrowcast", "broadcast"] {
        assert_eq!(
            sb.post(
                &format!("/v2/bot/message/validate/{kind}"),
                json!({"messages": [text("f")]})
            )
            .await
            .status,
            200
        );
    }
    sb.get("/v2/bot/message/quota").await;
    sb.get("/v2/bot/message/quota/consumption").await;
    sb.raw(
        Method::GET,
        &format!("/v2/bot/message/{mid}/content"),
        None,
        &[],
    )
    .await
    .unwrap();
    sb.get(&format!("/v2/bot/profile/{u}")).await;
    sb.call(
        Method::PUT,
        "/v2/bot/channel/webhook/endpoint",
        Some(json!({"endpoint": hook.url})),
    )
    .await;
    sb.get("/v2/bot/channel/webhook/endpoint").await;

    let area = json!([{"bounds": {"x": 0, "y": 0, "width": 100, "height": 100}, "action": {"type": "postback", "data": "x"}}]);
    sb.post("/v2/bot/richmenu/validate", json!({"size": {"width": 2500, "height": 843}, "selected": true, "name": "n", "chatBarText": "c", "areas": area})).await;
    let m = sb.menu("m", area).await;
    let m2 = sb.menu("m2", json!([])).await;
    sb.raw(
        Method::GET,
        &format!("/v2/bot/richmenu/{m}/content"),
        None,
        &[],
    )
    .await
    .unwrap();
    sb.get(&format!("/v2/bot/richmenu/{m}")).await;
    sb.get("/v2/bot/richmenu/list").await;
    sb.call(
        Method::POST,
        &format!("/v2/bot/user/all/richmenu/{m}"),
        None,
    )
    .await;
    sb.get("/v2/bot/user/all/richmenu").await;
    sb.call(
        Method::POST,
        &format!("/v2/bot/user/{u}/richmenu/{m}"),
        None,
    )
    .await;
    sb.get(&format!("/v2/bot/user/{u}/richmenu")).await;
    sb.call(Method::DELETE, &format!("/v2/bot/user/{u}/richmenu"), None)
        .await;
    sb.post(
        "/v2/bot/richmenu/bulk/link",
        json!({"richMenuId": m, "userIds": [u]}),
    )
    .await;
    sb.post("/v2/bot/richmenu/bulk/unlink", json!({"userIds": [u]}))
        .await;
    sb.post(
        "/v2/bot/richmenu/alias",
        json!({"richMenuAliasId": "a1", "richMenuId": m}),
    )
    .await;
    sb.post("/v2/bot/richmenu/alias/a1", json!({"richMenuId": m2}))
        .await;
    sb.get("/v2/bot/richmenu/alias/a1").await;
    sb.get("/v2/bot/richmenu/alias/list").await;
    sb.call(Method::DELETE, "/v2/bot/richmenu/alias/a1", None)
        .await;
    let ops =
        json!({"operations": [{"type": "link", "from": m, "to": m2}], "resumeRequestKey": "k1"});
    sb.post("/v2/bot/richmenu/validate/batch", ops.clone())
        .await;
    let b = sb.post("/v2/bot/richmenu/batch", ops).await;
    let rid = b.header("x-line-request-id").unwrap();
    sb.get(&format!("/v2/bot/richmenu/progress/batch?requestId={rid}"))
        .await;
    sb.call(Method::DELETE, "/v2/bot/user/all/richmenu", None)
        .await;
    sb.call(Method::DELETE, &format!("/v2/bot/richmenu/{m}"), None)
        .await;
    sb.get("/v2/bot/richmenu/nonexistent").await; // 404 body
    sb.call_h(
        Method::GET,
        "/v2/bot/message/quota",
        None,
        &[("authorization", "Bearer wrong")],
    )
    .await;
    for _ in 0..61 {
        sb.post(
            "/v2/bot/message/broadcast",
            json!({"messages": [text("g")]}),
        )
        .await; // ends in 429
    }

    let calls = sb.calls.lock().unwrap().clone();
    let mut covered: Vec<String> = calls
        .iter()
        .filter_map(|(m, p, _)| spec::find_operation(m, p).map(|(t, _)| format!("{m} {t}")))
        .collect();
    covered.sort();
    covered.dedup();
    let statuses: Vec<u16> = calls.iter().map(|c| c.2).collect();
    for s in [200, 202, 400, 401, 404, 409, 429] {
        assert!(statuses.contains(&s), "the session produced a {s}");
    }
    let served = [
        "POST /v2/bot/message/push",
        "POST /v2/bot/message/multicast",
        "POST /v2/bot/message/broadcast",
        "POST /v2/bot/message/narrowcast",
        "GET /v2/bot/message/progress/narrowcast",
        "POST /v2/bot/message/reply",
        "POST /v2/bot/message/validate/reply",
        "POST /v2/bot/message/validate/push",
        "POST /v2/bot/message/validate/multicast",
        "POST /v2/bot/message/validate/narrowcast",
        "POST /v2/bot/message/validate/broadcast",
        "GET /v2/bot/message/quota",
        "GET /v2/bot/message/quota/consumption",
        "GET /v2/bot/message/{messageId}/content",
        "GET /v2/bot/profile/{userId}",
        "GET /v2/bot/channel/webhook/endpoint",
        "PUT /v2/bot/channel/webhook/endpoint",
        "POST /v2/bot/richmenu",
        "POST /v2/bot/richmenu/validate",
        "GET /v2/bot/richmenu/list",
        "GET /v2/bot/richmenu/{richMenuId}",
        "DELETE /v2/bot/richmenu/{richMenuId}",
        "GET /v2/bot/richmenu/{richMenuId}/content",
        "POST /v2/bot/richmenu/{richMenuId}/content",
        "POST /v2/bot/user/all/richmenu/{richMenuId}",
        "GET /v2/bot/user/all/richmenu",
        "DELETE /v2/bot/user/all/richmenu",
        "GET /v2/bot/user/{userId}/richmenu",
        "DELETE /v2/bot/user/{userId}/richmenu",
        "POST /v2/bot/user/{userId}/richmenu/{richMenuId}",
        "POST /v2/bot/richmenu/bulk/link",
        "POST /v2/bot/richmenu/bulk/unlink",
        "POST /v2/bot/richmenu/batch",
        "POST /v2/bot/richmenu/validate/batch",
        "GET /v2/bot/richmenu/progress/batch",
        "POST /v2/bot/richmenu/alias",
        "GET /v2/bot/richmenu/alias/list",
        "GET /v2/bot/richmenu/alias/{richMenuAliasId}",
        "POST /v2/bot/richmenu/alias/{richMenuAliasId}",
        "DELETE /v2/bot/richmenu/alias/{richMenuAliasId}",
    ];
    for e in served {
        assert!(
            covered.iter().any(|c| c == e),
            "the session did not call {e}; covered: {covered:?}"
        );
    }
}
