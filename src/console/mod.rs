//! Operator console (運用コンソール): login, dashboard, manual hold of disaster mode, shelters, audit log,
//! problems, and `GET /api/status` for monitoring.
//!
//! # Design constraints
//! * Server-rendered HTML from minijinja templates ([`templates`]), usable without JavaScript; the only script
//!   (`console.js`, same origin, no inline code) refreshes the dashboard's live sections.
//! * One module per page in `pages/`. Every page except the login page takes the `auth::Session`
//!   extractor; every POST takes `auth::Authorized<R>`: the session's CSRF synchronizer token (the login
//!   form a pre-session token in a cookie), a same-origin check (`Sec-Fetch-Site` / `Origin`) as a second
//!   line, then the role. Handlers return `Result<Response, ConsoleError>` ([`error`]), rendered as the
//!   error page by one layer.
//! * Deny by default: each state-changing handler names the [`Role`] it needs. Hold/release of disaster mode
//!   needs `approver` or `admin` (Hawaii 2018: a mode change that reaches every resident is not a
//!   first-day-operator action).
//! * Each action is audited in the same transaction as the change: the console's own data (mode, problems,
//!   sessions) here, shelter status by the place store that owns it (`place::status::set_status_tx`).
//! * Data other parts own comes through [`providers`] traits; [`Providers::live`] holds the real sources.
//! * Responses carry `Cache-Control: no-store`; the strict CSP (no inline script or style),
//!   `X-Frame-Options: DENY`, `Referrer-Policy: same-origin` and `X-Content-Type-Options: nosniff` come from
//!   the daemon's one header layer (`app::http_layers`), as for every other page.
//! * `/api/status` is served on the admin listener ([`Routers::admin`]), the pages on the public one.

mod auth;
pub mod error;
mod flex;
pub mod live;
mod pages;
pub mod providers;
pub mod records;
pub mod seal;
pub mod session;
pub mod templates;
pub mod users;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::mode::ModeState;
use crate::secret::SecretSource;
use crate::store::Store;
use auth::Authed;
pub use error::ConsoleError;
pub use providers::{
    Board, DeliveryRow, DeliverySource, ShelterRow, ShelterSource, ShelterStatus, WarningRow,
    WarningSource,
};
use session::{SessionPolicy, Throttle};
pub use users::Role;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Retired: sessions are random tokens stored as hashes, nothing is signed. Still accepted so older
    /// configuration files load; `Config::warnings` says to delete it.
    pub session_key: Option<serde::de::IgnoredAny>,
    /// Bearer token for `GET /api/status` (monitoring). Unset: the endpoint answers 404.
    pub api_token: Option<SecretSource>,
    /// Directory of the console's page templates and CSS; files missing there fall back to built-in copies.
    /// Empty: the built-in copies only.
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
            session_key: None,
            api_token: None,
            templates_dir: std::path::PathBuf::new(),
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
        let dir = &self.templates_dir;
        if !dir.as_os_str().is_empty() {
            if let Err(e) = std::fs::read_dir(dir) {
                problems.push(format!(
                    "console.templates_dir: cannot read \"{}\" ({e}); copy the release's templates/console there (a relative path is taken from the working directory, /var/lib/sonae under systemd), or leave it empty for the built-in templates",
                    dir.display()
                ));
            }
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
            Some(place) => Arc::new(live::LiveShelters::new(store.clone(), place)),
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
    /// The city's districts and shelters (`None`: no district data, so no evacuation information).
    pub place: Option<Arc<crate::place::PlaceData>>,
    pub alerts: AlertDeps,
}

/// What the evacuation-information pages need.
#[derive(Clone)]
pub struct AlertDeps {
    pub templates: Arc<crate::disaster::manual::ManualTemplates>,
    pub links: crate::place::links::LinkTemplates,
    /// `place.city_name`.
    pub city: String,
    /// `disaster.drill_audience`.
    pub drill_audience: Vec<String>,
    /// `disaster.shelter_max_km` and `shelter_same_municipality`.
    pub shelter_reach: crate::disaster::policy::ShelterReach,
    /// Wakes the `alerts.dispatch` job.
    pub wake: crate::scheduler::Wake,
}

