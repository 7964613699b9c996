//! Operator console (運用コンソール): login, dashboard, manual hold of disaster mode, shelters, audit log,
//! problems, and `GET /api/status` for monitoring.
//!
//! # Design constraints
//! * Server-rendered HTML from minijinja templates ([`templates`]), usable without JavaScript; the only script
//!   (`console.js`, same origin, no inline code) refreshes the dashboard's live sections.
//! * Every page except the login page needs a session ([`session`]); every POST needs the session's CSRF
//!   synchronizer token (the login form a pre-session token in a cookie), plus a same-origin check
//!   (`Sec-Fetch-Site` / `Origin`) as a second line.
//! * Deny by default: each state-changing handler names the [`Role`] it needs. Hold/release of disaster mode
//!   needs `approver` or `admin` (Hawaii 2018: a mode change that reaches every resident is not a
//!   first-day-operator action).
//! * Each action is audited in the same transaction as the change: the console's own data (mode, problems,
//!   sessions) here, shelter status by the place store that owns it (`place::status::set_status_tx`).
//! * Data other parts own comes through [`providers`] traits; [`Providers::live`] holds the real sources.
//! * Responses carry a strict CSP (no inline script or style), `X-Frame-Options: DENY`,
//!   `Referrer-Policy: no-referrer`, `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`.

pub mod live;
pub mod plows;
pub mod providers;
pub mod records;
pub mod seal;
pub mod session;
pub mod templates;
pub mod users;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::mode::{self, HoldOutcome, ModeState};
use crate::secret::SecretSource;
use crate::store::Store;
pub use providers::{
    Board, DeliveryRow, DeliverySource, ShelterRow, ShelterSource, ShelterStatus, WarningRow,
    WarningSource,
};
use session::{SessionPolicy, Throttle, ThrottleCheck};
pub use users::Role;
use users::{LoginRefusal, User};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Key that signs console session cookies (at least 32 bytes).
    pub session_key: SecretSource,
    /// Bearer token for `GET /api/status` (monitoring). Unset: the endpoint answers 404.
    pub api_token: Option<SecretSource>,
    /// Directory of the console's page templates and CSS; files missing there fall back to built-in copies.
    pub templates_dir: std::path::PathBuf,
    /// A console session ends after this many seconds without a request (OWASP: 15–30 min).
    pub idle_timeout_secs: u64,
    /// A console session ends this many seconds after login however busy it is.
    pub absolute_timeout_secs: u64,
    /// Reverse proxies whose `X-Forwarded-For` is believed (its last entry is the client address used for
    /// login throttling and the audit log). Requests from other peers use the peer address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_key: SecretSource::from_env("SONAE_SESSION_KEY"),
            api_token: None,
            templates_dir: "templates/console".into(),
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 12 * 60 * 60,
            trusted_proxies: vec![
                std::net::IpAddr::from([127, 0, 0, 1]),
                std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ],
        }
    }
}

impl ConsoleConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let idle = self.idle_timeout_secs;
        if !(60..=8 * 3600).contains(&idle) {
            problems.push(format!(
                "console.idle_timeout_secs: {idle} is out of range; use 60..=28800 (30 minutes = 1800 is usual)"
            ));
        }
        let abs = self.absolute_timeout_secs;
        if abs < idle || abs > 24 * 3600 {
            problems.push(format!(
                "console.absolute_timeout_secs: {abs} is out of range; use a value between console.idle_timeout_secs ({idle}) and 86400 (12 hours = 43200 is usual)"
            ));
        }
        problems
    }
}

/// The console's source of "now". Tests pass a clock they move; the daemon uses [`system_clock`].
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// The sources of data other parts of Sonae own.
#[derive(Clone)]
pub struct Providers {
    pub warnings: Arc<dyn WarningSource>,
    pub deliveries: Arc<dyn DeliverySource>,
    pub shelters: Arc<dyn ShelterSource>,
}

impl Providers {
    /// Empty in-memory boards (nothing active, no shelters).
    pub fn in_memory() -> Providers {
        Providers {
            warnings: Board::<WarningRow>::new(vec![]),
            deliveries: Board::<DeliveryRow>::new(vec![]),
            shelters: Board::<ShelterRow>::new(vec![]),
        }
    }

