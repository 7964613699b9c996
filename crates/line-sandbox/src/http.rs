//! The stand-in's HTTP surface: LINE's endpoints (`/v2/bot/...`, both `api.line.me` and
//! `api-data.line.me` paths on one listener) and its own control endpoints:
//!
//! | endpoint | what |
//! | --- | --- |
//! | `GET /sandbox/users/{id}/messages` | every message delivered to the user, with request id, retry key, time |
//! | `GET /sandbox/users/{id}/richmenu` | the menu the user actually sees (`source`: `user`, `default`, `none`) |
//! | `POST /sandbox/users/{id}/events` | the user does something: a signed webhook goes to the daemon |
//! | `POST /sandbox/users/{id}/richmenuswitch` | the user taps a `richmenuswitch` tab (`richMenuAliasId` or `area`) |
//! | `POST /sandbox/webhook/redeliver` | resend an event with `deliveryContext.isRedelivery: true` |
//! | `PUT /sandbox/webhook` | set the webhook URL (`{"url"}`) |
//! | `GET /sandbox/stats` | requests per endpoint and status, 429s, 409s, recipients, deliveries |
//! | `GET`/`POST /sandbox/faults` | injected faults: `error_rate`, `drop_rate`, `latency_ms`, `fail_next`, `drop_next`, `paths` |
//! | `GET /sandbox/clock`, `POST /sandbox/clock/advance` | the stand-in's clock (`{"seconds"}`) for 24 h retry keys, reply tokens, buckets |
//!
//! Connections are served by hand (hyper `http1`) rather than `axum::serve` so that a "drop" fault can
//! close the TCP connection after the request took effect and before any response byte: exactly the case
//! a client must survive by retrying with the same `X-Line-Retry-Key`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::limits;
use super::state::{ApiError, SendKind, Shown, State as Account, RATE_LIMIT_MESSAGE};
use super::SandboxConfig;
use line_openapi as spec;

/// Injected faults, applied to LINE endpoints (`/v2/...`) whose path starts with one of `paths` (all when
/// empty). `fail_next` / `drop_next` make the next N requests fail deterministically, for tests.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of requests answered 500 without taking effect (0.0–1.0).
    pub error_rate: f64,
    /// Share of requests that take effect and then lose their connection before the response.
    pub drop_rate: f64,
    /// Added before every request is handled.
    pub latency_ms: u64,
    pub fail_next: u32,
    pub drop_next: u32,
    pub paths: Vec<String>,
}

/// Shared between connections.
pub struct Shared {
    account: Mutex<Account>,
    clock_offset: Mutex<chrono::Duration>,
    faults: Mutex<Faults>,
    webhook_url: Mutex<Option<String>>,
    events: Mutex<HashMap<String, Value>>,
    config: SandboxConfig,
    client: reqwest::Client,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(config: SandboxConfig) -> Shared {
        Shared {
            account: Mutex::new(Account::new(config.settings.clone())),
            clock_offset: Mutex::new(chrono::Duration::zero()),
            faults: Mutex::new(config.faults.clone()),
            webhook_url: Mutex::new(config.webhook_url.clone()),
            events: Mutex::new(HashMap::new()),
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            config,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Account> {
        lock(&self.account)
    }

    /// The stand-in's clock: real time plus whatever tests advanced it by.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + *lock(&self.clock_offset)
    }

    pub fn set_webhook_url(&self, url: &str) {
        *lock(&self.webhook_url) = Some(url.to_string());
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(self.body())).into_response();
        if let Some(id) = &self.accepted_request_id {
            if let Ok(v) = HeaderValue::from_str(id) {
                resp.headers_mut().insert("x-line-accepted-request-id", v);
            }
        }
        resp
    }
}

/// Per-request facts the middleware hands to handlers.
#[derive(Clone, Debug)]
struct Ctx {
    request_id: String,
    now: DateTime<Utc>,
    method: String,
    template: String,
}

/// Cancelling it closes the request's TCP connection.
#[derive(Clone)]
struct ConnKill(CancellationToken);

const RETRY_KEY_ENDPOINTS: [&str; 4] = [
    "POST /v2/bot/message/push",
    "POST /v2/bot/message/multicast",
    "POST /v2/bot/message/narrowcast",
    "POST /v2/bot/message/broadcast",
];

pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/v2/bot/message/push", post(push))
        .route("/v2/bot/message/multicast", post(multicast))
        .route("/v2/bot/message/broadcast", post(broadcast))
        .route("/v2/bot/message/narrowcast", post(narrowcast))
        .route(
            "/v2/bot/message/progress/narrowcast",
            get(narrowcast_progress),
        )
        .route("/v2/bot/message/reply", post(reply))
        .route("/v2/bot/message/validate/reply", post(validate_messages))
        .route("/v2/bot/message/validate/push", post(validate_messages))
        .route(
            "/v2/bot/message/validate/multicast",
            post(validate_messages),
        )
        .route(
            "/v2/bot/message/validate/narrowcast",
            post(validate_messages),
        )
        .route(
            "/v2/bot/message/validate/broadcast",
            post(validate_messages),
        )
        .route("/v2/bot/message/quota", get(quota))
        .route("/v2/bot/message/quota/consumption", get(consumption))
        .route("/v2/bot/message/{messageId}/content", get(content))
        .route("/v2/bot/profile/{userId}", get(profile))
        .route(
            "/v2/bot/channel/webhook/endpoint",
            get(get_webhook).put(put_webhook),
        )
        .route("/v2/bot/richmenu", post(create_menu))
        .route("/v2/bot/richmenu/validate", post(validate_menu))
        .route("/v2/bot/richmenu/list", get(list_menus))
        .route(
            "/v2/bot/richmenu/{richMenuId}",
            get(get_menu).delete(delete_menu),
        )
        .route(
            "/v2/bot/richmenu/{richMenuId}/content",
            get(download_image).post(upload_image),
        )
        .route("/v2/bot/user/all/richmenu/{richMenuId}", post(set_default))
        .route(
            "/v2/bot/user/all/richmenu",
            get(get_default).delete(cancel_default),
        )
        .route(
            "/v2/bot/user/{userId}/richmenu",
            get(get_user_menu).delete(unlink_user),
        )
        .route(
            "/v2/bot/user/{userId}/richmenu/{richMenuId}",
            post(link_user),
        )
        .route("/v2/bot/richmenu/bulk/link", post(bulk_link))
        .route("/v2/bot/richmenu/bulk/unlink", post(bulk_unlink))
        .route("/v2/bot/richmenu/batch", post(batch))
        .route("/v2/bot/richmenu/validate/batch", post(validate_batch))
        .route("/v2/bot/richmenu/progress/batch", get(batch_progress))
        .route("/v2/bot/richmenu/alias", post(create_alias))
        .route("/v2/bot/richmenu/alias/list", get(list_aliases))
        .route(
            "/v2/bot/richmenu/alias/{richMenuAliasId}",
            get(get_alias).post(update_alias).delete(delete_alias),
        )
        .route_layer(middleware::from_fn_with_state(shared.clone(), line_api));
    let control = Router::new()
        .route("/sandbox/users/{id}/messages", get(user_messages))
        .route("/sandbox/users/{id}/richmenu", get(user_richmenu))
        .route("/sandbox/users/{id}/events", post(user_event))
        .route("/sandbox/users/{id}/richmenuswitch", post(user_switch))
        .route("/sandbox/webhook/redeliver", post(redeliver))
        .route("/sandbox/webhook", axum::routing::put(sandbox_webhook))
        .route("/sandbox/stats", get(stats))
        .route("/sandbox/faults", get(get_faults).post(set_faults))
        .route("/sandbox/clock", get(clock))
        .route("/sandbox/clock/advance", post(advance_clock));
    api.merge(control)
        .fallback(|| async { ApiError::not_found() })
        .with_state(shared)
}

