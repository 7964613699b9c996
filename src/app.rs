//! Wiring: builds the shared context, spawns the long-running tasks, serves HTTP, and shuts down in order.
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
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Secrets};
use crate::health::{Health, Status};
use crate::metrics::Metrics;
use crate::store::Store;

/// Everything the daemon's parts share. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub secrets: Arc<Secrets>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Cancelled when the daemon begins to stop.
    pub shutdown: CancellationToken,
    /// Every long-running task is spawned here so shutdown can wait for it.
    pub tasks: TaskTracker,
    /// Monotonic start, for uptime.
    pub started: std::time::Instant,
    /// LINE client, webhook event router and worker wake-up.
    pub line: crate::line::LineRuntime,
    /// Snow-plow state shared by the MQTT ingest and the map/dispatcher handlers.
    pub plow: Arc<crate::plow::Plow>,
}

pub struct Application {
    listener: TcpListener,
    ctx: Context,
}

impl Application {
    /// Opens the store (applying migrations), binds the listener. Nothing runs until
    /// [`Application::run_until_stopped`].
    pub async fn build(config: Config, secrets: Secrets) -> anyhow::Result<Application> {
        let store = Store::open(&config.store.path)?;
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("listening on {} (server.listen)", config.server.listen))?;
        let health = Arc::new(Health::new());
        health.set("store", Status::Ok, "");
        let metrics = Arc::new(Metrics::new());
        let line = crate::line::LineRuntime::build(&config, &secrets, &health, &metrics, &store)?;
        let plow = Arc::new(crate::plow::Plow::load(&config.plow)?);
        let ctx = Context {
            config: Arc::new(config),
            secrets: Arc::new(secrets),
            store,
            metrics,
            health,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            started: std::time::Instant::now(),
            line,
            plow,
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

    /// Runs until `stop` completes, then drains within the configured deadline.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application { listener, ctx } = self;
        spawn_components(&ctx).await?;

        let router = crate::web::router(ctx.clone());
        let token = ctx.shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
        });
        crate::systemd::notify_ready();
        let watchdog = crate::systemd::spawn_watchdog(&ctx);
        tracing::info!(listen = %ctx.config.server.listen, "sonae is running");

        tokio::select! {
            _ = stop => tracing::info!("stop requested; draining"),
            _ = ctx.shutdown.cancelled() => tracing::info!("shutdown requested internally; draining"),
        }
        crate::systemd::notify_stopping();
        ctx.shutdown.cancel();
        ctx.tasks.close();
        let deadline = Duration::from_secs(ctx.config.server.shutdown_deadline_secs);
        let drained = tokio::time::timeout(deadline, async {
            let _ = server.await;
            ctx.tasks.wait().await;
        })
        .await;
        if let Some(w) = watchdog {
            w.abort();
        }
        match drained {
            Ok(()) => tracing::info!("stopped cleanly"),
            Err(_) => tracing::warn!(
                deadline_secs = deadline.as_secs(),
                tasks_left = ctx.tasks.len(),
                "drain deadline passed; exiting with work left (it resumes from the database at next start)"
            ),
        }
        Ok(())
    }
}

/// Spawns the daemon's long-running parts on `ctx.tasks`. Each feature adds its own line here.
async fn spawn_components(ctx: &Context) -> anyhow::Result<()> {
    let pipeline = crate::jma::spawn(ctx).await?;
    let outbox_wake = crate::disaster::runtime::spawn(ctx, pipeline).await?;
    // Plow notices are queued by the MQTT ingest; it wakes the same sender after each commit.
    let _ = ctx.plow.outbox_wake.set(outbox_wake);
    crate::plow::resident::register_handlers(ctx);
    ctx.tasks
        .spawn(crate::line::webhook::run_worker(ctx.clone()));
    crate::plow::spawn(ctx).await?;
    ctx.tasks.spawn(crate::console::seal::run(ctx.clone()));
    Ok(())
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
