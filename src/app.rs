//! Wiring: builds the shared context, spawns the long-running tasks, installs the resident services, serves
//! HTTP on two listeners, and shuts down in order.
//!
//! HTTP: the **public** listener (`server.listen`, behind the reverse proxy) serves only the LINE webhook,
//! the resident pages and the operator console; the **admin** listener (`server.admin_listen`, loopback by
//! default) serves `/healthz`, `/metrics` and `/api/status`. Every response of both passes through
//! [`http_layers`]: an access log line (tower-http trace), a request timeout (`server.request_timeout_secs`,
//! 408) and the security headers (CSP, frame, referrer, nosniff), set there and nowhere else.
//!
//! Shutdown (habit: signal, drain, deadline):
//! 1. the stop signal (SIGTERM/SIGINT, or the future passed to [`Application::run_until_stopped`]) cancels
//!    [`Context::shutdown`]; the HTTP server stops accepting and finishes in-flight requests;
//! 2. every task spawned on [`Context::tasks`] sees the cancellation at its next await point and returns;
//!    tasks only ever stop between durable steps (a send is recorded or not started), so anything cut short
//!    is resumed from SQLite at the next start;
//! 3. if draining takes longer than `server.shutdown_deadline_secs` (below systemd's `TimeoutStopSec`), the
//!    process exits anyway and says which part did not finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::{Config, ConfigError, Secrets};
use crate::health::{Health, Status};
use crate::infra::Infra;
use crate::metrics::Metrics;
use crate::place::PlaceData;
use crate::store::Store;

/// The daemon's wiring: everything `app` hands out to the features it installs. Features never see this
/// whole value; they get [`Infra`] and their own narrow handles. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub secrets: Arc<Secrets>,
    /// Store, metrics, health, shutdown token, task tracker, scheduler.
    pub infra: Infra,
    /// Monotonic start, for uptime.
    pub started: std::time::Instant,
    /// LINE client, webhook event router and worker wake-up.
    pub line: crate::line::LineRuntime,
    /// Snow-plow state shared by the MQTT ingest and the map/dispatcher handlers.
    pub plow: Arc<crate::plow::Plow>,
    /// The city's districts and shelters, loaded once (`None` when `place.districts` is not a file).
    pub place: Option<Arc<PlaceData>>,
    /// The city's evacuation information (`templates/alerts/manual.json`, validated at start) and the
    /// wake-up of its `alerts.dispatch` job.
    pub alerts: crate::console::AlertDeps,
}

pub struct Application {
    listener: TcpListener,
    admin_listener: TcpListener,
    ctx: Context,
}

