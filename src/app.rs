//! Wiring: builds the shared context, spawns the long-running tasks, installs the resident services, serves
//! HTTP (`/healthz`, `/metrics` and every feature's routes), and shuts down in order.
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

use crate::config::{Config, Secrets};
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
    ctx: Context,
}

impl Application {
    /// Opens the store (applying migrations), loads the place data, binds the listener. Nothing runs until
    /// [`Application::run_until_stopped`].
    pub async fn build(config: Config, secrets: Secrets) -> anyhow::Result<Application> {
        let store = Store::open(&config.store.path)?;
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("listening on {} (server.listen)", config.server.listen))?;
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
        let place = load_place(&config, &infra.store).await?;
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
        Ok(Application { listener, ctx })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
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
        let Application { listener, ctx } = self;
        let services = spawn_components(&ctx).await?;

        let router = router(&ctx, services);
        let token = ctx.infra.shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
        });
        crate::systemd::notify_ready();
        let watchdog = crate::systemd::spawn_watchdog(&ctx.infra.store);
        tracing::info!(listen = %ctx.config.server.listen, "sonae is running");

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

/// Loads the districts and shelters once for every part that uses them; bad rows become problems.
async fn load_place(config: &Config, store: &Store) -> anyhow::Result<Option<Arc<PlaceData>>> {
    if !config.place.districts.is_file() {
        tracing::info!(
            districts = %config.place.districts.display(),
            "place.districts is not a file; no districts or shelters are loaded"
        );
        return Ok(None);
    }
    let cfg = config.place.clone();
    let place = tokio::task::spawn_blocking(move || PlaceData::load(&cfg))
        .await
        .context("loading place data panicked")?
        .context("loading place data")?;
    for p in &place.problems {
        store
            .record_problem("place", format!("地区・避難所データの不正な行: {p}"), None)
            .await;
    }
    Ok(Some(Arc::new(place)))
}

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

/// The whole HTTP surface: health and metrics, the webhook, the public pages, the console, and every
/// service's routes.
fn router(ctx: &Context, mut services: crate::services::Registry) -> Router {
    let health = HealthState {
        health: ctx.infra.health.clone(),
        metrics: ctx.infra.metrics.clone(),
        started: ctx.started,
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(health)
        .merge(crate::line::webhook::router(ctx.line.clone()))
        .merge(crate::plow::web::routes(crate::plow::web::PlowWeb {
            store: ctx.infra.store.clone(),
            plow: ctx.plow.clone(),
        }))
        .merge(crate::place::web::routes(
            ctx.infra.store.clone(),
            ctx.place.clone(),
            &ctx.config.plow.leaflet_dir,
        ))
        .merge(crate::cap::routes(crate::cap::Deps {
            store: ctx.infra.store.clone(),
            place: ctx.place.clone(),
            public_url: ctx.config.server.public_url.clone(),
            city: ctx.config.place.city_name.clone(),
        }))
        .merge(services.take_routes())
        .merge(crate::console::router(
            console_deps(ctx),
            crate::console::Providers::live(&ctx.infra.store, ctx.place.clone()),
        ))
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

/// The secrets of a daemon that talks to the LINE stand-in `sandbox`: its channel secret and access token, a
/// fresh random session key, no API token. (The stand-in knows nothing of the daemon's configuration.)
pub fn sandbox_secrets(sandbox: &crate::line::sandbox::SandboxConfig) -> crate::config::Secrets {
    crate::config::Secrets {
        line_channel_secret: crate::secret::Secret::new(sandbox.channel_secret.clone()),
        line_channel_access_token: crate::secret::Secret::new(sandbox.access_token.clone()),
        session_key: crate::secret::Secret::random(48),
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