impl AlertDeps {
    /// Embedded templates, default links, no drill audience (tests).
    pub fn embedded(city: &str) -> AlertDeps {
        AlertDeps {
            templates: Arc::new(
                crate::disaster::manual::ManualTemplates::embedded()
                    .expect("the embedded evacuation-information templates are valid"),
            ),
            links: Default::default(),
            city: city.into(),
            drill_audience: vec![],
            shelter_reach: Default::default(),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }
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
    /// The districts as GeoJSON for the alert composer's map, built on first use.
    district_map: Arc<std::sync::OnceLock<String>>,
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

/// The console's two routers: its pages (and the dispatcher JSON they use) for the public listener, and
/// `/api/status` for the admin listener.
pub struct Routers {
    pub public: Router,
    pub admin: Router,
}

/// The console and `/api/status` on the daemon's clock and providers.
pub fn router(ctx: Deps, providers: Providers) -> Routers {
    router_with(ctx, providers, system_clock())
}

/// The console with explicit providers and clock (tests, demo). The security headers come from the
/// daemon's one layer (`app::http_layers`); the console adds `Cache-Control: no-store` to its own answers.
pub fn router_with(ctx: Deps, providers: Providers, clock: Clock) -> Routers {
    let cfg = &ctx.console;
    let state = ConsoleState {
        templates: Arc::new(templates::environment(cfg.templates_dir.clone())),
        throttle: Arc::new(Mutex::new(Throttle::default())),
        policy: SessionPolicy {
            idle: chrono::Duration::seconds(cfg.idle_timeout_secs as i64),
            absolute: chrono::Duration::seconds(cfg.absolute_timeout_secs as i64),
        },
        https: ctx.public_url.starts_with("https://"),
        district_map: Arc::new(std::sync::OnceLock::new()),
        ctx,
        providers,
        clock,
    };
    use pages::{alerts, audit, dashboard, login, mode, plows, problems, safety, shelters, users};
    let public = Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(dashboard::page))
        .route("/console/login", get(login::page).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route("/console/mode", post(mode::submit))
        .route("/console/shelters", get(shelters::page))
        .route("/console/shelters/status", post(shelters::submit))
        .route("/console/shelters/bulk", post(shelters::bulk))
        .route("/console/audit", get(audit::page))
        .route("/console/problems", get(problems::page))
        .route("/console/problems/resolve", post(problems::resolve))
        .route("/console/plows", get(plows::page))
        .route("/console/plows/storm", post(plows::storm_submit))
        .route("/api/plows/dispatch", get(plows::dispatch_json))
        .route("/plows/dispatch", get(plows::old_dispatch_page))
        .route("/console/alerts", get(alerts::list).post(alerts::create))
        .route("/console/alerts/new", get(alerts::new_form))
        .route(
            "/console/alerts/districts.geojson",
            get(alerts::districts_geojson),
        )
        .route("/console/alerts/correct", post(alerts::correct))
        .route("/console/alerts/{id}", get(alerts::show))
        .route("/console/alerts/{id}/preview", get(alerts::preview))
        .route("/console/alerts/{id}/submit", post(alerts::submit))
        .route("/console/alerts/{id}/approve", post(alerts::approve))
        .route("/console/alerts/{id}/cancel", post(alerts::cancel))
        .route("/console/drill", post(alerts::drill))
        .route("/console/safety", get(safety::page))
        .route("/console/safety/counts.json", get(safety::counts_json))
        .route("/console/safety/help/{id}/state", post(safety::follow_up))
        .route("/console/safety/help/{id}/message", post(safety::message))
        .route("/console/users", get(users::page))
        .route("/console/users/add", post(users::add))
        .route("/console/users/disable", post(users::disable))
        .route("/console/users/reset", post(users::reset))
        .route(
            "/console/password",
            get(users::password_page).post(users::password_submit),
        )
        .route("/console/static/{file}", get(static_file))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            error::render_error_pages,
        ))
        .layer(axum::middleware::map_response(no_store))
        .with_state(state.clone());
    let admin = Router::new()
        .route("/api/status", get(dashboard::api_status))
        .layer(axum::middleware::map_response(no_store))
        .with_state(state);
    Routers { public, admin }
}

/// Console pages and data are per user and change: never cached.
async fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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

/// Second line of CSRF defence (the first is the synchronizer token): refuse requests a browser marks as
/// cross-site, and any `Origin` that is neither the configured public origin nor the `Host` the request was
/// sent to.
///
/// `Sec-Fetch-Site: same-origin` is set by the browser itself (web content cannot forge it), so it is
/// trusted on its own: a browser may send `Origin: null` on a same-origin form POST (it did while the console
/// sent `Referrer-Policy: no-referrer`, and privacy settings can still make it so). An `Origin: null`
/// without that header is refused, like any origin that is not ours.
fn same_origin(st: &ConsoleState, headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin") => return true,
        Some("cross-site" | "same-site") => return false,
        _ => {}
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
        drill => a.drill,
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
        "shelter_bulk" => "選んだ避難所の状態をまとめて変更しました。変更は監査ログに 1 件として記録されています。",
        "resolved" => "問題を対応済みにしました。",
        "storm_started" => "降雪対応を開始しました。地区別の除雪状況はここから数え直します。",
        "storm_ended" => "降雪対応を終了しました。",
        "logout" => "ログアウトしました。",
        "user_disabled" => "アカウントを無効にしました。このユーザーのログイン中の画面はすべてログアウトされました。",
        "password_changed" => "パスワードを変更しました。",
        "alert_submitted" => "承認を依頼しました。別の承認者が内容を確認して承認すると送信されます。",
        "alert_approved" => "承認しました。10秒後に送信します。それまでは「送信を取り消す」で止められます。",
        "alert_cancelled" => "取り消しました。この避難情報は送信されません。",
        "alert_corrected" => "訂正・取消を送信しました。元の通知を受け取った方だけに届きます。",
        "drill_started" => "訓練を開始しました。訓練中の避難情報は訓練対象の職員だけに届き、【訓練】と表示されます。",
        "drill_ended" => "訓練を終了しました。",
        "follow_up" => "対応状況を変更しました。",
        "safety_message" => "本人に LINE で連絡しました。",
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

async fn static_file(State(st): State<ConsoleState>, Path(file): Path<String>) -> Response {
    let ctype = match file.as_str() {
        "console.css" => "text/css; charset=utf-8",
        "console.js" | "alerts-map.js" | "safety-map.js" => "text/javascript; charset=utf-8",
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