impl Application {
    /// Checks the configuration against the machine ([`crate::config::preflight`]: a refusal is returned as
    /// a [`ConfigError`], exit 2), opens the store (applying migrations), binds both listeners. Nothing runs
    /// until [`Application::run_until_stopped`].
    pub async fn build(config: Config, secrets: Secrets) -> anyhow::Result<Application> {
        let checked = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || crate::config::preflight::run(&config))
                .await
                .context("checking the configuration panicked")?
        };
        if !checked.problems.is_empty() {
            return Err(ConfigError {
                problems: checked.problems,
            }
            .into());
        }
        for w in &checked.warnings {
            tracing::warn!(warning = %w, "configuration needs attention");
        }
        let store = Store::open(&config.store.path)?;
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("listening on {} (server.listen)", config.server.listen))?;
        let admin_listener = TcpListener::bind(config.server.admin_listen)
            .await
            .with_context(|| {
                format!(
                    "listening on {} (server.admin_listen)",
                    config.server.admin_listen
                )
            })?;
        let health = Arc::new(Health::new());
        health.set("store", Status::Ok, "");
        let metrics = Arc::new(Metrics::new());
        let infra = Infra::new(store, metrics, health);
        let line = crate::line::LineRuntime::build(
            &config.line,
            secrets.line_channel_secret.clone(),
            secrets.line_channel_access_token.clone(),
            &infra.health,
            &infra.metrics,
            &infra.store,
        )?;
        let plow = Arc::new(crate::plow::Plow::load(&config.plow)?);
        let place = match checked.place {
            Some(place) => {
                for p in &place.problems {
                    infra
                        .store
                        .record_problem("place", format!("地区・避難所データの不正な行: {p}"), None)
                        .await;
                }
                if !place.has_indoor_shelters() {
                    infra
                        .store
                        .record_problem("place", NO_INDOOR_SHELTERS.into(), None)
                        .await;
                }
                Some(Arc::new(place))
            }
            None => None,
        };
        let alerts = crate::console::AlertDeps {
            templates: Arc::new(
                crate::disaster::manual::ManualTemplates::from_config(
                    &config.disaster.templates_dir,
                )
                .context("loading the evacuation-information templates (disaster.templates_dir)")?,
            ),
            links: config.place.links.clone(),
            city: config.place.city_name.clone(),
            drill_audience: config.disaster.drill_audience.clone(),
            shelter_reach: config.disaster.shelter_reach(),
            wake: Arc::new(tokio::sync::Notify::new()),
        };
        let ctx = Context {
            config: Arc::new(config),
            secrets: Arc::new(secrets),
            infra,
            started: std::time::Instant::now(),
            line,
            plow,
            place,
            alerts,
        };
        Ok(Application {
            listener,
            admin_listener,
            ctx,
        })
    }

    /// The public listener's address (webhook, resident pages, console).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The admin listener's address (`/healthz`, `/metrics`, `/api/status`).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The console's dependencies (tests build the console with their own providers and clock).
    pub fn console_deps(&self) -> crate::console::Deps {
        console_deps(&self.ctx)
    }

    /// Runs until `stop` completes, then drains within the configured deadline.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            admin_listener,
            ctx,
        } = self;
        let services = spawn_components(&ctx).await?;

        let (public, admin) = routers(&ctx, services);
        let timeout = Duration::from_secs(ctx.config.server.request_timeout_secs);
        let serve = |listener: TcpListener, router: Router| {
            let token = ctx.infra.shutdown.clone();
            let router = http_layers(router, timeout);
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
            })
        };
        let server = serve(listener, public);
        let admin_server = serve(admin_listener, admin);
        crate::systemd::notify_ready();
        let watchdog = crate::systemd::spawn_watchdog(&ctx.infra.store);
        ctx.infra.scheduler.add(status_job(&ctx));
        tracing::info!(
            listen = %ctx.config.server.listen,
            admin_listen = %ctx.config.server.admin_listen,
            "sonae is running"
        );

        tokio::select! {
            _ = stop => tracing::info!("stop requested; draining"),
            _ = ctx.infra.shutdown.cancelled() => tracing::info!("shutdown requested internally; draining"),
        }
        crate::systemd::notify_stopping();
        ctx.infra.shutdown.cancel();
        ctx.infra.tasks.close();
        let deadline = Duration::from_secs(ctx.config.server.shutdown_deadline_secs);
        let drained = tokio::time::timeout(deadline, async {
            let _ = server.await;
            let _ = admin_server.await;
            ctx.infra.tasks.wait().await;
        })
        .await;
        if let Some(w) = watchdog {
            w.abort();
        }
        match drained {
            Ok(()) => {
                // Seal what the last moments wrote, so a clean stop leaves no audit row unsealed.
                if let Err(e) = ctx.infra.store.write(crate::console::seal::seal).await {
                    tracing::error!(error = %format!("{e:#}"), "sealing the audit log at shutdown failed");
                }
                tracing::info!("stopped cleanly")
            }
            Err(_) => tracing::warn!(
                deadline_secs = deadline.as_secs(),
                tasks_left = ctx.infra.tasks.len(),
                "drain deadline passed; exiting with work left (it resumes from the database at next start)"
            ),
        }
        Ok(())
    }
}

/// Recorded at start when no 指定避難所 is loaded (weather alerts name indoor shelters only).
const NO_INDOOR_SHELTERS: &str = "指定避難所（屋内）のデータが読み込まれていないため、大雪・暴風雪・暴風の通知には避難所を載せません。place.shelters に国土地理院の指定避難所データを追加してください。";

fn console_deps(ctx: &Context) -> crate::console::Deps {
    crate::console::Deps {
        store: ctx.infra.store.clone(),
        metrics: ctx.infra.metrics.clone(),
        health: ctx.infra.health.clone(),
        console: ctx.config.console.clone(),
        public_url: ctx.config.server.public_url.clone(),
        api_token: ctx.secrets.api_token.clone(),
        plow: ctx.plow.clone(),
        place: ctx.place.clone(),
        alerts: ctx.alerts.clone(),
    }
}

