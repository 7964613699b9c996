//! The one way Sonae talks to LINE: [`LineClient`].
//!
//! # Design constraints
//! * **Exactly once for counted messages.** Push, multicast and broadcast always carry an
//!   `X-Line-Retry-Key` chosen by the caller ([`RetryKey`]) — the outbox writes the key down before the first
//!   attempt. LINE executes a request at most once per key for 24 h and answers a repeat with `409` and
//!   `x-line-accepted-request-id`; that is [`SendOutcome::AlreadyAccepted`], a success. Retries therefore reuse
//!   the key, and a key must not be retried after 24 h (the outbox's job).
//! * **What is retried.** Network errors, timeouts and 5xx are retried here with the same key and full-jitter
//!   exponential backoff ([`crate::backoff`]: `sleep = random(0, min(cap, base·2^(attempt-1)))`, base 500 ms,
//!   cap 30 s, 5 attempts by default). Other 4xx are never retried and come back with LINE's error body. Reply has no retry key, so a
//!   reply is retried only when the connection was never made (a reply token is single-use anyway). Creating a
//!   rich menu is not idempotent either and is likewise retried only on connect errors.
//! * **429.** "The API rate limit has been exceeded" empties our bucket for that class and backs off (LINE
//!   gives no `Retry-After`). "You have reached your monthly limit." is not fixed by waiting: counted traffic
//!   stops ([`SendOutcome::QuotaExhausted`] without a network call) until [`LineClient::clear_quota_stop`] or
//!   until `quota_probe_interval` has passed (then one request probes), and the operator is alarmed: health
//!   `line` Degraded plus a stored problem.
//! * Requests are paced by [`RateLimiter`] at LINE's documented limits before they leave; multicasts by the
//!   outbox, their only sender, so each request passes exactly one token bucket.
//! * Message limits ([`limits::check_messages`]) are checked before sending: a violation is a
//!   [`ClientError::Limit`], never a request.
//! * Expected conditions are values ([`SendOutcome`]); [`ClientError`] is for "could not do it".
//! * Never logs the access token or a full user id.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use crate::health::{Health, Status};
use crate::ids::LineUserId;
use crate::line::limits::{self, LimitError, RateClass, RateLimiter, WouldExceed};
use crate::line::message::*;
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::store::Store;

/// The exact 429 body message LINE uses for an exhausted monthly quota.
pub const MONTHLY_LIMIT_MESSAGE: &str = "You have reached your monthly limit.";

/// The value of `X-Line-Retry-Key`: a UUID chosen by the caller before the first attempt.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryKey(uuid::Uuid);

impl RetryKey {
    pub fn new() -> Self {
        RetryKey(uuid::Uuid::new_v4())
    }

    /// Parses a stored key; only UUIDs are accepted (LINE rejects anything else).
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s).ok().map(RetryKey)
    }

    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl Default for RetryKey {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RetryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

impl fmt::Debug for RetryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RetryKey({})", self.0.hyphenated())
    }
}

/// What happened to a push, multicast or broadcast. The outbox stores it (serialises as
/// `{"outcome": "accepted", "request_id": …}` etc.).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SendOutcome {
    /// 200: LINE accepted the request (accepted is not delivered: blocked users are silently skipped).
    Accepted {
        request_id: Option<String>,
        sent_messages: Vec<SentMessage>,
    },
    /// 409: a request with this retry key was accepted earlier; `request_id` is that request's id.
    AlreadyAccepted { request_id: Option<String> },
    /// Another 4xx: LINE refused the request; retrying will not help.
    Rejected { status: u16, body: ErrorBody },
    /// 429 "You have reached your monthly limit." (now or earlier): counted traffic is stopped.
    QuotaExhausted { body: ErrorBody },
    /// Retries exhausted on network errors, timeouts, 5xx or rate limiting. Safe to try again later with
    /// the same key, within 24 h of the first attempt.
    GaveUp { attempts: u32, last_error: String },
    /// 429 "The API rate limit has been exceeded" on a single-attempt send (`*_once`): the caller backs off.
    RateLimited { message: String },
}

impl SendOutcome {
    /// Accepted now or before.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            SendOutcome::Accepted { .. } | SendOutcome::AlreadyAccepted { .. }
        )
    }

    /// Short label for metrics and storage.
    pub fn label(&self) -> &'static str {
        match self {
            SendOutcome::Accepted { .. } => "accepted",
            SendOutcome::AlreadyAccepted { .. } => "already_accepted",
            SendOutcome::Rejected { .. } => "rejected",
            SendOutcome::QuotaExhausted { .. } => "quota_exhausted",
            SendOutcome::GaveUp { .. } => "gave_up",
            SendOutcome::RateLimited { .. } => "rate_limited",
        }
    }
}

