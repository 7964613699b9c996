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

/// Writes secret files and a config for the real binary into `dir`; `extra` is appended to the config.
pub fn write_config(dir: &Path, listen: SocketAddr, extra: &str) -> PathBuf {
    let secret = |name: &str, value: &str| {
        let p = dir.join(name);
        std::fs::write(&p, value).unwrap();
        p.display().to_string()
    };
    let text = format!(
        r#"[server]
listen = "{listen}"
public_url = "http://{listen}"
shutdown_deadline_secs = 5

[store]
path = "{db}"

[console]
session_key = {{ file = "{sk}" }}

[line]
channel_secret = {{ file = "{cs}" }}
channel_access_token = {{ file = "{at}" }}
{extra}
"#,
        db = dir.join("sonae.db").display(),
        sk = secret("session-key", "0123456789abcdef0123456789abcdef0123456789"),
        cs = secret("channel-secret", "test-channel-secret"),
        at = secret("access-token", "test-access-token"),
    );
    // Never poll the real JMA feeds from a test unless the test configures its own.
    let text = if extra.contains("[jma]") {
        text
    } else {
        text + "\n[jma]\nfeeds = []\n"
    };
    let path = dir.join("sonae.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `sonae` process, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
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
        let d = Daemon { child, addr };
        d.wait_healthy(Duration::from_secs(20));
        d
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn wait_healthy(&self, within: Duration) {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(r) = reqwest::blocking_get(&self.url("/healthz")) {
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