/// Starts the daemon's parts and installs the resident services. The order matters where noted.
async fn spawn_components(ctx: &Context) -> anyhow::Result<crate::services::Registry> {
    let infra = ctx.infra.clone();
    let pipeline = crate::jma::spawn(&infra, ctx.config.jma.clone()).await?;
    let outbox =
        crate::delivery::spawn_sender(&infra, ctx.config.delivery.clone(), ctx.line.client.clone());
    // Plow notices are queued by the MQTT ingest; it wakes the same sender after each commit.
    let _ = ctx.plow.outbox_wake.set(outbox.waker());
    crate::disaster::runtime::spawn(
        &infra,
        crate::disaster::runtime::Deps {
            config: ctx.config.disaster.clone(),
            public_url: ctx.config.server.public_url.clone(),
            links: ctx.config.place.links.clone(),
            place: ctx.place.clone(),
            client: ctx.line.client.clone(),
            outbox: outbox.clone(),
            pipeline,
        },
    )?;
    // The city's own evacuation information needs the districts, like disaster mode.
    if let Some(place) = ctx.place.clone() {
        let a = &ctx.alerts;
        let dispatcher = crate::disaster::manual::Dispatcher {
            store: ctx.infra.store.clone(),
            templates: (*a.templates).clone(),
            place,
            links: a.links.clone(),
            public_url: ctx.config.server.public_url.clone(),
            city: a.city.clone(),
            drill_audience: a.drill_audience.clone(),
            shelter_reach: a.shelter_reach,
            outbox: outbox.clone(),
        };
        ctx.infra.scheduler.add(dispatcher.job(a.wake.clone()));
    }
    // Handlers before the webhook worker starts, so no event is dispatched before they are in place.
    let services = install_services(ctx, &infra)?;
    ctx.infra.tasks.spawn(crate::line::webhook::run_worker(
        ctx.line.clone(),
        ctx.infra.shutdown.clone(),
    ));
    crate::plow::spawn(&infra, ctx.plow.clone()).await?;
    ctx.infra
        .scheduler
        .add(crate::console::seal::job(ctx.infra.store.clone()));
    Ok(services)
}

/// The one list of resident services, in the order their handlers are asked. The rich menu's own
/// handlers come first (a new friend is linked to the current mode's menu before being greeted).
fn install_services(ctx: &Context, infra: &Infra) -> anyhow::Result<crate::services::Registry> {
    crate::line::richmenu::register_handlers(&ctx.line);
    let mut reg = crate::services::Registry::new(ctx.line.events.clone(), infra.scheduler.clone());
    // First: a resident who asked for help is answered before any other service reads their next text.
    crate::disaster::safety::install(&mut reg, ctx.line.clone());
    crate::resident::service::install(
        &mut reg,
        crate::resident::service::Deps {
            line: ctx.line.clone(),
            place: ctx.place.clone(),
            city: ctx.config.place.city_name.clone(),
            public_url: ctx.config.server.public_url.clone(),
        },
    );
    crate::plow::resident::install(
        &mut reg,
        crate::plow::resident::Deps {
            line: ctx.line.clone(),
            plow: ctx.plow.clone(),
            place: ctx.place.clone(),
        },
    );
    // Last: the menu buttons without a service of their own, and the answer to what nobody claimed.
    crate::resident::menu::install(
        &mut reg,
        crate::resident::menu::Deps {
            line: ctx.line.clone(),
            place: ctx.place.clone(),
            city: ctx.config.place.city_name.clone(),
            public_url: ctx.config.server.public_url.clone(),
            plow_topic: ctx
                .plow
                .config
                .enabled
                .then_some(crate::plow::notice::TOPIC),
        },
    );
    let numbers: Vec<i64> = crate::store::migrations::MIGRATIONS
        .iter()
        .map(|m| m.0)
        .collect();
    reg.check_migrations(&numbers)
        .map_err(|e| anyhow::anyhow!("resident services: {e}"))?;
    Ok(reg)
}