/// Could not complete a non-sending call (rich menus, profile, content).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error("LINE answered {status}: {}", .body.message)]
    Status { status: u16, body: ErrorBody },
    #[error("LINE could not be reached after {attempts} attempt(s): {last_error}")]
    Unavailable { attempts: u32, last_error: String },
    #[error(transparent)]
    RateLimited(#[from] WouldExceed),
    #[error("LINE's answer could not be read: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Retry and timeout settings.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Per-attempt timeout (connect + response).
    pub request_timeout: Duration,
    /// How long a call may wait for a rate-limit token before giving up.
    pub max_rate_wait: Duration,
    /// After a monthly-limit 429, counted sends are refused locally for this long, then one probes.
    pub quota_probe_interval: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            max_rate_wait: Duration::from_secs(60),
            quota_probe_interval: Duration::from_secs(15 * 60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (`attempt` starts at 1): [`crate::backoff::full_jitter`], so
    /// 0.5 s, 1 s, 2 s … at most `max_backoff` with the defaults.
    pub fn backoff(&self, attempt: u32) -> Duration {
        crate::backoff::full_jitter(attempt, self.base_backoff, self.max_backoff)
    }
}

/// Base URLs and credentials.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub api_base: String,
    pub api_data_base: String,
    pub access_token: Secret,
    pub retry: RetryPolicy,
}

/// Where operator-visible alarms go (quota exhausted, LINE unreachable).
#[derive(Clone)]
pub struct Alarm {
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub store: Option<Store>,
}

/// A raw answer from LINE.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Raw {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RetryMode {
    /// Retry network errors, timeouts, 5xx and rate-limit 429s.
    Always,
    /// Retry only when the connection was never established (the request cannot have reached LINE).
    ConnectOnly,
    /// One attempt; 429s and 5xx are answered, not retried: the caller owns retries and backoff (the
    /// outbox, whose 429 path pauses the whole dispatcher).
    Once,
}

enum Payload {
    None,
    Json(Vec<u8>),
    Bytes { content_type: String, data: Vec<u8> },
}

struct Call<'a> {
    method: Method,
    url: String,
    class: RateClass,
    payload: Payload,
    retry_key: Option<RetryKey>,
    mode: RetryMode,
    /// Override of `max_rate_wait` (batch control must not wait 20 minutes).
    max_rate_wait: Option<Duration>,
    what: &'a str,
}

/// A downloaded message content (a photo a resident sent).
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    Ready {
        content_type: String,
        bytes: Bytes,
    },
    /// 202: video/audio still being prepared; try again later.
    Preparing,
    /// 404 or 410: unknown, expired, or unsent by the user.
    Gone {
        status: u16,
    },
}

/// The accepted batch-control request: its request id is what progress polling asks about.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchAccepted {
    pub request_id: String,
}

/// The LINE Messaging API client. Cheap to clone.
#[derive(Clone)]
pub struct LineClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api: String,
    data: String,
    token: Secret,
    retry: RetryPolicy,
    limiter: RateLimiter,
    alarm: Option<Alarm>,
    /// Set when LINE answered the monthly-limit 429; counted sends stop until probe time.
    quota_stopped: Mutex<Option<Instant>>,
}

impl fmt::Debug for LineClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineClient")
            .field("api", &self.inner.api)
            .field("data", &self.inner.data)
            .finish_non_exhaustive()
    }
}

fn trim(base: &str) -> String {
    base.trim_end_matches('/').to_string()
}

impl LineClient {
    pub fn new(config: ClientConfig) -> anyhow::Result<LineClient> {
        let http = reqwest::Client::builder()
            .timeout(config.retry.request_timeout)
            .connect_timeout(config.retry.request_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("sonae/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(LineClient {
            inner: Arc::new(Inner {
                http,
                api: trim(&config.api_base),
                data: trim(&config.api_data_base),
                token: config.access_token,
                retry: config.retry,
                limiter: RateLimiter::new(),
                alarm: None,
                quota_stopped: Mutex::new(None),
            }),
        })
    }