/// Serves connections until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let app = router(shared);
    loop {
        // Cancel-safety: `accept` is cancel-safe; a connection not yet accepted stays in the backlog and
        // is closed with the listener.
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "LINE stand-in: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let kill = CancellationToken::new();
            let k = kill.clone();
            let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnKill(k.clone()));
                let app = app.clone();
                async move { app.oneshot(req.map(Body::new)).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            // Cancel-safety: dropping `conn` closes the socket, which is the point of `kill` (an injected
            // drop) and of shutdown.
            tokio::select! {
                _ = conn => {}
                _ = kill.cancelled() => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

fn path_applies(faults: &Faults, path: &str) -> bool {
    faults.paths.is_empty() || faults.paths.iter().any(|p| path.starts_with(p.as_str()))
}

/// Auth, rate limits, faults, body size, request id and stats for every LINE endpoint.
async fn line_api(
    State(sh): State<Arc<Shared>>,
    matched: MatchedPath,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().to_string();
    let template = matched.as_str().to_string();
    let endpoint = format!("{method} {template}");
    let request_id = uuid::Uuid::new_v4().to_string();
    let path = req.uri().path().to_string();
    let (faults, applies) = {
        let f = lock(&sh.faults);
        let applies = path_applies(&f, &path);
        (f.clone(), applies)
    };
    if applies && faults.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
    }
    let now = sh.now();
    let kill = req.extensions().get::<ConnKill>().cloned();
    let mut drop_after = false;
    let outcome: Result<Response, ApiError> = async {
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        match auth.and_then(|a| a.strip_prefix("Bearer ")) {
            None => return Err(ApiError::new(401, "Authorization header required. Must follow the scheme, 'Authorization: Bearer <ACCESS TOKEN>'")),
            Some(t) if t != sh.config.access_token => return Err(ApiError::new(401, "Authentication failed due to the following reason: invalid token. Confirm that the access token in the authorization header is valid.")),
            Some(_) => {}
        }
        if !sh.lock().take_token(&endpoint, now) {
            return Err(ApiError::new(429, RATE_LIMIT_MESSAGE));
        }
        if applies {
            let mut f = lock(&sh.faults);
            let fail = if f.fail_next > 0 {
                f.fail_next -= 1;
                true
            } else {
                f.error_rate > 0.0 && rand::thread_rng().gen::<f64>() < f.error_rate
            };
            if fail {
                drop(f);
                sh.lock().stats.faults_injected += 1;
                return Err(ApiError::new(500, "An internal server error occurred (injected fault)"));
            }
            drop_after = if f.drop_next > 0 {
                f.drop_next -= 1;
                true
            } else {
                f.drop_rate > 0.0 && rand::thread_rng().gen::<f64>() < f.drop_rate
            };
        }
        if let Some(k) = req.headers().get("x-line-retry-key") {
            if !RETRY_KEY_ENDPOINTS.contains(&endpoint.as_str()) {
                return Err(ApiError::new(400, "The X-Line-Retry-Key header is not supported by this API"));
            }
            let ok = k
                .to_str()
                .ok()
                .filter(|s| s.len() == 36)
                .and_then(|s| uuid::Uuid::try_parse(s).ok())
                .is_some();
            if !ok {
                return Err(ApiError::new(400, "The value of the X-Line-Retry-Key header must be a UUID (e.g. 123e4567-e89b-12d3-a456-426614174000)"));
            }
        }
        let (mut parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, limits::BODY_MAX_BYTES)
            .await
            .map_err(|_| ApiError::new(413, "Request Entity Too Large"))?;
        parts.extensions.insert(Ctx {
            request_id: request_id.clone(),
            now,
            method: method.clone(),
            template: template.clone(),
        });
        Ok(next.run(Request::from_parts(parts, Body::from(bytes))).await)
    }
    .await;
    let mut resp = outcome.unwrap_or_else(IntoResponse::into_response);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-line-request-id", v);
    }
    {
        let mut acc = sh.lock();
        acc.record_status(&endpoint, resp.status().as_u16());
        if drop_after {
            acc.stats.connections_dropped += 1;
        }
    }
    if drop_after {
        if let Some(k) = kill {
            k.0.cancel();
            // The connection task drops the connection; this response is never written.
            std::future::pending::<()>().await;
        }
    }
    resp
}

fn parse_json(ctx: &Ctx, body: &Bytes) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            400,
            format!("The request body could not be parsed as JSON ({e})"),
        )
    })?;
    spec::request_violations(&ctx.method, &ctx.template, &v).map_err(|vs| {
        ApiError::bad_request(vs.into_iter().map(|v| (v.path, v.message)).collect())
    })?;
    Ok(v)
}

fn messages_of(v: &Value) -> Result<Vec<Value>, ApiError> {
    let msgs = v
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut details = Vec::new();
    limits::check_messages(&msgs, &mut details);
    if details.is_empty() {
        Ok(msgs)
    } else {
        Err(ApiError::bad_request(details))
    }
}