/// The HTTP surface, as (public, admin). Public: the webhook, the resident pages (shelters, plows, every
/// service's routes) and the console. Admin: health, metrics and the console's `/api/status`.
fn routers(ctx: &Context, mut services: crate::services::Registry) -> (Router, Router) {
    let health = HealthState {
        health: ctx.infra.health.clone(),
        metrics: ctx.infra.metrics.clone(),
        started: ctx.started,
    };
    let console = crate::console::router(
        console_deps(ctx),
        crate::console::Providers::live(&ctx.infra.store, ctx.place.clone()),
    );
    let public = Router::new()
        .merge(crate::line::webhook::router(ctx.line.clone()))
        .merge(crate::plow::web::routes(crate::plow::web::PlowWeb {
            store: ctx.infra.store.clone(),
            plow: ctx.plow.clone(),
        }))
        .merge(crate::place::web::routes(
            ctx.infra.store.clone(),
            ctx.place.clone(),
        ))
        .merge(crate::cap::routes(crate::cap::Deps {
            store: ctx.infra.store.clone(),
            place: ctx.place.clone(),
            public_url: ctx.config.server.public_url.clone(),
            city: ctx.config.place.city_name.clone(),
        }))
        .merge(crate::assets::routes())
        .merge(services.take_routes())
        .merge(console.public);
    let admin = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(health)
        .merge(console.admin);
    (public, admin)
}

/// The layers every response of both listeners passes through, outermost first: the access log (one
/// `sonae::access` line per request: method, path without the query, status, latency), the security
/// headers, and the request timeout (408 after `timeout`).
pub fn http_layers(router: Router, timeout: Duration) -> Router {
    use tower_http::trace::TraceLayer;
    router
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<axum::body::Body>| {
                    tracing::info_span!(
                        target: "sonae::access",
                        "http",
                        method = %req.method(),
                        path = %req.uri().path(),
                    )
                })
                .on_request(())
                .on_response(
                    |res: &axum::http::Response<axum::body::Body>,
                     latency: Duration,
                     _: &tracing::Span| {
                        let status = res.status().as_u16();
                        let latency_ms = latency.as_millis() as u64;
                        if status >= 500 {
                            tracing::warn!(target: "sonae::access", status, latency_ms, "request");
                        } else {
                            tracing::info!(target: "sonae::access", status, latency_ms, "request");
                        }
                    },
                )
                .on_failure(()),
        )
}