    /// Like [`LineClient::new`], reporting alarms to health, metrics and the problems table.
    pub fn with_alarm(config: ClientConfig, alarm: Alarm) -> anyhow::Result<LineClient> {
        let c = Self::new(config)?;
        let mut inner = Arc::try_unwrap(c.inner).map_err(|_| anyhow::anyhow!("fresh client"))?;
        inner.alarm = Some(alarm);
        Ok(LineClient {
            inner: Arc::new(inner),
        })
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// Whether counted traffic is stopped by an exhausted monthly quota.
    pub fn quota_stopped(&self) -> bool {
        self.inner
            .quota_stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Lets counted traffic flow again (an operator raised the quota).
    pub fn clear_quota_stop(&self) {
        *self
            .inner
            .quota_stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(a) = &self.inner.alarm {
            a.health.set("line", Status::Ok, "");
        }
    }

    fn api(&self, path: &str) -> String {
        format!("{}{}", self.inner.api, path)
    }

    fn data(&self, path: &str) -> String {
        format!("{}{}", self.inner.data, path)
    }

    fn metric(&self, class: RateClass, outcome: &'static str) {
        if let Some(a) = &self.inner.alarm {
            a.metrics.inc(
                "sonae_line_requests_total",
                "Requests to the LINE API by rate class and outcome.",
                &[("class", class.as_str()), ("outcome", outcome)],
            );
        }
    }

    /// Sends one call, retrying as its mode allows. Returns the last answer that is not retried, or
    /// `Unavailable` when attempts ran out.
    async fn execute(&self, call: Call<'_>) -> Result<Raw, ClientError> {
        let policy = &self.inner.retry;
        let mut attempt = 0u32;
        let mut last_error;
        loop {
            attempt += 1;
            self.inner
                .limiter
                .acquire(
                    call.class,
                    call.max_rate_wait.unwrap_or(policy.max_rate_wait),
                )
                .await?;
            let mut req = self
                .inner
                .http
                .request(call.method.clone(), &call.url)
                .bearer_auth(self.inner.token.expose());
            if let Some(k) = call.retry_key {
                req = req.header("X-Line-Retry-Key", k.to_string());
            }
            req = match &call.payload {
                Payload::None => req,
                Payload::Json(b) => req.header(CONTENT_TYPE, "application/json").body(b.clone()),
                Payload::Bytes { content_type, data } => req
                    .header(CONTENT_TYPE, content_type.as_str())
                    .body(data.clone()),
            };
            let result = async {
                let resp = req.send().await?;
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let body = resp.bytes().await?;
                Ok::<_, reqwest::Error>(Raw {
                    status,
                    headers,
                    body,
                })
            }
            .await;
            match result {
                Ok(raw) => {
                    let request_id = raw.header("x-line-request-id").unwrap_or_default();
                    tracing::debug!(
                        what = call.what,
                        status = raw.status,
                        request_id,
                        attempt,
                        "LINE answered"
                    );
                    if raw.status >= 500 {
                        self.metric(call.class, "server_error");
                        last_error = format!("HTTP {}", raw.status);
                        if call.mode != RetryMode::Always {
                            return Ok(raw);
                        }
                    } else if raw.status == 429 {
                        let body = ErrorBody::parse(&raw.body);
                        if body.message.contains("monthly limit") {
                            self.metric(call.class, "quota");
                            return Ok(raw);
                        }
                        self.metric(call.class, "rate_limited");
                        self.inner.limiter.drain(call.class);
                        last_error = format!("HTTP 429: {}", body.message);
                        if call.mode != RetryMode::Always {
                            return Ok(raw);
                        }
                    } else {
                        self.metric(
                            call.class,
                            match raw.status {
                                200..=299 => "ok",
                                409 => "conflict",
                                _ => "client_error",
                            },
                        );
                        return Ok(raw);
                    }
                }
                Err(e) => {
                    self.metric(call.class, "network");
                    last_error = crate::telemetry::chain(&e);
                    let never_sent = e.is_connect();
                    if call.mode == RetryMode::ConnectOnly && !never_sent {
                        return Err(ClientError::Unavailable {
                            attempts: attempt,
                            last_error,
                        });
                    }
                }
            }
            if attempt >= policy.max_attempts || call.mode == RetryMode::Once {
                tracing::warn!(what = call.what, attempt, error = %last_error, "LINE request gave up");
                return Err(ClientError::Unavailable {
                    attempts: attempt,
                    last_error,
                });
            }
            let mut wait = policy.backoff(attempt);
            if last_error.starts_with("HTTP 429") {
                // Our bucket is empty now; never come back sooner than one token period.
                wait = wait.max(call.class.limit().1);
            }
            tracing::warn!(what = call.what, attempt, error = %last_error, wait_ms = wait.as_millis() as u64, "LINE request failed; retrying with the same retry key");
            tokio::time::sleep(wait).await;
        }
    }

    /// Maps an answer to the response type, or to `ClientError::Status`.
    fn decode<T: DeserializeOwned>(raw: Raw) -> Result<T, ClientError> {
        if (200..300).contains(&raw.status) {
            let body: &[u8] = if raw.body.is_empty() {
                b"{}"
            } else {
                &raw.body
            };
            serde_json::from_slice(body).map_err(|e| ClientError::Decode(e.to_string()))
        } else {
            Err(ClientError::Status {
                status: raw.status,
                body: ErrorBody::parse(&raw.body),
            })
        }
    }

    fn ok(raw: Raw) -> Result<(), ClientError> {
        if (200..300).contains(&raw.status) {
            Ok(())
        } else {
            Err(ClientError::Status {
                status: raw.status,
                body: ErrorBody::parse(&raw.body),
            })
        }
    }

    fn json<T: Serialize>(v: &T) -> Payload {
        Payload::Json(serde_json::to_vec(v).expect("request types serialise"))
    }

    // ------------------------------------------------------------ counted sends

    async fn send_counted(
        &self,
        class: RateClass,
        path: &str,
        body: Payload,
        key: RetryKey,
        what: &str,
        mode: RetryMode,
    ) -> SendOutcome {
        {
            let mut stopped = self
                .inner
                .quota_stopped
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(at) = *stopped {
                if at.elapsed() < self.inner.retry.quota_probe_interval {
                    return SendOutcome::QuotaExhausted {
                        body: ErrorBody {
                            message: MONTHLY_LIMIT_MESSAGE.into(),
                            ..ErrorBody::default()
                        },
                    };
                }
                // Probe: let this one through; a new 429 re-arms the stop.
                *stopped = Some(Instant::now());
            }
        }
        let call = Call {
            method: Method::POST,
            url: self.api(path),
            class,
            payload: body,
            retry_key: Some(key),
            mode,
            max_rate_wait: None,
            what,
        };
        let attempts = match mode {
            RetryMode::Once => 1,
            _ => self.inner.retry.max_attempts,
        };
        let raw = match self.execute(call).await {
            Ok(raw) => raw,
            Err(ClientError::Unavailable {
                attempts,
                last_error,
            }) => {
                return SendOutcome::GaveUp {
                    attempts,
                    last_error,
                }
            }
            Err(ClientError::RateLimited(w)) => {
                return SendOutcome::GaveUp {
                    attempts: 0,
                    last_error: w.to_string(),
                }
            }
            Err(e) => {
                return SendOutcome::GaveUp {
                    attempts: 0,
                    last_error: e.to_string(),
                }
            }
        };
        let outcome = match raw.status {
            200..=299 => {
                let resp: SendResponse = serde_json::from_slice(&raw.body).unwrap_or_default();
                SendOutcome::Accepted {
                    request_id: raw.header("x-line-request-id"),
                    sent_messages: resp.sent_messages,
                }
            }
            409 => SendOutcome::AlreadyAccepted {
                request_id: raw.header("x-line-accepted-request-id"),
            },
            429 => {
                let body = ErrorBody::parse(&raw.body);
                if body.message.contains("monthly limit") {
                    self.quota_exhausted(what, &body).await;
                    SendOutcome::QuotaExhausted { body }
                } else if mode == RetryMode::Once {
                    SendOutcome::RateLimited {
                        message: body.message,
                    }
                } else {
                    SendOutcome::GaveUp {
                        attempts,
                        last_error: format!("HTTP 429: {}", body.message),
                    }
                }
            }
            s if s >= 500 => SendOutcome::GaveUp {
                attempts,
                last_error: format!("HTTP {s}"),
            },
            status => SendOutcome::Rejected {
                status,
                body: ErrorBody::parse(&raw.body),
            },
        };
        if outcome.is_success() && self.quota_stopped() {
            self.clear_quota_stop();
        }
        outcome
    }

    async fn quota_exhausted(&self, what: &str, body: &ErrorBody) {
        let first = {
            let mut stopped = self
                .inner
                .quota_stopped
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let first = stopped.is_none();
            *stopped = Some(Instant::now());
            first
        };
        tracing::error!(
            what,
            "LINE monthly message limit reached; counted sends are stopped"
        );
        if let Some(a) = &self.inner.alarm {
            a.health.set(
                "line",
                Status::Degraded,
                "LINEの月間メッセージ上限に達したため、プッシュ・マルチキャスト送信を停止しています",
            );
            if first {
                if let Some(store) = &a.store {
                    store
                        .record_problem(
                            "line.client",
                            "LINEの月間メッセージ上限に達しました。上限を引き上げるまで住民への送信（応答を除く）は停止します。".into(),
                            Some(format!("{what}: 429 {}", body.message)),
                        )
                        .await;
                }
            }
        }
    }

    /// `POST /v2/bot/message/push` to one user, group or room.
    pub async fn push(
        &self,
        to: &str,
        messages: Vec<Message>,
        key: RetryKey,
    ) -> Result<SendOutcome, LimitError> {
        limits::check_messages(&messages)?;
        let body = Self::json(&PushRequest {
            to: to.into(),
            messages,
            notification_disabled: false,
        });
        Ok(self
            .send_counted(
                RateClass::Push,
                "/v2/bot/message/push",
                body,
                key,
                "push",
                RetryMode::Always,
            )
            .await)
    }

    /// One `POST /v2/bot/message/multicast` attempt to 1–500 users: a rate-limit 429 is
    /// [`SendOutcome::RateLimited`], a 5xx or network error [`SendOutcome::GaveUp`]. Multicasts go through
    /// the outbox only, which owns retrying and backing off, and paces them with the one multicast bucket
    /// (this client does not take a second token; see [`limits`]).
    pub async fn multicast_once(
        &self,
        to: &[LineUserId],
        messages: Vec<Message>,
        key: RetryKey,
    ) -> Result<SendOutcome, LimitError> {
        limits::check_recipients(to.len())?;
        limits::check_messages(&messages)?;
        let body = Self::json(&MulticastRequest {
            to: to.iter().map(|u| u.as_str().to_string()).collect(),
            messages,
            notification_disabled: false,
        });
        Ok(self
            .send_counted(
                RateClass::Multicast,
                "/v2/bot/message/multicast",
                body,
                key,
                "multicast",
                RetryMode::Once,
            )
            .await)
    }

    /// `POST /v2/bot/message/broadcast` to every friend (60/h).
    pub async fn broadcast(
        &self,
        messages: Vec<Message>,
        key: RetryKey,
    ) -> Result<SendOutcome, LimitError> {
        limits::check_messages(&messages)?;
        let body = Self::json(&BroadcastRequest {
            messages,
            notification_disabled: false,
        });
        Ok(self
            .send_counted(
                RateClass::Broadcast,
                "/v2/bot/message/broadcast",
                body,
                key,
                "broadcast",
                RetryMode::Always,
            )
            .await)
    }

    /// `POST /v2/bot/message/reply` (free, no retry key; the token is single-use and valid ~1 minute).
    pub async fn reply(
        &self,
        reply_token: &str,
        messages: Vec<Message>,
    ) -> Result<SendOutcome, LimitError> {
        limits::check_messages(&messages)?;
        let call = Call {
            method: Method::POST,
            url: self.api("/v2/bot/message/reply"),
            class: RateClass::Reply,
            payload: Self::json(&ReplyRequest {
                reply_token: reply_token.into(),
                messages,
                notification_disabled: false,
            }),
            retry_key: None,
            mode: RetryMode::ConnectOnly,
            max_rate_wait: None,
            what: "reply",
        };
        Ok(match self.execute(call).await {
            Ok(raw) if (200..300).contains(&raw.status) => SendOutcome::Accepted {
                request_id: raw.header("x-line-request-id"),
                sent_messages: serde_json::from_slice::<SendResponse>(&raw.body)
                    .unwrap_or_default()
                    .sent_messages,
            },
            Ok(raw) => SendOutcome::Rejected {
                status: raw.status,
                body: ErrorBody::parse(&raw.body),
            },
            Err(e) => SendOutcome::GaveUp {
                attempts: 1,
                last_error: e.to_string(),
            },
        })
    }

    /// `POST /v2/bot/message/validate/{kind}` (`kind`: reply, push, multicast, narrowcast, broadcast).
    pub async fn validate_messages(
        &self,
        kind: &str,
        messages: &[Message],
    ) -> Result<(), ClientError> {
        let raw = self
            .execute(self.simple(
                Method::POST,
                self.api(&format!("/v2/bot/message/validate/{kind}")),
                RateClass::RichMenu,
                Self::json(&serde_json::json!({ "messages": messages })),
                "validate messages",
            ))
            .await?;
        Self::ok(raw)
    }

    fn simple<'a>(
        &self,
        method: Method,
        url: String,
        class: RateClass,
        payload: Payload,
        what: &'a str,
    ) -> Call<'a> {
        Call {
            method,
            url,
            class,
            payload,
            retry_key: None,
            mode: RetryMode::Always,
            max_rate_wait: None,
            what,
        }
    }