fn retry_key(headers: &HeaderMap) -> Option<uuid::Uuid> {
    headers
        .get("x-line-retry-key")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| uuid::Uuid::try_parse(s).ok())
}

type ApiResult = Result<Response, ApiError>;

fn ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

fn accepted() -> ApiResult {
    Ok((StatusCode::ACCEPTED, Json(json!({}))).into_response())
}

async fn send(
    sh: &Shared,
    ctx: &Ctx,
    headers: &HeaderMap,
    body: &Bytes,
    kind: SendKind,
) -> Result<super::state::Sent, ApiError> {
    let v = parse_json(ctx, body)?;
    let messages = messages_of(&v)?;
    let to: Vec<String> = match v.get("to") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let token = v.get("replyToken").and_then(Value::as_str);
    let key = retry_key(headers);
    sh.lock().send(
        kind,
        &to,
        token,
        &messages,
        key.as_ref(),
        &ctx.request_id,
        ctx.now,
    )
}

async fn push(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    h: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let sent = send(&sh, &ctx, &h, &body, SendKind::Push).await?;
    ok(json!({"sentMessages": sent.sent_messages}))
}

async fn reply(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    h: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let sent = send(&sh, &ctx, &h, &body, SendKind::Reply).await?;
    ok(json!({"sentMessages": sent.sent_messages}))
}

async fn multicast(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    h: HeaderMap,
    body: Bytes,
) -> ApiResult {
    send(&sh, &ctx, &h, &body, SendKind::Multicast).await?;
    ok(json!({}))
}

async fn broadcast(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    h: HeaderMap,
    body: Bytes,
) -> ApiResult {
    send(&sh, &ctx, &h, &body, SendKind::Broadcast).await?;
    ok(json!({}))
}

/// Narrowcast without `recipient`/`filter` reaches every friend (like broadcast); audiences and
/// demographic filters are not simulated and get 400.
async fn narrowcast(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    h: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let v = parse_json(&ctx, &body)?;
    if v.get("recipient").is_some() || v.get("filter").is_some() {
        return Err(ApiError::new(
            400,
            "The LINE stand-in does not simulate audiences or demographic filters",
        ));
    }
    send(&sh, &ctx, &h, &body, SendKind::Broadcast).await?;
    sh.lock().note_narrowcast(&ctx.request_id, ctx.now);
    accepted()
}

#[derive(Deserialize)]
struct RequestIdQuery {
    #[serde(rename = "requestId")]
    request_id: String,
}

async fn narrowcast_progress(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<RequestIdQuery>,
) -> ApiResult {
    sh.lock()
        .narrowcast_progress(&q.request_id)
        .map(|v| Json(v).into_response())
        .ok_or_else(ApiError::not_found)
}

async fn validate_messages(Extension(ctx): Extension<Ctx>, body: Bytes) -> ApiResult {
    let v = parse_json(&ctx, &body)?;
    messages_of(&v)?;
    ok(json!({}))
}

async fn quota(State(sh): State<Arc<Shared>>) -> ApiResult {
    ok(sh.lock().quota())
}

async fn consumption(State(sh): State<Arc<Shared>>) -> ApiResult {
    ok(json!({"totalUsage": sh.lock().quota_used}))
}

async fn content(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let (ct, bytes) = sh.lock().content(&id).ok_or_else(ApiError::not_found)?;
    Ok(([(axum::http::header::CONTENT_TYPE, ct)], bytes).into_response())
}

async fn profile(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    sh.lock()
        .profile(&id)
        .map(|v| Json(v).into_response())
        .ok_or_else(ApiError::not_found)
}

async fn get_webhook(State(sh): State<Arc<Shared>>) -> ApiResult {
    match lock(&sh.webhook_url).clone() {
        Some(u) => ok(json!({"endpoint": u, "active": true})),
        None => Err(ApiError::not_found()),
    }
}