    /// The real sources for the running daemon: the JMA active-warning state, the outbox progress and the
    /// place data (no place data: no shelters listed).
    pub fn live(store: &Store, place: Option<Arc<crate::place::PlaceData>>) -> Providers {
        let shelters: Arc<dyn ShelterSource> = match place {
            Some(place) => Arc::new(live::LiveShelters {
                store: store.clone(),
                place,
            }),
            None => Board::<ShelterRow>::new(vec![]),
        };
        Providers {
            warnings: Arc::new(live::LiveWarnings(store.clone())),
            deliveries: Arc::new(live::LiveDeliveries(store.clone())),
            shelters,
        }
    }
}

/// What the console reads and writes besides its providers.
#[derive(Clone)]
pub struct Deps {
    pub store: Store,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub health: Arc<crate::health::Health>,
    pub console: ConsoleConfig,
    /// `server.public_url`: the console's own origin (CSRF) and whether cookies are `Secure`.
    pub public_url: String,
    /// `console.api_token`, loaded: `GET /api/status` answers 404 without it.
    pub api_token: Option<crate::secret::Secret>,
    pub plow: Arc<crate::plow::Plow>,
}

impl Deps {
    fn plow_web(&self) -> crate::plow::web::PlowWeb {
        crate::plow::web::PlowWeb {
            store: self.store.clone(),
            plow: self.plow.clone(),
        }
    }
}

/// Shared state of the console routes.
#[derive(Clone)]
pub struct ConsoleState {
    ctx: Deps,
    providers: Providers,
    templates: Arc<minijinja::Environment<'static>>,
    throttle: Arc<Mutex<Throttle>>,
    clock: Clock,
    policy: SessionPolicy,
    /// `public_url` is https: cookies get `Secure` and the `__Host-` prefix.
    https: bool,
}

impl ConsoleState {
    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn session_cookie(&self) -> &'static str {
        if self.https {
            "__Host-sonae_session"
        } else {
            "sonae_session"
        }
    }

    fn login_csrf_cookie(&self) -> &'static str {
        if self.https {
            "__Host-sonae_login"
        } else {
            "sonae_login"
        }
    }

    fn set_cookie(&self, name: &str, value: &str, clear: bool) -> HeaderValue {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
        if self.https {
            c.push_str("; Secure");
        }
        if clear {
            c.push_str("; Max-Age=0");
        }
        HeaderValue::from_str(&c)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }
}

/// The console and `/api/status` on the daemon's clock and providers.
pub fn router(ctx: Deps, providers: Providers) -> Router {
    router_with(ctx, providers, system_clock())
}