    // ------------------------------------------------------------ users and content

    /// `GET /v2/bot/profile/{userId}`; `Ok(None)` when LINE does not know the user (404).
    pub async fn profile(&self, user: &LineUserId) -> Result<Option<Profile>, ClientError> {
        let raw = self
            .execute(self.simple(
                Method::GET,
                self.api(&format!("/v2/bot/profile/{}", user.as_str())),
                RateClass::Profile,
                Payload::None,
                "profile",
            ))
            .await?;
        if raw.status == 404 {
            return Ok(None);
        }
        Self::decode(raw).map(Some)
    }

    /// `GET https://api-data.line.me/v2/bot/message/{messageId}/content`, at most `max_bytes`.
    pub async fn content(
        &self,
        message_id: &str,
        max_bytes: usize,
    ) -> Result<Content, ClientError> {
        if message_id.is_empty() || !message_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ClientError::Decode(format!(
                "message id {message_id:?} is not a LINE message id"
            )));
        }
        let raw = self
            .execute(self.simple(
                Method::GET,
                self.data(&format!("/v2/bot/message/{message_id}/content")),
                RateClass::Content,
                Payload::None,
                "content",
            ))
            .await?;
        match raw.status {
            202 => Ok(Content::Preparing),
            404 | 410 => Ok(Content::Gone { status: raw.status }),
            200..=299 => {
                if raw.body.len() > max_bytes {
                    return Err(ClientError::Decode(format!(
                        "content is {} bytes; the limit is {max_bytes}",
                        raw.body.len()
                    )));
                }
                Ok(Content::Ready {
                    content_type: raw
                        .header("content-type")
                        .unwrap_or_else(|| "application/octet-stream".into()),
                    bytes: raw.body,
                })
            }
            status => Err(ClientError::Status {
                status,
                body: ErrorBody::parse(&raw.body),
            }),
        }
    }

    // ------------------------------------------------------------ rich menus

    /// `POST /v2/bot/richmenu` (100/h; not idempotent, so retried only when the connection failed).
    pub async fn create_rich_menu(&self, menu: &RichMenuRequest) -> Result<String, ClientError> {
        let mut call = self.simple(
            Method::POST,
            self.api("/v2/bot/richmenu"),
            RateClass::RichMenuCreate,
            Self::json(menu),
            "create rich menu",
        );
        call.mode = RetryMode::ConnectOnly;
        let r: RichMenuIdResponse = Self::decode(self.execute(call).await?)?;
        Ok(r.rich_menu_id)
    }

    /// `POST /v2/bot/richmenu/validate`.
    pub async fn validate_rich_menu(&self, menu: &RichMenuRequest) -> Result<(), ClientError> {
        let raw = self
            .execute(self.simple(
                Method::POST,
                self.api("/v2/bot/richmenu/validate"),
                RateClass::RichMenu,
                Self::json(menu),
                "validate rich menu",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `POST https://api-data.line.me/v2/bot/richmenu/{id}/content` (PNG or JPEG, ≤ 1 MB, once per menu).
    pub async fn upload_rich_menu_image(
        &self,
        id: &str,
        content_type: &str,
        image: Vec<u8>,
    ) -> Result<(), ClientError> {
        let raw = self
            .execute(self.simple(
                Method::POST,
                self.data(&format!("/v2/bot/richmenu/{id}/content")),
                RateClass::RichMenu,
                Payload::Bytes {
                    content_type: content_type.into(),
                    data: image,
                },
                "upload rich menu image",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `GET /v2/bot/richmenu/list`.
    pub async fn list_rich_menus(&self) -> Result<Vec<RichMenuResponse>, ClientError> {
        let raw = self
            .execute(self.simple(
                Method::GET,
                self.api("/v2/bot/richmenu/list"),
                RateClass::RichMenu,
                Payload::None,
                "list rich menus",
            ))
            .await?;
        Ok(Self::decode::<RichMenuList>(raw)?.richmenus)
    }

    /// `GET /v2/bot/richmenu/{id}`; `Ok(None)` on 404.
    pub async fn get_rich_menu(&self, id: &str) -> Result<Option<RichMenuResponse>, ClientError> {
        let raw = self
            .execute(self.simple(
                Method::GET,
                self.api(&format!("/v2/bot/richmenu/{id}")),
                RateClass::RichMenu,
                Payload::None,
                "get rich menu",
            ))
            .await?;
        if raw.status == 404 {
            return Ok(None);
        }
        Self::decode(raw).map(Some)
    }

    /// `DELETE /v2/bot/richmenu/{id}` (100/h).
    pub async fn delete_rich_menu(&self, id: &str) -> Result<(), ClientError> {
        let raw = self
            .execute(self.simple(
                Method::DELETE,
                self.api(&format!("/v2/bot/richmenu/{id}")),
                RateClass::RichMenuDelete,
                Payload::None,
                "delete rich menu",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `POST /v2/bot/user/all/richmenu/{id}`.
    pub async fn set_default_rich_menu(&self, id: &str) -> Result<(), ClientError> {
        let raw = self
            .execute(self.simple(
                Method::POST,
                self.api(&format!("/v2/bot/user/all/richmenu/{id}")),
                RateClass::RichMenu,
                Payload::None,
                "set default rich menu",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `GET /v2/bot/user/all/richmenu`; `Ok(None)` when no default is set (404).
    pub async fn get_default_rich_menu(&self) -> Result<Option<String>, ClientError> {
        let raw = self
            .execute(self.simple(
                Method::GET,
                self.api("/v2/bot/user/all/richmenu"),
                RateClass::RichMenu,
                Payload::None,
                "get default rich menu",
            ))
            .await?;
        if raw.status == 404 {
            return Ok(None);
        }
        Ok(Some(Self::decode::<RichMenuIdResponse>(raw)?.rich_menu_id))
    }

    /// `DELETE /v2/bot/user/all/richmenu`.
    pub async fn cancel_default_rich_menu(&self) -> Result<(), ClientError> {
        let raw = self
            .execute(self.simple(
                Method::DELETE,
                self.api("/v2/bot/user/all/richmenu"),
                RateClass::RichMenu,
                Payload::None,
                "cancel default rich menu",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `POST /v2/bot/user/{userId}/richmenu/{id}` (a per-user link, shown immediately).
    pub async fn link_rich_menu(&self, user: &LineUserId, id: &str) -> Result<(), ClientError> {
        let raw = self
            .execute(self.simple(
                Method::POST,
                self.api(&format!("/v2/bot/user/{}/richmenu/{id}", user.as_str())),
                RateClass::RichMenu,
                Payload::None,
                "link rich menu",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `GET /v2/bot/user/{userId}/richmenu`; `Ok(None)` when the user has no per-user link (404).
    pub async fn get_user_rich_menu(
        &self,
        user: &LineUserId,
    ) -> Result<Option<String>, ClientError> {
        let raw = self
            .execute(self.simple(
                Method::GET,
                self.api(&format!("/v2/bot/user/{}/richmenu", user.as_str())),
                RateClass::RichMenu,
                Payload::None,
                "get user rich menu",
            ))
            .await?;
        if raw.status == 404 {
            return Ok(None);
        }
        Ok(Some(Self::decode::<RichMenuIdResponse>(raw)?.rich_menu_id))
    }

    /// `DELETE /v2/bot/user/{userId}/richmenu`.
    pub async fn unlink_rich_menu(&self, user: &LineUserId) -> Result<(), ClientError> {
        let raw = self
            .execute(self.simple(
                Method::DELETE,
                self.api(&format!("/v2/bot/user/{}/richmenu", user.as_str())),
                RateClass::RichMenu,
                Payload::None,
                "unlink rich menu",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `POST /v2/bot/richmenu/bulk/link` (1–500 users, 202: asynchronous, not proof of linking).
    pub async fn bulk_link(&self, id: &str, users: &[LineUserId]) -> Result<(), ClientError> {
        if users.is_empty() || users.len() > limits::MAX_BULK_LINK_USERS {
            return Err(LimitError::BulkUsers(users.len()).into());
        }
        let body = BulkLinkRequest {
            rich_menu_id: id.into(),
            user_ids: users.iter().map(|u| u.as_str().to_string()).collect(),
        };
        let raw = self
            .execute(self.simple(
                Method::POST,
                self.api("/v2/bot/richmenu/bulk/link"),
                RateClass::RichMenu,
                Self::json(&body),
                "bulk link",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `POST /v2/bot/richmenu/bulk/unlink` (1–500 users).
    pub async fn bulk_unlink(&self, users: &[LineUserId]) -> Result<(), ClientError> {
        if users.is_empty() || users.len() > limits::MAX_BULK_LINK_USERS {
            return Err(LimitError::BulkUsers(users.len()).into());
        }
        let body = BulkUnlinkRequest {
            user_ids: users.iter().map(|u| u.as_str().to_string()).collect(),
        };
        let raw = self
            .execute(self.simple(
                Method::POST,
                self.api("/v2/bot/richmenu/bulk/unlink"),
                RateClass::RichMenu,
                Self::json(&body),
                "bulk unlink",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `POST /v2/bot/richmenu/batch` (3/h). Never waits for a rate-limit token: a switch that cannot get one
    /// falls back to bulk links. Retries are safe because the request carries its `resumeRequestKey`.
    pub async fn batch_control(
        &self,
        request: &BatchRequest,
    ) -> Result<BatchAccepted, ClientError> {
        let mut call = self.simple(
            Method::POST,
            self.api("/v2/bot/richmenu/batch"),
            RateClass::BatchControl,
            Self::json(request),
            "rich menu batch control",
        );
        call.max_rate_wait = Some(Duration::ZERO);
        let raw = self.execute(call).await?;
        let request_id = raw.header("x-line-request-id");
        Self::ok(raw)?;
        Ok(BatchAccepted {
            request_id: request_id.ok_or_else(|| {
                ClientError::Decode("batch control answer has no x-line-request-id".into())
            })?,
        })
    }

    /// `POST /v2/bot/richmenu/validate/batch` (not counted against the 3/h).
    pub async fn validate_batch(&self, request: &BatchRequest) -> Result<(), ClientError> {
        let raw = self
            .execute(self.simple(
                Method::POST,
                self.api("/v2/bot/richmenu/validate/batch"),
                RateClass::RichMenu,
                Self::json(request),
                "validate batch",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `GET /v2/bot/richmenu/progress/batch?requestId=` (100/h).
    pub async fn batch_progress(&self, request_id: &str) -> Result<BatchProgress, ClientError> {
        let mut url = url::Url::parse(&self.api("/v2/bot/richmenu/progress/batch"))
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        url.query_pairs_mut().append_pair("requestId", request_id);
        let raw = self
            .execute(self.simple(
                Method::GET,
                url.to_string(),
                RateClass::BatchProgress,
                Payload::None,
                "batch progress",
            ))
            .await?;
        Self::decode(raw)
    }

    /// `POST /v2/bot/richmenu/alias`.
    pub async fn create_alias(&self, alias: &str, rich_menu_id: &str) -> Result<(), ClientError> {
        let body = RichMenuAlias {
            rich_menu_alias_id: alias.into(),
            rich_menu_id: rich_menu_id.into(),
        };
        let raw = self
            .execute(self.simple(
                Method::POST,
                self.api("/v2/bot/richmenu/alias"),
                RateClass::RichMenu,
                Self::json(&body),
                "create alias",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `POST /v2/bot/richmenu/alias/{aliasId}` (may be cached by LINE for a while).
    pub async fn update_alias(&self, alias: &str, rich_menu_id: &str) -> Result<(), ClientError> {
        let body = UpdateRichMenuAlias {
            rich_menu_id: rich_menu_id.into(),
        };
        let raw = self
            .execute(self.simple(
                Method::POST,
                self.api(&format!("/v2/bot/richmenu/alias/{alias}")),
                RateClass::RichMenu,
                Self::json(&body),
                "update alias",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `DELETE /v2/bot/richmenu/alias/{aliasId}` (100/h).
    pub async fn delete_alias(&self, alias: &str) -> Result<(), ClientError> {
        let raw = self
            .execute(self.simple(
                Method::DELETE,
                self.api(&format!("/v2/bot/richmenu/alias/{alias}")),
                RateClass::AliasDelete,
                Payload::None,
                "delete alias",
            ))
            .await?;
        Self::ok(raw)
    }

    /// `GET /v2/bot/richmenu/alias/list`.
    pub async fn list_aliases(&self) -> Result<Vec<RichMenuAlias>, ClientError> {
        let raw = self
            .execute(self.simple(
                Method::GET,
                self.api("/v2/bot/richmenu/alias/list"),
                RateClass::RichMenu,
                Payload::None,
                "list aliases",
            ))
            .await?;
        Ok(Self::decode::<RichMenuAliasList>(raw)?.aliases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_keys_are_hyphenated_uuids_and_parse_back() {
        let k = RetryKey::new();
        let s = k.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(RetryKey::parse(&s), Some(k));
        assert_eq!(RetryKey::parse("not-a-uuid"), None);
    }

    #[test]
    fn full_jitter_backoff_stays_below_the_exponential_ceiling_and_the_cap() {
        let p = RetryPolicy::default();
        for attempt in 1..12 {
            let ceiling = (p.base_backoff * 2u32.pow(attempt - 1)).min(p.max_backoff);
            for _ in 0..50 {
                assert!(p.backoff(attempt) <= ceiling);
            }
        }
        // Jitter: not every draw is the same.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(5)).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn outcomes_serialise_for_the_outbox_with_their_label() {
        let o = SendOutcome::AlreadyAccepted {
            request_id: Some("r-1".into()),
        };
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"outcome": "already_accepted", "request_id": "r-1"})
        );
        assert_eq!(o.label(), "already_accepted");
    }

    #[test]
    fn only_accepted_and_already_accepted_count_as_success() {
        assert!(SendOutcome::AlreadyAccepted { request_id: None }.is_success());
        assert!(!SendOutcome::Rejected {
            status: 400,
            body: ErrorBody::default()
        }
        .is_success());
        assert!(!SendOutcome::QuotaExhausted {
            body: ErrorBody::default()
        }
        .is_success());
    }
}
