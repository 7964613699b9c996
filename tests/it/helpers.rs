//! Shared test helpers.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SONAE: &str = env!("CARGO_BIN_EXE_sonae");

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A LINE API base nobody answers (the discard port): tests never reach the real LINE, and a daemon whose
/// `server.public_url` is on loopback is not refused for pointing residents at this machine.
pub const NO_LINE: &str = "http://127.0.0.1:9";

/// What every in-process daemon of the tests needs on top of `Config::default()`: both listeners on free
/// loopback ports, LINE nowhere (a test points it at its stand-in), and no place data
/// (`place.enabled = false`, the documented opt-out) unless the test gives its own.
pub fn test_config(db: &Path) -> sonae::config::Config {
    let mut c = sonae::config::Config::default();
    c.server.listen = "127.0.0.1:0".parse().unwrap();
    c.server.admin_listen = "127.0.0.1:0".parse().unwrap();
    c.store.path = db.to_path_buf();
    c.line.api_base = NO_LINE.into();
    c.line.api_data_base = NO_LINE.into();
    c.place.enabled = false;
    c.jma.feeds = Vec::new();
    c
}

/// Writes secret files and a config for the real binary into `dir`; `extra` is appended to the config (right
/// after the `[line]` keys, so it may add LINE keys before its own sections). The admin listener gets a free
/// port ([`admin_of`] reads it back). Unless `extra` says otherwise: LINE is [`NO_LINE`], no JMA feed is
/// polled, and there is no place data (`place.enabled = false`).
pub fn write_config(dir: &Path, listen: SocketAddr, extra: &str) -> PathBuf {
    let secret = |name: &str, value: &str| {
        let p = dir.join(name);
        std::fs::write(&p, value).unwrap();
        p.display().to_string()
    };
    let mut line_defaults = String::new();
    if !extra.contains("api_base =") {
        line_defaults.push_str(&format!("api_base = \"{NO_LINE}\"\n"));
    }
    if !extra.contains("api_data_base =") {
        line_defaults.push_str(&format!("api_data_base = \"{NO_LINE}\"\n"));
    }
    let mut extra = extra.to_string();
    if !extra.contains("[place]") {
        extra.push_str("\n[place]\nenabled = false\n");
    }
    // Never poll the real JMA feeds from a test unless the test configures its own.
    if !extra.contains("[jma]") {
        extra.push_str("\n[jma]\nfeeds = []\n");
    }
    let text = format!(
        r#"[server]
listen = "{listen}"
admin_listen = "127.0.0.1:{admin}"
public_url = "http://{listen}"
shutdown_deadline_secs = 5

[store]
path = "{db}"

[line]
channel_secret = {{ file = "{cs}" }}
channel_access_token = {{ file = "{at}" }}
{line_defaults}{extra}
"#,
        admin = free_port(),
        db = dir.join("sonae.db").display(),
        cs = secret("channel-secret", "test-channel-secret"),
        at = secret("access-token", "test-access-token"),
    );
    let path = dir.join("sonae.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `sonae db migrate --config CONFIG`: creates the database an operator's first command needs (commands never
/// create or migrate it themselves).
pub fn migrate(config: &Path) {
    let out = Command::new(SONAE)
        .args(["db", "migrate", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sonae db migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The admin listener (`/healthz`, `/metrics`, `/api/status`) of a config file.
pub fn admin_of(config: &Path) -> SocketAddr {
    sonae::config::Config::from_file(config)
        .unwrap_or_else(|e| panic!("{}: {e}", config.display()))
        .server
        .admin_listen
}

/// A running `sonae` process, killed on drop.
pub struct Daemon {
    pub child: Child,
    /// The public listener (webhook, resident pages, console).
    pub addr: SocketAddr,
    /// The admin listener (`/healthz`, `/metrics`, `/api/status`).
    pub admin: SocketAddr,
}

impl Daemon {
    pub fn start(config: &Path, addr: SocketAddr) -> Daemon {
        let child = Command::new(SONAE)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting sonae");
        let d = Daemon {
            child,
            addr,
            admin: admin_of(config),
        };
        d.wait_healthy(Duration::from_secs(20));
        d
    }

    /// A URL on the public listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    pub fn wait_healthy(&self, within: Duration) {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(r) = reqwest::blocking_get(&self.admin_url("/healthz")) {
                if r == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sonae did not become healthy within {within:?}");
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal blocking GET returning the status code (no extra dependency on reqwest's blocking feature).
pub mod reqwest {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub fn blocking_get(url: &str) -> std::io::Result<u16> {
        Ok(get_full(url)?.0)
    }

    /// (status, body) of a plain-HTTP GET.
    pub fn get_full(url: &str) -> std::io::Result<(u16, String)> {
        let rest = url.strip_prefix("http://").expect("http url");
        let (host, path) = rest
            .split_once('/')
            .map(|(h, p)| (h, format!("/{p}")))
            .unwrap_or((rest, "/".into()));
        let mut s = TcpStream::connect(host)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf).to_string();
        let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    }
}

/// The DOM headless Chromium renders for `url` (after up to 8 s of virtual time for scripts and fetches).
pub fn chromium_dump_dom(url: &str, profile: &Path) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--disable-quic",
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium (run scripts/install-test-deps)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The whole daemon (`Application`) running in this process until [`InProcess::stop`], for tests that look into
/// its store or drive it through the LINE stand-in.
pub struct InProcess {
    stop: tokio_util::sync::CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    pub fn run(app: sonae::app::Application) -> InProcess {
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        let handle = tokio::spawn(app.run_until_stopped(async move { token.cancelled().await }));
        InProcess { stop, handle }
    }

    /// Stops it and checks it drained cleanly.
    pub async fn stop(self) {
        self.stop.cancel();
        self.handle.await.unwrap().unwrap();
    }
}