/// The console with explicit providers and clock (tests, demo).
pub fn router_with(ctx: Deps, providers: Providers, clock: Clock) -> Router {
    let cfg = &ctx.console;
    let state = ConsoleState {
        templates: Arc::new(templates::environment(cfg.templates_dir.clone())),
        throttle: Arc::new(Mutex::new(Throttle::default())),
        policy: SessionPolicy {
            idle: chrono::Duration::seconds(cfg.idle_timeout_secs as i64),
            absolute: chrono::Duration::seconds(cfg.absolute_timeout_secs as i64),
        },
        https: ctx.public_url.starts_with("https://"),
        ctx,
        providers,
        clock,
    };
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(dashboard))
        .route("/console/login", get(login_page).post(login_submit))
        .route("/console/logout", post(logout))
        .route("/console/mode", post(mode_submit))
        .route("/console/shelters", get(shelters_page))
        .route("/console/shelters/status", post(shelter_submit))
        .route("/console/audit", get(audit_page))
        .route("/console/problems", get(problems_page))
        .route("/console/problems/resolve", post(problem_resolve))
        .route("/console/plows", get(plows::page))
        .route("/console/plows/storm", post(plows::storm_submit))
        .route("/api/plows/dispatch", get(plows::dispatch_json))
        .route("/plows/dispatch", get(plows::old_dispatch_page))
        .route("/console/static/{file}", get(static_file))
        .route("/api/status", get(api_status))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn parse_form(body: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Second line of CSRF defence: refuse requests a browser marks as cross-site, and any `Origin` that is
/// neither the configured public origin nor the `Host` the request was sent to.
fn same_origin(st: &ConsoleState, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" || site == "same-site" {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let public = url::Url::parse(&st.ctx.public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    if origin == public {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
}

/// The client's address: the peer, or the last `X-Forwarded-For` entry when the peer is a trusted proxy.
fn client_ip(st: &ConsoleState, peer: SocketAddr, headers: &HeaderMap) -> std::net::IpAddr {
    if !st.ctx.console.trusted_proxies.contains(&peer.ip()) {
        return peer.ip();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(peer.ip())
}

/// Header `console.js` sends with its background refreshes.
const LIVE_REFRESH_HEADER: &str = "x-sonae-live-refresh";

struct Authed {
    user: User,
    session: session::Session,
    mode: ModeState,
}

/// The logged-in user, or a redirect to the login page.
async fn authenticate(st: &ConsoleState, headers: &HeaderMap) -> Result<Authed, Response> {
    let to_login = || Redirect::to("/console/login?msg=expired").into_response();
    let Some(value) = cookie(headers, st.session_cookie()) else {
        return Err(Redirect::to("/console/login").into_response());
    };
    let value = value.to_string();
    let (policy, now) = (st.policy, st.now());
    // console.js marks its background refreshes; they do not keep an unattended session alive.
    let activity = headers.get(LIVE_REFRESH_HEADER).is_none();
    let res = st
        .ctx
        .store
        .write(move |tx| {
            let s = match session::touch(tx, &value, policy, now, activity)? {
                Ok(s) => s,
                Err(_) => return Ok(None),
            };
            let Some(user) = users::user_by_id(tx, s.user_id)? else {
                return Ok(None);
            };
            let mode = mode::current_mode(tx)?;
            Ok(Some(Authed {
                user,
                session: s,
                mode,
            }))
        })
        .await;
    match res {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(to_login()),
        Err(e) => Err(internal(st, e)),
    }
}

/// A response that ends the request early (login redirect, refusal page). Boxed: `Response` is large.
type Refusal = Box<Response>;

fn check_csrf(
    st: &ConsoleState,
    a: &Authed,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), Refusal> {
    let token = form.get("csrf").map(String::as_str).unwrap_or("");
    if !same_origin(st, headers) || !session::tokens_equal(token, &a.session.csrf_token) {
        st.ctx.metrics.inc(
            "sonae_console_csrf_rejections_total",
            "Console POSTs refused for a missing or wrong CSRF token or a cross-site origin.",
            &[],
        );
        return Err(Box::new(render_error(
            st,
            StatusCode::FORBIDDEN,
            "画面の有効期限が切れたか、不正な送信です。画面を開き直してから、もう一度操作してください。",
        )));
    }
    Ok(())
}

/// The checks every state-changing console POST makes, in order: a live session, the CSRF token and
/// same-origin request, then the role. Returns the operator and the parsed form.
async fn authorize_post(
    st: &ConsoleState,
    headers: &HeaderMap,
    body: &Bytes,
    role: Role,
) -> Result<(Authed, HashMap<String, String>), Refusal> {
    let a = authenticate(st, headers).await.map_err(Box::new)?;
    let form = parse_form(body);
    check_csrf(st, &a, headers, &form)?;
    require_role(st, &a, role)?;
    Ok((a, form))
}

/// The logged-in user of a page: the one authentication preamble, as an extractor. Without a live session
/// the request gets the login redirect.
struct Session(Authed);

impl axum::extract::FromRequestParts<ConsoleState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(st, &parts.headers).await.map(Session)
    }
}

/// The least role a console action needs, as a type ([`Authorized`]).
trait MinRole {
    const ROLE: Role;
}

/// 担当者 (operator) and above.
struct OperatorRole;
impl MinRole for OperatorRole {
    const ROLE: Role = Role::Operator;
}

/// 承認者 (approver) and above.
struct ApproverRole;
impl MinRole for ApproverRole {
    const ROLE: Role = Role::Approver;
}

/// A state-changing console POST by a user of at least role `R`, with its form: the checks every such POST
/// makes ([`authorize_post`]: live session, CSRF token and same origin, role), as an extractor.
struct Authorized<R> {
    authed: Authed,
    form: HashMap<String, String>,
    _role: std::marker::PhantomData<R>,
}

impl<R: MinRole + Send> axum::extract::FromRequest<ConsoleState> for Authorized<R> {
    type Rejection = Response;

    async fn from_request(
        req: axum::extract::Request,
        st: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 64 * 1024).await.map_err(|_| {
            render_error(
                st,
                StatusCode::PAYLOAD_TOO_LARGE,
                "送信された内容が大きすぎます。",
            )
        })?;
        let (authed, form) = authorize_post(st, &parts.headers, &body, R::ROLE)
            .await
            .map_err(|r| *r)?;
        Ok(Authorized {
            authed,
            form,
            _role: std::marker::PhantomData,
        })
    }
}

fn require_role(st: &ConsoleState, a: &Authed, role: Role) -> Result<(), Refusal> {
    if a.user.role >= role {
        Ok(())
    } else {
        Err(Box::new(render_error(
            st,
            StatusCode::FORBIDDEN,
            &format!(
                "この操作には「{}」以上の権限が必要です。権限のある職員に依頼してください。",
                role.label_ja()
            ),
        )))
    }
}