/// The one Content-Security-Policy: scripts and styles only from this origin (no inline code), map tiles from
/// 地理院タイル (and Leaflet's empty `data:` image), requests, forms and frames (the console's message preview)
/// only this origin, never framed by another site.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: https://cyberjapandata.gsi.go.jp; connect-src 'self'; frame-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The security headers of every response. A response that set its own CSP and frame options keeps them (the
/// console's message preview, a separate document framed by the console page, needs inline styles and
/// `frame-ancestors 'self'`).
async fn security_headers(mut res: axum::response::Response) -> axum::response::Response {
    use axum::http::HeaderValue;
    let h = res.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    // `same-origin`: no referrer leaves for other sites (a resident's district id in a shelter-page URL, a
    // console path), and the browser's own form POSTs carry a real `Origin` (with `no-referrer` Chromium
    // sends `Origin: null`, which the console's same-origin check refuses).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// Tells systemd the mode and the health of the JMA feeds and the other parts (`STATUS=`, the "Status:" line
/// of `systemctl status sonae`). Looked at every 5 s, sent when it changed.
fn status_job(ctx: &Context) -> crate::scheduler::Job {
    let store = ctx.infra.store.clone();
    let health = ctx.infra.health.clone();
    let last = Arc::new(std::sync::Mutex::new(String::new()));
    crate::scheduler::Job::every("systemd.status", Duration::from_secs(5), move || {
        let (store, health, last) = (store.clone(), health.clone(), last.clone());
        async move {
            let mode = store.read(crate::mode::current_mode).await?;
            let text = status_line(&mode, &health.snapshot());
            let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
            if *last != text {
                crate::systemd::notify_status(&text);
                *last = text;
            }
            Ok(())
        }
    })
}

/// One line for `systemctl status`: the mode, the JMA feeds (with what is wrong with any of them), and every
/// other component that is not ok, e.g. `災害モード（手動保持） ・ 気象庁フィード 2/3 正常（extra.xml: 12 分間取得
/// できていません（連続失敗 14 回）） ・ 他は正常`.
pub fn status_line(
    mode: &crate::mode::ModeState,
    components: &std::collections::BTreeMap<String, crate::health::ComponentState>,
) -> String {
    let mut first = mode.effective().label_ja().to_string();
    if mode.manual_hold {
        first.push_str("（手動保持）");
    }
    let (feeds, others): (Vec<_>, Vec<_>) = components
        .iter()
        .partition(|(name, _)| name.starts_with("jma_feed:"));
    let feeds_text = if feeds.is_empty() {
        "気象庁フィードの設定なし".to_string()
    } else {
        let ok = feeds.iter().filter(|(_, s)| s.status == Status::Ok).count();
        let notes: Vec<String> = feeds
            .iter()
            .filter(|(_, s)| !s.detail.is_empty())
            .map(|(name, s)| format!("{}: {}", name.trim_start_matches("jma_feed:"), s.detail))
            .collect();
        let mut t = format!("気象庁フィード {ok}/{} 正常", feeds.len());
        if !notes.is_empty() {
            t.push_str(&format!("（{}）", notes.join("、")));
        }
        t
    };
    let attention: Vec<String> = others
        .iter()
        .filter(|(_, s)| s.status != Status::Ok)
        .map(|(name, s)| {
            let word = if s.status == Status::Down {
                "停止"
            } else {
                "低下"
            };
            if s.detail.is_empty() {
                format!("{name}（{word}）")
            } else {
                format!("{name}（{word}: {}）", s.detail)
            }
        })
        .collect();
    let rest = if attention.is_empty() {
        "他は正常".to_string()
    } else {
        format!("要確認: {}", attention.join("、"))
    };
    format!("{first} ・ {feeds_text} ・ {rest}")
}

#[derive(Clone)]
struct HealthState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    started: std::time::Instant,
}

/// 200 with every component's state while nothing is down; 503 when a component is down.
async fn healthz(State(h): State<HealthState>) -> impl IntoResponse {
    let overall = h.health.overall();
    let code = if overall == Status::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "status": overall,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": h.started.elapsed().as_secs(),
        "components": h.health.snapshot(),
    });
    (code, Json(body))
}

async fn metrics(State(h): State<HealthState>) -> impl IntoResponse {
    h.metrics.set(
        "sonae_uptime_seconds",
        "Seconds since the daemon started.",
        &[],
        h.started.elapsed().as_secs_f64(),
    );
    let overall = h.health.overall();
    for (name, st) in h.health.snapshot() {
        let v = match st.status {
            Status::Ok => 0.0,
            Status::Degraded => 1.0,
            Status::Down => 2.0,
        };
        // Component names come from the code and the config (feeds), so the label set is bounded.
        h.metrics.set(
            "sonae_component_status",
            "0 ok, 1 degraded, 2 down.",
            &[("component", &name)],
            v,
        );
    }
    h.metrics.set(
        "sonae_healthy",
        "1 when no component is down.",
        &[],
        if overall == Status::Down { 0.0 } else { 1.0 },
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        h.metrics.render(),
    )
}

/// The secrets of a daemon that talks to the LINE stand-in `sandbox`: its channel secret and access token, no
/// API token. (The stand-in knows nothing of the daemon's configuration.)
pub fn sandbox_secrets(sandbox: &crate::line::sandbox::SandboxConfig) -> crate::config::Secrets {
    crate::config::Secrets {
        line_channel_secret: crate::secret::Secret::new(sandbox.channel_secret.clone()),
        line_channel_access_token: crate::secret::Secret::new(sandbox.access_token.clone()),
        api_token: None,
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called (inside the runtime), not
/// when the future is first polled: `run_until_stopped` polls it only after `/healthz` answers and READY=1 is
/// sent, and a SIGTERM in between (`systemctl stop` right after start; a test stopping the daemon as soon as
/// it is healthy) used to kill the process with the default action instead of draining it (exit 143).
pub fn stop_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing SIGINT handler");
    async move {
        // Cancel-safety: both branches only wait for a signal.
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