async fn put_webhook(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult {
    let v = parse_json(&ctx, &body)?;
    let url = v.get("endpoint").and_then(Value::as_str).unwrap_or("");
    if url::Url::parse(url).is_err() {
        return Err(ApiError::bad_request(vec![(
            "endpoint".into(),
            "Invalid URL".into(),
        )]));
    }
    sh.set_webhook_url(url);
    ok(json!({}))
}

// ---- rich menus ------------------------------------------------------------------------------------

async fn create_menu(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult {
    let v = parse_json(&ctx, &body)?;
    let id = format!("richmenu-{}", uuid::Uuid::new_v4().simple());
    let id = sh.lock().create_menu(v, id)?;
    ok(json!({"richMenuId": id}))
}

async fn validate_menu(Extension(ctx): Extension<Ctx>, body: Bytes) -> ApiResult {
    let v = parse_json(&ctx, &body)?;
    let mut details = Vec::new();
    limits::check_rich_menu(&v, &mut details);
    if details.is_empty() {
        ok(json!({}))
    } else {
        Err(ApiError::bad_request(details))
    }
}

async fn list_menus(State(sh): State<Arc<Shared>>) -> ApiResult {
    ok(sh.lock().list_menus())
}

async fn get_menu(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    sh.lock()
        .menu_json(&id)
        .map(|v| Json(v).into_response())
        .ok_or_else(ApiError::not_found)
}

async fn delete_menu(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    sh.lock().delete_menu(&id)?;
    ok(json!({}))
}

async fn upload_image(
    State(sh): State<Arc<Shared>>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let ct = h
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    sh.lock().upload_image(&id, &ct, body)?;
    ok(json!({}))
}

async fn download_image(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let (ct, bytes) = sh.lock().image(&id).ok_or_else(ApiError::not_found)?;
    Ok(([(axum::http::header::CONTENT_TYPE, ct)], bytes).into_response())
}

async fn set_default(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    sh.lock().set_default(&id)?;
    ok(json!({}))
}

async fn get_default(State(sh): State<Arc<Shared>>) -> ApiResult {
    match sh.lock().default_menu() {
        Some(id) => ok(json!({"richMenuId": id})),
        None => Err(ApiError::not_found()),
    }
}

async fn cancel_default(State(sh): State<Arc<Shared>>) -> ApiResult {
    sh.lock().cancel_default();
    ok(json!({}))
}

async fn get_user_menu(State(sh): State<Arc<Shared>>, Path(user): Path<String>) -> ApiResult {
    match sh.lock().user_link(&user) {
        Some(id) => ok(json!({"richMenuId": id})),
        None => Err(ApiError::not_found()),
    }
}

async fn unlink_user(State(sh): State<Arc<Shared>>, Path(user): Path<String>) -> ApiResult {
    sh.lock().unlink(&user);
    ok(json!({}))
}

async fn link_user(
    State(sh): State<Arc<Shared>>,
    Path((user, menu)): Path<(String, String)>,
) -> ApiResult {
    sh.lock().link(&user, &menu)?;
    ok(json!({}))
}

fn user_ids(v: &Value) -> Vec<String> {
    v.get("userIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

async fn bulk_link(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult {
    let v = parse_json(&ctx, &body)?;
    let menu = v.get("richMenuId").and_then(Value::as_str).unwrap_or("");
    sh.lock().bulk_link(&user_ids(&v), menu)?;
    accepted()
}

async fn bulk_unlink(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult {
    let v = parse_json(&ctx, &body)?;
    sh.lock().bulk_unlink(&user_ids(&v));
    accepted()
}

fn operations(v: &Value) -> Vec<Value> {
    v.get("operations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Answers 200 with `{}` as the reference documents (the spec says 202; see `spec::validate_response`).
async fn batch(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult {
    let v = parse_json(&ctx, &body)?;
    let resume = v.get("resumeRequestKey").and_then(Value::as_str);
    sh.lock()
        .batch(&operations(&v), resume, &ctx.request_id, ctx.now)?;
    ok(json!({}))
}

async fn validate_batch(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult {
    let v = parse_json(&ctx, &body)?;
    sh.lock().validate_batch(&operations(&v))?;
    ok(json!({}))
}

async fn batch_progress(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<RequestIdQuery>,
) -> ApiResult {
    sh.lock()
        .batch_progress(&q.request_id, ctx.now)
        .map(|v| Json(v).into_response())
        .ok_or_else(ApiError::not_found)
}

async fn create_alias(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult {
    let v = parse_json(&ctx, &body)?;
    let alias = v
        .get("richMenuAliasId")
        .and_then(Value::as_str)
        .unwrap_or("");
    let menu = v.get("richMenuId").and_then(Value::as_str).unwrap_or("");
    sh.lock().create_alias(alias, menu)?;
    ok(json!({}))
}

async fn update_alias(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<Ctx>,
    Path(alias): Path<String>,
    body: Bytes,
) -> ApiResult {
    let v = parse_json(&ctx, &body)?;
    let menu = v.get("richMenuId").and_then(Value::as_str).unwrap_or("");
    sh.lock().update_alias(&alias, menu)?;
    ok(json!({}))
}

async fn get_alias(State(sh): State<Arc<Shared>>, Path(alias): Path<String>) -> ApiResult {
    sh.lock()
        .alias(&alias)
        .map(|v| Json(v).into_response())
        .ok_or_else(ApiError::not_found)
}

async fn delete_alias(State(sh): State<Arc<Shared>>, Path(alias): Path<String>) -> ApiResult {
    sh.lock().delete_alias(&alias)?;
    ok(json!({}))
}

async fn list_aliases(State(sh): State<Arc<Shared>>) -> ApiResult {
    ok(sh.lock().list_aliases())
}

// ---- the stand-in's own endpoints -----------------------------------------------------------------

async fn user_messages(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let messages = sh.lock().received(&id);
    Json(json!({"userId": id, "messages": messages})).into_response()
}

async fn user_richmenu(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let (menu, source) = match sh.lock().shown(&id) {
        Shown::User(m) => (Some(m), "user"),
        Shown::Default(m) => (Some(m), "default"),
        Shown::None => (None, "none"),
    };
    Json(json!({"userId": id, "richMenuId": menu, "source": source})).into_response()
}

/// What a simulated resident does (`POST /sandbox/users/{id}/events`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SimEvent {
    /// `follow`, `unfollow`, `text`, `location`, `image`, `postback`.
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    title: Option<String>,
    address: Option<String>,
    data: Option<String>,
    params: Option<Value>,
    /// Image bytes (base64); a small built-in PNG when absent.
    content_base64: Option<String>,
    content_type: Option<String>,
    display_name: Option<String>,
    #[serde(default)]
    is_unblocked: bool,
    /// Sign with a wrong secret, to test the daemon's rejection.
    #[serde(default)]
    bad_signature: bool,
    /// Event time in epoch milliseconds (default: now), to simulate events arriving out of order.
    timestamp: Option<i64>,
}

/// A 1×1 PNG, the default photo a simulated resident sends.
const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// A ULID (what LINE uses for `webhookEventId`): 48-bit milliseconds + 80 random bits, Crockford base32.
fn ulid(now: DateTime<Utc>) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let ms = now.timestamp_millis().max(0) as u128 & ((1 << 48) - 1);
    let rnd: u128 = rand::thread_rng().gen::<u128>() & ((1 << 80) - 1);
    let n = (ms << 80) | rnd;
    (0..26)
        .rev()
        .map(|i| ALPHABET[((n >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// `Base64(HMAC-SHA256(channel secret, body))`, LINE's `X-Line-Signature`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn base_event(kind: &str, user: &str, now: DateTime<Utc>) -> Value {
    json!({
        "type": kind,
        "mode": "active",
        "timestamp": now.timestamp_millis(),
        "source": {"type": "user", "userId": user},
        "webhookEventId": ulid(now),
        "deliveryContext": {"isRedelivery": false},
    })
}

/// Sends events to the webhook URL, signed; returns the daemon's status or why it could not be reached.
async fn deliver(sh: &Shared, events: &[Value], bad_signature: bool) -> Value {
    let Some(url) = lock(&sh.webhook_url).clone() else {
        return json!({"webhookStatus": null, "webhookError": "no webhook URL: start with --webhook-url or PUT /v2/bot/channel/webhook/endpoint"});
    };
    let body = json!({"destination": sh.config.bot_user_id, "events": events});
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let secret = if bad_signature {
        format!("{}-wrong", sh.config.channel_secret)
    } else {
        sh.config.channel_secret.clone()
    };
    let signature = sign(&secret, &bytes);
    sh.lock().stats.webhooks_sent += 1;
    let r = sh
        .client
        .post(&url)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-line-signature", signature)
        .body(bytes)
        .send()
        .await;
    match r {
        Ok(resp) => json!({"webhookStatus": resp.status().as_u16()}),
        Err(e) => json!({"webhookStatus": null, "webhookError": e.to_string()}),
    }
}

fn sim_error(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"message": msg.into()})),
    )
        .into_response()
}

async fn user_event(
    State(sh): State<Arc<Shared>>,
    Path(user): Path<String>,
    body: Bytes,
) -> Response {
    let ev: SimEvent = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return sim_error(format!("bad simulated event: {e}")),
    };
    if super::state::parse_user_id(&user).is_none() {
        return sim_error("a LINE user id is U followed by 32 lowercase hex digits");
    }
    let now = sh.now();
    let mut event = base_event(&ev.kind, &user, now);
    if let Some(ts) = ev.timestamp {
        event["timestamp"] = json!(ts);
    }
    match ev.kind.as_str() {
        "follow" => {
            sh.lock().follow(&user, ev.display_name.clone());
            event["follow"] = json!({"isUnblocked": ev.is_unblocked});
        }
        "unfollow" => sh.lock().unfollow(&user),
        "text" => {
            let id = sh.lock().next_id();
            event["type"] = json!("message");
            event["message"] = json!({"id": id, "type": "text", "text": ev.text.unwrap_or_default(), "quoteToken": format!("q{id}")});
        }
        "location" => {
            let (Some(lat), Some(lon)) = (ev.latitude, ev.longitude) else {
                return sim_error("a location event needs latitude and longitude");
            };
            let id = sh.lock().next_id();
            event["type"] = json!("message");
            let mut m = json!({"id": id, "type": "location", "latitude": lat, "longitude": lon});
            if let Some(t) = ev.title {
                m["title"] = json!(t);
            }
            if let Some(a) = ev.address {
                m["address"] = json!(a);
            }
            event["message"] = m;
        }
        "image" => {
            let bytes = match ev.content_base64 {
                Some(b) => match base64::engine::general_purpose::STANDARD.decode(b) {
                    Ok(b) => b,
                    Err(e) => return sim_error(format!("contentBase64: {e}")),
                },
                None => TINY_PNG.to_vec(),
            };
            let ct = ev.content_type.unwrap_or_else(|| "image/png".into());
            let mut acc = sh.lock();
            let id = acc.next_id();
            acc.store_content(&id, &ct, bytes.into());
            drop(acc);
            event["type"] = json!("message");
            event["message"] = json!({"id": id, "type": "image", "contentProvider": {"type": "line"}, "quoteToken": format!("q{id}")});
        }
        "postback" => {
            let mut pb = json!({"data": ev.data.unwrap_or_default()});
            if let Some(p) = ev.params {
                pb["params"] = p;
            }
            event["postback"] = pb;
        }
        other => {
            return sim_error(format!(
                "unknown simulated event type {other:?}: use follow, unfollow, text, location, image or postback"
            ))
        }
    }
    finish_event(&sh, &user, event, ev.bad_signature, now).await
}

async fn finish_event(
    sh: &Shared,
    user: &str,
    mut event: Value,
    bad_signature: bool,
    now: DateTime<Utc>,
) -> Response {
    if event["type"] != "unfollow" {
        let token = uuid::Uuid::new_v4().simple().to_string();
        sh.lock().issue_reply_token(user, &token, now, now);
        event["replyToken"] = json!(token);
    }
    let id = event["webhookEventId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    lock(&sh.events).insert(id, event.clone());
    let mut out = deliver(sh, std::slice::from_ref(&event), bad_signature).await;
    out["event"] = event;
    Json(out).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SwitchTap {
    rich_menu_alias_id: Option<String>,
    data: Option<String>,
    /// Tap area N of the menu the user sees.
    area: Option<usize>,
}

async fn user_switch(
    State(sh): State<Arc<Shared>>,
    Path(user): Path<String>,
    body: Bytes,
) -> Response {
    let tap: SwitchTap = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) => return sim_error(format!("bad tap: {e}")),
    };
    let now = sh.now();
    let (alias, data) = match tap.area {
        Some(i) => {
            let areas = sh.lock().shown_areas(&user);
            let Some(action) = areas.get(i).and_then(|a| a.get("action")).cloned() else {
                return sim_error(format!("the menu this user sees has no area {i}"));
            };
            match action.get("type").and_then(Value::as_str) {
                Some("richmenuswitch") => (
                    action["richMenuAliasId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    action["data"].as_str().unwrap_or_default().to_string(),
                ),
                Some("postback") => {
                    let mut ev = base_event("postback", &user, now);
                    ev["postback"] = json!({"data": action["data"]});
                    return finish_event(&sh, &user, ev, false, now).await;
                }
                Some("message") => {
                    let id = sh.lock().next_id();
                    let mut ev = base_event("message", &user, now);
                    ev["message"] = json!({"id": id, "type": "text", "text": action["text"], "quoteToken": format!("q{id}")});
                    return finish_event(&sh, &user, ev, false, now).await;
                }
                _ => return Json(json!({"opened": action})).into_response(),
            }
        }
        None => match tap.rich_menu_alias_id {
            Some(a) => (a, tap.data.unwrap_or_default()),
            None => return sim_error("give richMenuAliasId or area"),
        },
    };
    let status = sh.lock().switch(&user, &alias);
    let mut ev = base_event("postback", &user, now);
    ev["postback"] =
        json!({"data": data, "params": {"newRichMenuAliasId": alias, "status": status}});
    finish_event(&sh, &user, ev, false, now).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Redeliver {
    webhook_event_id: String,
}

async fn redeliver(State(sh): State<Arc<Shared>>, Json(r): Json<Redeliver>) -> Response {
    let Some(mut event) = lock(&sh.events).get(&r.webhook_event_id).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "no such webhookEventId"})),
        )
            .into_response();
    };
    event["deliveryContext"]["isRedelivery"] = json!(true);
    if let Some(t) = event.get("replyToken").and_then(Value::as_str) {
        sh.lock().redeliver_reply_token(t, sh.now());
    }
    let mut out = deliver(&sh, std::slice::from_ref(&event), false).await;
    out["event"] = event;
    Json(out).into_response()
}

async fn sandbox_webhook(State(sh): State<Arc<Shared>>, Json(v): Json<Value>) -> Response {
    match v.get("url").and_then(Value::as_str) {
        Some(u) => {
            sh.set_webhook_url(u);
            Json(json!({"url": u})).into_response()
        }
        None => sim_error("body must be {\"url\": \"http://…/webhook\"}"),
    }
}

async fn stats(State(sh): State<Arc<Shared>>) -> Response {
    let acc = sh.lock();
    let mut v = serde_json::to_value(&acc.stats).unwrap_or_default();
    v["users"] = json!(acc.user_count());
    v["quotaUsed"] = json!(acc.quota_used);
    v["linkedUsersPerMenu"] = json!(acc.link_counts());
    v["defaultRichMenuId"] = json!(acc.default_menu());
    Json(v).into_response()
}

async fn get_faults(State(sh): State<Arc<Shared>>) -> Response {
    Json(lock(&sh.faults).clone()).into_response()
}

async fn set_faults(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) if (0.0..=1.0).contains(&f.error_rate) && (0.0..=1.0).contains(&f.drop_rate) => {
            *lock(&sh.faults) = f.clone();
            Json(f).into_response()
        }
        Ok(_) => sim_error("error_rate and drop_rate are shares between 0.0 and 1.0"),
        Err(e) => sim_error(format!("bad faults: {e}")),
    }
}

async fn clock(State(sh): State<Arc<Shared>>) -> Response {
    Json(json!({"now": sh.now().to_rfc3339()})).into_response()
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(State(sh): State<Arc<Shared>>, Json(a): Json<Advance>) -> Response {
    if a.seconds < 0 {
        return sim_error("the clock only moves forward");
    }
    *lock(&sh.clock_offset) += chrono::Duration::seconds(a.seconds);
    let now = sh.now();
    sh.lock().prune(now);
    Json(json!({"now": now.to_rfc3339()})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_lines_published_test_vector() {
        let body = br#"{"destination":"U8e742f61d673b39c7fff3cecb7536ef0","events":[]}"#;
        assert_eq!(
            sign("8c570fa6dd201bb328f1c1eac23a96d8", body),
            "GhRKmvmHys4Pi8DxkF4+EayaH0OqtJtaZxgTD9fMDLs="
        );
    }

    #[test]
    fn webhook_event_ids_are_26_character_ulids() {
        let id = ulid(Utc::now());
        assert_eq!(id.len(), 26);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