fn internal(st: &ConsoleState, e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "console request failed");
    render_error(
        st,
        StatusCode::INTERNAL_SERVER_ERROR,
        "内部エラーが発生しました。しばらくしてからもう一度お試しください。続く場合はシステム担当者に連絡してください。",
    )
}

fn render_error(st: &ConsoleState, status: StatusCode, message: &str) -> Response {
    render(
        st,
        status,
        "error.html",
        minijinja::context! { message => message },
    )
}

fn render(st: &ConsoleState, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    match st.templates.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %format!("{e:#}"), "console template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("画面テンプレート {name} を表示できません。テンプレートの記述を確認してください。"),
            )
                .into_response()
        }
    }
}

/// Values every logged-in page gets: user, CSRF token, mode banner, clock.
fn page_ctx(st: &ConsoleState, a: &Authed, nav: &str, msg: Option<&str>) -> minijinja::Value {
    minijinja::context! {
        user => minijinja::context! {
            name => a.user.name.clone(),
            role => a.user.role.as_str(),
            role_label => a.user.role.label_ja(),
        },
        csrf => a.session.csrf_token.clone(),
        mode => mode_view(&a.mode),
        nav => nav,
        flash => msg.and_then(flash_text),
        now => st.now().to_rfc3339(),
    }
}

fn mode_view(m: &ModeState) -> minijinja::Value {
    minijinja::context! {
        mode => m.effective().as_str(),
        label => m.effective().label_ja(),
        manual_hold => m.manual_hold,
        since => m.mode_since.to_rfc3339(),
        changed_by => m.changed_by.clone(),
        reason => m.reason.clone(),
        hold_by => m.hold_by.clone(),
        hold_since => m.hold_since.map(|t| t.to_rfc3339()),
    }
}

/// Flash messages come from a fixed set, so no request text is ever reflected into a page.
fn flash_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "held" => "災害モードを手動で保持しました。",
        "released" => {
            "災害モードの手動保持を解除しました。警報等が残っていなければ、平常時に戻ります。"
        }
        "unchanged" => "すでにその状態です。変更はありません。",
        "shelter" => "避難所の状態を変更しました。",
        "resolved" => "問題を対応済みにしました。",
        "storm_started" => "降雪対応を開始しました。地区別の除雪状況はここから数え直します。",
        "storm_ended" => "降雪対応を終了しました。",
        "logout" => "ログアウトしました。",
        "expired" => {
            "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください。"
        }
        _ => return None,
    })
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<i64>,
    msg: Option<String>,
    all: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------
// Login / logout

async fn login_page(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    if cookie(&headers, st.session_cookie()).is_some() {
        if let Ok(_a) = authenticate(&st, &headers).await {
            return Redirect::to("/console/").into_response();
        }
    }
    login_form(
        &st,
        StatusCode::OK,
        q.msg.as_deref().and_then(flash_text),
        None,
        "",
    )
}

fn login_form(
    st: &ConsoleState,
    status: StatusCode,
    info: Option<&str>,
    error: Option<&str>,
    name: &str,
) -> Response {
    let token = session::random_token();
    let mut res = render(
        st,
        status,
        "login.html",
        minijinja::context! { csrf => token, info => info, error => error, name => name },
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        st.set_cookie(st.login_csrf_cookie(), &token, false),
    );
    res
}

