//! A local stand-in for the LINE platform (the `line-sandbox` binary, `sonae line-sandbox`, or
//! [`Sandbox::start`] in-process).
//!
//! The LINE API cannot be reached from the city's test machines, and LINE forbids load-testing it, so
//! tests, the benchmark and `sonae demo` talk to this server instead. It speaks raw HTTP/JSON with LINE's
//! semantics (research/line-api.md), so that passing against it means the real platform works:
//!
//! * every request body is validated against the official OpenAPI schema ([`line_openapi`]) and the
//!   documented limits the schema leaves out ([`limits`]); errors use LINE's body
//!   `{"message", "details": [{"message", "property"}]}` and every response carries `X-Line-Request-Id`;
//! * `Authorization: Bearer` is checked (401); bodies over 2 MB get 413;
//! * per-endpoint token buckets at LINE's documented rates → 429 "The API rate limit has been exceeded.
//!   Try again later."; an optional monthly quota → 429 "You have reached your monthly limit.";
//! * `X-Line-Retry-Key` (push, multicast, narrowcast, broadcast only; UUID): a key accepted in the last
//!   24 hours → 409 with `X-Line-Accepted-Request-Id`; the 24 h run on a clock tests can move
//!   (`POST /sandbox/clock/advance`);
//! * reply tokens are issued in the webhook events it sends, single use, valid 1 minute;
//! * rich menus with image rules, per-user link > default, aliases, `richmenuswitch`, bulk link, batch
//!   control (parallel moves, `unlinkAll`, `resumeRequestKey`, 3/h) with progress polling;
//! * it records every message delivered to every user and acts as residents (signed webhook events).
//!
//! The `/sandbox/...` endpoints are the stand-in's own (no auth): see [`http`] for the list.
//!
//! State lives in memory behind one mutex ([`state::State`], pure and tested alone); handlers hold it for
//! microseconds and never across I/O.

pub mod cli;
pub mod http;
pub mod limits;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

pub use http::Faults;
pub use state::Settings;

/// How to run the stand-in.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    /// Where simulated residents' webhook events go (the daemon's `POST /webhook`); can also be set with
    /// LINE's own `PUT /v2/bot/channel/webhook/endpoint`.
    pub webhook_url: Option<String>,
    /// Signs webhook events (`X-Line-Signature`).
    pub channel_secret: String,
    /// The only access token accepted in `Authorization: Bearer`.
    pub access_token: String,
    /// The bot's own user id, sent as `destination` in webhooks.
    pub bot_user_id: String,
    pub settings: Settings,
    pub faults: Faults,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_url: None,
            channel_secret: "sandbox-channel-secret".into(),
            access_token: "sandbox-access-token".into(),
            bot_user_id: "U5a0d0e0b0a0e0d0b0e0e0f0a0c0e0d00".into(),
            settings: Settings::default(),
            faults: Faults::default(),
        }
    }
}

/// The stand-in server.
pub struct Sandbox;

/// A running stand-in; stops when dropped or on [`SandboxHandle::stop`].
pub struct SandboxHandle {
    addr: SocketAddr,
    shared: Arc<http::Shared>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sandbox {
    /// Binds `config.listen` (port 0 for a free port) and serves until the handle is stopped or dropped.
    pub async fn start(config: SandboxConfig) -> anyhow::Result<SandboxHandle> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding the LINE stand-in to {}", config.listen))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(http::Shared::new(config));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(http::serve(listener, shared.clone(), shutdown.clone()));
        Ok(SandboxHandle {
            addr,
            shared,
            shutdown,
            task: Some(task),
        })
    }
}

impl SandboxHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`: use it as both `line.api_base` and `line.api_data_base`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Direct access to the state, for in-process tests and the demo.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut state::State) -> T) -> T {
        f(&mut self.shared.lock())
    }

    /// Sets where webhook events are sent.
    pub fn set_webhook_url(&self, url: &str) {
        self.shared.set_webhook_url(url);
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `line-sandbox` and `sonae line-sandbox`: runs until SIGINT/SIGTERM.
pub async fn run_cli(config: SandboxConfig) -> anyhow::Result<()> {
    let handle = Sandbox::start(config).await?;
    println!("LINE stand-in listening on {}", handle.url());
    println!(
        "point the daemon at it: [line] api_base = \"{0}\", api_data_base = \"{0}\"",
        handle.url()
    );
    stop_signal().await;
    handle.stop().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called (inside the runtime), not
/// when the future is first polled.
fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
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
