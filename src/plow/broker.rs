//! The embedded MQTT broker (rumqttd), for a small city that runs nothing but Sonae, and for `sonae demo`.
//!
//! rumqttd runs its router and listener on its own threads with their own single-threaded runtimes;
//! [`rumqttd::Broker::start`] blocks for the broker's lifetime, so it gets a dedicated OS thread that lives
//! until the process exits (the broker has no stop call; on SIGTERM the daemon exits after draining its own
//! tasks, which ends the thread with the process). Production should point at a managed broker (mosquitto)
//! with TLS; the embedded one listens without TLS and, when `plow.username`/`plow.password` are set, requires
//! those credentials.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Longest accepted publish on the embedded broker (a position is ~150 bytes).
const MAX_PAYLOAD: usize = 20 * 1024;

/// Starts rumqttd on `listen` and waits (up to 5 s) until it accepts TCP connections.
pub fn start_embedded(
    listen: SocketAddr,
    credentials: Option<(String, String)>,
) -> anyhow::Result<()> {
    // rumqttd reports a failed bind only in its log; check first so a taken port is a clear start-up error.
    TcpListener::bind(listen).with_context(|| {
        format!("plow.embedded_broker_listen: cannot listen on {listen}; choose a free port")
    })?;
    let auth = credentials.map(|(u, p)| HashMap::from([(u, p)]));
    let server = rumqttd::ServerSettings {
        name: "sonae-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: MAX_PAYLOAD,
            max_inflight_count: 500,
            auth,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 1_000,
            max_outgoing_packet_count: 500,
            // In-memory commit log per filter: 10 segments of 4 MiB ≈ 270 000 positions of backlog.
            max_segment_size: 4 * 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    };
    std::thread::Builder::new()
        .name("plow-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .context("starting the embedded broker thread")?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if TcpStream::connect(listen).is_ok() {
            tracing::info!(%listen, "embedded MQTT broker listening");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("the embedded MQTT broker did not start listening on {listen} within 5 s")
}