async fn login_submit(
    State(st): State<ConsoleState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let name = form.get("name").map(|s| s.trim()).unwrap_or("");
    // Control characters never reach the audit log, the problem list or the log lines.
    let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let outcome = |o: &'static str| {
        st.ctx.metrics.inc(
            "sonae_console_logins_total",
            "Console login attempts by outcome.",
            &[("outcome", o)],
        )
    };

    // CSRF on the login form: the hidden field must equal the pre-session cookie (login CSRF).
    let cookie_token = cookie(&headers, st.login_csrf_cookie()).unwrap_or("");
    let form_token = form.get("csrf").map(String::as_str).unwrap_or("");
    if !same_origin(&st, &headers)
        || cookie_token.is_empty()
        || !session::tokens_equal(form_token, cookie_token)
    {
        outcome("csrf");
        return login_form(
            &st,
            StatusCode::FORBIDDEN,
            None,
            Some("画面の有効期限が切れました。もう一度ログインしてください。"),
            &name,
        );
    }

    let now = st.now();
    let ip = client_ip(&st, peer, &headers);
    let user_key = Throttle::user_key(&name);
    let ip_key = Throttle::ip_key(ip);
    let locked = {
        let mut t = st.throttle.lock().unwrap_or_else(|p| p.into_inner());
        [t.check(&user_key, now), t.check(&ip_key, now)]
            .into_iter()
            .filter_map(|c| match c {
                ThrottleCheck::Locked { until } => Some(until),
                ThrottleCheck::Allowed => None,
            })
            .max()
    };
    if let Some(until) = locked {
        outcome("locked");
        let msg = format!(
            "ログインの失敗が続いたため、一時的にログインを制限しています。{} 以降にもう一度お試しください。",
            templates::jst(&until.to_rfc3339())
        );
        return login_form(&st, StatusCode::TOO_MANY_REQUESTS, None, Some(&msg), &name);
    }

    let (n, pw) = (name.clone(), password.to_string());
    // Argon2 verification is CPU work: it runs on the blocking pool through the store's reader.
    let checked = st
        .ctx
        .store
        .read(move |c| users::check_credentials(c, &n, &pw))
        .await;
    let user = match checked {
        Ok(Ok(u)) => u,
        Ok(Err(refusal)) => {
            let newly_locked = {
                let mut t = st.throttle.lock().unwrap_or_else(|p| p.into_inner());
                t.record_failure(&user_key, now);
                t.record_failure(&ip_key, now);
                (
                    t.check(&user_key, now) != ThrottleCheck::Allowed,
                    t.check(&ip_key, now) != ThrottleCheck::Allowed,
                )
            };
            // A lock starts at this failure (later attempts are refused before reaching here), so each
            // lock is reported to operators once.
            if newly_locked.0 {
                st.ctx
                    .store
                    .record_problem(
                        "console.login",
                        format!(
                            "ユーザー「{name}」のログイン失敗が続いたため、{}分間ログインを制限しました。心当たりがない場合は不正アクセスの可能性があります。",
                            Throttle::WINDOW_SECS / 60
                        ),
                        Some(format!("client address {ip}")),
                    )
                    .await;
            }
            if newly_locked.1 {
                st.ctx
                    .store
                    .record_problem(
                        "console.login",
                        format!(
                            "接続元 {ip} からのログイン失敗が続いたため、{}分間この接続元からのログインを制限しました。",
                            Throttle::WINDOW_SECS / 60
                        ),
                        None,
                    )
                    .await;
            }
            let why = match refusal {
                LoginRefusal::BadCredentials => "bad_credentials",
                LoginRefusal::Disabled => "disabled",
            };
            outcome(why);
            let (n, ip) = (name.clone(), ip.to_string());
            if let Err(e) = st
                .ctx
                .store
                .write(move |tx| {
                    crate::store::Store::audit(
                        tx,
                        &n,
                        "console.login_failed",
                        &serde_json::json!({ "ip": ip, "reason": why }),
                    )
                })
                .await
            {
                return internal(&st, e);
            }
            return login_form(
                &st,
                StatusCode::UNAUTHORIZED,
                None,
                Some("ユーザー名またはパスワードが正しくありません。"),
                &name,
            );
        }
        Err(e) => return internal(&st, e),
    };

    st.throttle
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record_success(&user_key);
    let (policy, ip, uid, uname) = (st.policy, ip.to_string(), user.id, user.name.clone());
    let created = st
        .ctx
        .store
        .write(move |tx| {
            session::prune(tx, policy, now)?;
            let (cookie_value, _s) = session::create(tx, uid, now)?;
            crate::store::Store::audit(
                tx,
                &uname,
                "console.login",
                &serde_json::json!({ "ip": ip }),
            )?;
            Ok(cookie_value)
        })
        .await;
    match created {
        Ok(value) => {
            outcome("ok");
            let mut res = Redirect::to("/console/").into_response();
            let h = res.headers_mut();
            h.append(
                header::SET_COOKIE,
                st.set_cookie(st.session_cookie(), &value, false),
            );
            h.append(
                header::SET_COOKIE,
                st.set_cookie(st.login_csrf_cookie(), "", true),
            );
            res
        }
        Err(e) => internal(&st, e),
    }
}

async fn logout(State(st): State<ConsoleState>, headers: HeaderMap, body: Bytes) -> Response {
    let a = match authenticate(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let form = parse_form(&body);
    if let Err(r) = check_csrf(&st, &a, &headers, &form) {
        return *r;
    }
    let (h, name) = (a.session.id_hash.clone(), a.user.name.clone());
    let res = st
        .ctx
        .store
        .write(move |tx| {
            session::delete(tx, &h)?;
            crate::store::Store::audit(tx, &name, "console.logout", &serde_json::json!({}))
        })
        .await;
    if let Err(e) = res {
        return internal(&st, e);
    }
    let mut res = Redirect::to("/console/login?msg=logout").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        st.set_cookie(st.session_cookie(), "", true),
    );
    res
}

