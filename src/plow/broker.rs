//! MQTT brokers Sonae starts itself, only for `sonae demo` and small trials: the embedded rumqttd (cargo
//! feature `embedded-broker`, off by default: rumqttd is unmaintained upstream and brings ~80 crates), or a
//! child `mosquitto` on a free loopback port. Production runs mosquitto as its own service (README, "Snow
//! plows") with TLS and points `plow.broker_host`/`broker_port` at it.
//!
//! rumqttd runs its router and listener on its own threads with their own single-threaded runtimes;
//! `rumqttd::Broker::start` blocks for the broker's lifetime, so it gets a dedicated OS thread that lives
//! until the process exits (the broker has no stop call; on SIGTERM the daemon exits after draining its own
//! tasks, which ends the thread with the process). The embedded one listens without TLS and, when
//! `plow.username`/`plow.password` are set, requires those credentials.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Whether this build has the embedded broker (cargo feature `embedded-broker`).
pub const EMBEDDED: bool = cfg!(feature = "embedded-broker");

/// Starts rumqttd on `listen` and waits (up to 5 s) until it accepts TCP connections.
#[cfg(feature = "embedded-broker")]
pub fn start_embedded(
    listen: SocketAddr,
    credentials: Option<(String, String)>,
) -> anyhow::Result<()> {
    use std::collections::HashMap;
    /// Longest accepted publish on the embedded broker (a position is ~150 bytes).
    const MAX_PAYLOAD: usize = 20 * 1024;
    // rumqttd reports a failed bind only in its log; check first so a taken port is a clear start-up error.
    std::net::TcpListener::bind(listen).with_context(|| {
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
                tracing::error!(error = %crate::telemetry::chain(&e), "embedded MQTT broker stopped");
            }
        })
        .context("starting the embedded broker thread")?;
    wait_listening(listen, "the embedded MQTT broker")?;
    tracing::info!(%listen, "embedded MQTT broker listening");
    Ok(())
}

/// Without the feature there is no embedded broker; configuration validation refuses
/// `plow.embedded_broker = true` before this is reached.
#[cfg(not(feature = "embedded-broker"))]
pub fn start_embedded(
    _listen: SocketAddr,
    _credentials: Option<(String, String)>,
) -> anyhow::Result<()> {
    bail!("plow.embedded_broker: this sonae is built without the embedded MQTT broker (cargo feature `embedded-broker`)")
}

fn wait_listening(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if is_listening(addr) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{what} did not start listening on {addr} within 5 s")
}

/// The mosquitto program, if installed (Debian puts it in /usr/sbin, which is not on every user's PATH).
pub fn find_mosquitto() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")]);
    candidates
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

/// A `mosquitto` child process on a loopback port, for the demo: anonymous, no persistence, its
/// configuration in `dir`. Stopped when dropped.
#[derive(Debug)]
pub struct ChildMosquitto {
    child: Child,
    pub listen: SocketAddr,
}

impl ChildMosquitto {
    pub fn start(program: &Path, listen: SocketAddr, dir: &Path) -> anyhow::Result<ChildMosquitto> {
        let conf = dir.join("mosquitto.conf");
        // As root mosquitto drops to the `mosquitto` user unless told to stay (it then could not read `dir`).
        let as_root = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        std::fs::write(
            &conf,
            format!(
                "listener {} {}\nallow_anonymous true\npersistence false\n{}",
                listen.port(),
                listen.ip(),
                if as_root { "user root\n" } else { "" }
            ),
        )
        .with_context(|| format!("writing {}", conf.display()))?;
        let child = Command::new(program)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let m = ChildMosquitto { child, listen };
        wait_listening(listen, "mosquitto")?;
        Ok(m)
    }
}

impl Drop for ChildMosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether something listens on `addr`, asked without connecting to it: rumqttd logs an ERROR for every
/// connection that closes (a bare TCP probe, or even a clean MQTT CONNECT/DISCONNECT), so a readiness probe
/// that connects would put a false alarm in the operator's log at every start. On Linux the kernel's socket
/// tables (`/proc/net/tcp`, `/proc/net/tcp6`) answer; elsewhere a TCP connect is the fallback.
fn is_listening(addr: SocketAddr) -> bool {
    let table = match addr {
        SocketAddr::V4(_) => "/proc/net/tcp",
        SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    match std::fs::read_to_string(table) {
        Ok(text) => listening_in(&text, addr),
        Err(_) => TcpStream::connect(addr).is_ok(),
    }
}

/// Whether a `/proc/net/tcp{,6}` table has a socket in LISTEN state (`0A`) on `addr`'s port, bound to `addr`'s
/// IP or to the unspecified address. Addresses are hex words in host byte order (`0100007F:0050` is
/// 127.0.0.1:80 on a little-endian machine).
pub fn listening_in(table: &str, addr: SocketAddr) -> bool {
    fn ip_of(hex: &str) -> Option<std::net::IpAddr> {
        let mut bytes = Vec::with_capacity(16);
        for i in (0..hex.len()).step_by(8) {
            let word = u32::from_str_radix(hex.get(i..i + 8)?, 16).ok()?;
            bytes.extend_from_slice(&word.to_ne_bytes());
        }
        match bytes.len() {
            4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
            16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
            _ => None,
        }
    }
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state)) = (f.get(1), f.get(3)) else {
            return false;
        };
        let Some((ip, port)) = local.split_once(':') else {
            return false;
        };
        *state == "0A"
            && u16::from_str_radix(port, 16).ok() == Some(addr.port())
            && ip_of(ip).is_some_and(|ip| ip == addr.ip() || ip.is_unspecified())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Host-order hex of an IPv4 address, as the kernel prints it.
    fn hex4(ip: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip))
    }

    #[test]
    fn a_listening_socket_is_found_in_the_kernel_table_by_address_and_port() {
        let lo = hex4([127, 0, 0, 1]);
        let any = hex4([0, 0, 0, 0]);
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: {lo}:075B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n\
             1: {lo}:C350 {lo}:075B 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n\
             2: {any}:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1\n"
        );
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(listening_in(&table, at("127.0.0.1:1883")), "0x075B = 1883");
        assert!(
            !listening_in(&table, at("127.0.0.1:50000")),
            "an established connection (01) is not a listener"
        );
        assert!(
            !listening_in(&table, at("127.0.0.2:1883")),
            "another address on the same port"
        );
        assert!(
            listening_in(&table, at("127.0.0.1:8080")),
            "a listener on 0.0.0.0 covers every address"
        );
        assert!(!listening_in(
            "garbage\nmore garbage here 0A",
            at("127.0.0.1:1883")
        ));
    }

    #[test]
    fn an_ipv6_listener_is_read_word_by_word() {
        let mut words = String::new();
        for chunk in std::net::Ipv6Addr::LOCALHOST.octets().chunks(4) {
            words.push_str(&format!(
                "{:08X}",
                u32::from_ne_bytes(chunk.try_into().unwrap())
            ));
        }
        let table = format!(
            "  sl  local_address remote_address st\n   0: {words}:075B 00000000000000000000000000000000:0000 0A\n"
        );
        assert!(listening_in(&table, "[::1]:1883".parse().unwrap()));
        assert!(!listening_in(&table, "[::1]:1884".parse().unwrap()));
    }

    #[test]
    fn the_broker_is_seen_listening_without_a_connection() {
        // A real listener in this process: the kernel table must show it (Linux), or the fallback connects.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(is_listening(l.local_addr().unwrap()));
        let free = l.local_addr().unwrap();
        drop(l);
        assert!(!is_listening(free));
    }
}