// ---------------------------------------------------------------------------------------------------------
// Dashboard and status

/// Warnings of one municipality, for display.
#[derive(Serialize)]
struct MunicipalityWarnings {
    code: String,
    name: String,
    /// Highest 警戒レベル among its warnings (for the row colour).
    level: Option<u8>,
    warnings: Vec<WarningRow>,
}

fn group_warnings(rows: Vec<WarningRow>) -> Vec<MunicipalityWarnings> {
    let mut by: BTreeMap<String, MunicipalityWarnings> = BTreeMap::new();
    for w in rows {
        let e = by
            .entry(w.municipality_code.clone())
            .or_insert_with(|| MunicipalityWarnings {
                code: w.municipality_code.clone(),
                name: w.municipality_name.clone(),
                level: None,
                warnings: vec![],
            });
        e.level = e.level.max(w.level);
        e.warnings.push(w);
    }
    let mut v: Vec<_> = by.into_values().collect();
    for m in &mut v {
        m.warnings
            .sort_by(|a, b| b.level.cmp(&a.level).then(a.kind_code.cmp(&b.kind_code)));
    }
    v
}

#[derive(Serialize)]
struct DeliveryView {
    #[serde(flatten)]
    row: DeliveryRow,
    pending: u64,
    percent_done: u64,
}

#[derive(Serialize)]
struct ShelterSummary {
    open: usize,
    full: usize,
    closed: usize,
}

/// Everything the dashboard and `/api/status` show, gathered once.
#[derive(Serialize)]
struct Status {
    generated_at: String,
    mode: serde_json::Value,
    warnings: Vec<MunicipalityWarnings>,
    deliveries: Vec<DeliveryView>,
    shelters: ShelterSummary,
    open_shelters: Vec<ShelterRow>,
    open_problems: i64,
    recent_problems: Vec<records::ProblemRow>,
}

async fn gather(st: &ConsoleState, mode: &ModeState) -> anyhow::Result<Status> {
    let warnings = st.providers.warnings.active_warnings().await?;
    let deliveries = st.providers.deliveries.deliveries().await?;
    let shelters = st.providers.shelters.shelters().await?;
    let (open_problems, recent) = st
        .ctx
        .store
        .read(|c| {
            let n = records::open_problem_count(c)?;
            let mut p = records::problem_page(c, 1, false)?;
            p.rows.truncate(5);
            Ok((n, p.rows))
        })
        .await?;
    let count = |s: ShelterStatus| shelters.iter().filter(|x| x.status == s).count();
    Ok(Status {
        generated_at: st.now().to_rfc3339(),
        mode: serde_json::json!({
            "mode": mode.effective(),
            "label": mode.effective().label_ja(),
            "stored_mode": mode.mode,
            "manual_hold": mode.manual_hold,
            "since": mode.mode_since,
            "changed_by": mode.changed_by,
            "reason": mode.reason,
            "hold_by": mode.hold_by,
            "hold_since": mode.hold_since,
        }),
        warnings: group_warnings(warnings),
        deliveries: deliveries
            .into_iter()
            .map(|row| DeliveryView {
                pending: row.pending(),
                percent_done: row.percent_done(),
                row,
            })
            .collect(),
        shelters: ShelterSummary {
            open: count(ShelterStatus::Open),
            full: count(ShelterStatus::Full),
            closed: count(ShelterStatus::Closed),
        },
        open_shelters: shelters
            .iter()
            .filter(|s| s.status != ShelterStatus::Closed)
            .cloned()
            .collect(),
        open_problems,
        recent_problems: recent,
    })
}

/// Seconds between live refreshes of the dashboard (by `console.js`; without JavaScript, reload by hand).
const DASHBOARD_REFRESH_SECS: u32 = 15;

async fn dashboard(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Response {
    let status = match gather(&st, &a.mode).await {
        Ok(s) => s,
        Err(e) => return internal(&st, e),
    };
    let mut ctx = page_ctx(&st, &a, "dashboard", q.msg.as_deref());
    ctx = minijinja::context! {
        status => minijinja::Value::from_serialize(&status),
        can_hold => a.user.role >= Role::Approver,
        refresh => DASHBOARD_REFRESH_SECS,
        ..ctx
    };
    render(&st, StatusCode::OK, "dashboard.html", ctx)
}

/// `GET /api/status`: the dashboard as JSON, for monitoring. 404 when `console.api_token` is not configured,
/// 401 on a missing or wrong bearer token. The token is compared as SHA-256 digests in constant time, so
/// neither its content nor its length leaks through timing.
async fn api_status(State(st): State<ConsoleState>, headers: HeaderMap) -> Response {
    let Some(expected) = st.ctx.api_token.as_ref() else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(expected.expose().as_bytes()))
        .into();
    if given.is_empty() || !ok {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "unauthorized",
        )
            .into_response();
    }
    let result = async {
        let mode = st.ctx.store.read(mode::current_mode).await?;
        gather(&st, &mode).await
    }
    .await;
    match result {
        Ok(s) => {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("version".into(), env!("CARGO_PKG_VERSION").into());
                let head = st.ctx.store.read(seal::head).await.ok().flatten();
                o.insert(
                    "audit_head".into(),
                    serde_json::json!(
                        head.map(|(id, hash)| serde_json::json!({ "audit_id": id, "hash": hash }))
                    ),
                );
                o.insert(
                    "health".into(),
                    serde_json::json!({
                        "status": st.ctx.health.overall(),
                        "components": st.ctx.health.snapshot(),
                    }),
                );
            }
            Json(v).into_response()
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "api/status failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "error": "internal error; see the daemon log" })),
            )
                .into_response()
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Actions

/// Longest accepted reason text, in characters.
const MAX_REASON_CHARS: usize = 200;

async fn mode_submit(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<ApproverRole>,
) -> Response {
    let hold = match form.get("action").map(String::as_str) {
        Some("hold") => true,
        Some("release") => false,
        _ => {
            return render_error(
                &st,
                StatusCode::BAD_REQUEST,
                "操作の種類が正しくありません。ダッシュボードから操作してください。",
            )
        }
    };
    let reason = form.get("reason").map(|s| s.trim()).unwrap_or("");
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return render_error(
            &st,
            StatusCode::BAD_REQUEST,
            &format!(
                "理由を{MAX_REASON_CHARS}文字以内で入力してください。理由は監査ログに残ります。"
            ),
        );
    }
    // Hawaii 2018: the confirmation for a live, city-wide action says exactly what will happen, and is
    // checked here, not only in the browser.
    if hold && form.get("confirm").map(String::as_str) != Some("yes") {
        return render_error(
            &st,
            StatusCode::BAD_REQUEST,
            "「全住民の LINE メニューが災害時用に切り替わることを確認しました」にチェックを入れてから操作してください。",
        );
    }
    let (actor, reason, now) = (a.user.name.clone(), reason.to_string(), st.now());
    let res = st
        .ctx
        .store
        .write(move |tx| mode::set_manual_hold(tx, hold, &actor, &reason, now))
        .await;
    match res {
        Ok(HoldOutcome::Changed) => {
            st.ctx.metrics.inc(
                "sonae_console_mode_actions_total",
                "Manual hold/release of disaster mode from the console.",
                &[("action", if hold { "hold" } else { "release" })],
            );
            tracing::warn!(
                user = %a.user.name,
                action = if hold { "hold" } else { "release" },
                "disaster mode manual hold changed from the console"
            );
            Redirect::to(if hold {
                "/console/?msg=held"
            } else {
                "/console/?msg=released"
            })
            .into_response()
        }
        Ok(HoldOutcome::AlreadySo) => Redirect::to("/console/?msg=unchanged").into_response(),
        Err(e) => internal(&st, e),
    }
}

async fn shelters_page(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Response {
    let mut rows = match st.providers.shelters.shelters().await {
        Ok(r) => r,
        Err(e) => return internal(&st, e),
    };
    rows.sort_by(|x, y| x.area.cmp(&y.area).then(x.name.cmp(&y.name)));
    let ctx = page_ctx(&st, &a, "shelters", q.msg.as_deref());
    let ctx = minijinja::context! { shelters => minijinja::Value::from_serialize(&rows), ..ctx };
    render(&st, StatusCode::OK, "shelters.html", ctx)
}

async fn shelter_submit(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<OperatorRole>,
) -> Response {
    let id = form.get("id").cloned().unwrap_or_default();
    let Some(status) = form.get("status").and_then(|s| ShelterStatus::parse(s)) else {
        return render_error(
            &st,
            StatusCode::BAD_REQUEST,
            "避難所の状態は「開設」「満員」「閉鎖」から選んでください。",
        );
    };
    match st
        .providers
        .shelters
        .set_status(&id, status, &a.user.name)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return render_error(
                &st,
                StatusCode::NOT_FOUND,
                "指定された避難所が見つかりません。一覧を開き直してください。",
            )
        }
        Err(e) => return internal(&st, e),
    }
    // The source audits the change in the same transaction as the change (`shelter.status`).
    Redirect::to("/console/shelters?msg=shelter").into_response()
}

async fn audit_page(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Response {
    let page = q.page.unwrap_or(1);
    if let Err(e) = st.ctx.store.write(seal::seal).await {
        return internal(&st, e);
    }
    let res = st
        .ctx
        .store
        .read(move |c| {
            let reported: bool = c.query_row(
                "SELECT count(*) > 0 FROM problems WHERE source = 'console.audit' AND resolved_at IS NULL",
                [],
                |r| r.get(0),
            )?;
            Ok((records::audit_page(c, page)?, seal::verify(c)?, reported))
        })
        .await;
    let (rows, verification, reported) = match res {
        Ok(r) => r,
        Err(e) => return internal(&st, e),
    };
    // Reported once until an operator resolves it, however often the page is opened.
    if let (Some(id), false) = (verification.first_break, reported) {
        st.ctx
            .store
            .record_problem(
                "console.audit",
                format!(
                    "監査ログの改ざん検知で、記録番号 {id} 以降に不一致が見つかりました。システム管理者に連絡してください。"
                ),
                None,
            )
            .await;
    }
    let ctx = page_ctx(&st, &a, "audit", q.msg.as_deref());
    let ctx = minijinja::context! {
        page => minijinja::Value::from_serialize(&rows),
        seal => minijinja::Value::from_serialize(&verification),
        ..ctx
    };
    render(&st, StatusCode::OK, "audit.html", ctx)
}

async fn problems_page(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Response {
    let page = q.page.unwrap_or(1);
    let all = q.all.as_deref() == Some("1");
    let rows = match st
        .ctx
        .store
        .read(move |c| records::problem_page(c, page, all))
        .await
    {
        Ok(r) => r,
        Err(e) => return internal(&st, e),
    };
    let ctx = page_ctx(&st, &a, "problems", q.msg.as_deref());
    let ctx = minijinja::context! {
        page => minijinja::Value::from_serialize(&rows),
        all => all,
        ..ctx
    };
    render(&st, StatusCode::OK, "problems.html", ctx)
}

async fn problem_resolve(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<OperatorRole>,
) -> Response {
    let Some(id) = form.get("id").and_then(|s| s.parse::<i64>().ok()) else {
        return render_error(
            &st,
            StatusCode::BAD_REQUEST,
            "問題の番号が正しくありません。",
        );
    };
    let (actor, now) = (a.user.name.clone(), st.now());
    match st
        .ctx
        .store
        .write(move |tx| records::resolve_problem(tx, id, &actor, now))
        .await
    {
        Ok(_) => Redirect::to("/console/problems?msg=resolved").into_response(),
        Err(e) => internal(&st, e),
    }
}

async fn static_file(State(st): State<ConsoleState>, Path(file): Path<String>) -> Response {
    let ctype = match file.as_str() {
        "console.css" => "text/css; charset=utf-8",
        "console.js" => "text/javascript; charset=utf-8",
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    match templates::load(&st.ctx.console.templates_dir, &file) {
        Some(body) => ([(header::CONTENT_TYPE, ctype)], body).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(code: &str, kind: &str, level: Option<u8>) -> WarningRow {
        WarningRow {
            municipality_code: code.into(),
            municipality_name: format!("市{code}"),
            kind_code: kind.into(),
            kind_name: format!("種別{kind}"),
            severity: "警報".into(),
            level,
            status: "発表".into(),
            issued_at: None,
        }
    }

    #[test]
    fn warnings_are_grouped_by_municipality_with_the_highest_level_first() {
        let g = group_warnings(vec![
            w("0620100", "03", Some(3)),
            w("0610000", "10", Some(2)),
            w("0620100", "33", Some(5)),
            w("0610000", "03", Some(3)),
        ]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].code, "0610000");
        assert_eq!(g[0].level, Some(3));
        assert_eq!(g[1].level, Some(5));
        assert_eq!(g[1].warnings[0].kind_code, "33");
    }

    #[test]
    fn cookies_are_found_among_several() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sonae_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, "sonae_session"), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn flash_messages_come_only_from_the_fixed_set() {
        assert!(flash_text("held").is_some());
        assert!(flash_text("<script>").is_none());
    }
}
