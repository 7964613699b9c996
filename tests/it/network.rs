//! Behind a city's network: a TLS-inspecting proxy with the city's own CA. The test plays the proxy — it
//! answers `CONNECT host:443`, terminates TLS with a certificate for that host signed by a CA generated here
//! (rcgen), and forwards the decrypted HTTP to a local JMA feed or the LINE stand-in — and runs the real
//! binary with `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` and the CA as the operating system's store
//! (`SSL_CERT_FILE`, which the OS-store loader honours). The daemon polls `https://www.data.jma.go.jp/…` and
//! `sonae richmenu sync` talks to `https://api.line.me` through it; without the CA the same fails, saying
//! why (the certificate), not only "error sending request".

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;

const EMPTY_FEED: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" lang="ja"><title>高頻度（随時）</title><subtitle>JMAXML publishing feed</subtitle><updated>2026-01-01T00:00:00+09:00</updated><id>urn:test:feed</id></feed>
"#;

/// A plain-HTTP JMA feed that answers an empty feed on every path and counts the requests per path.
async fn feed_server() -> (SocketAddr, Arc<Mutex<HashMap<String, usize>>>) {
    let hits = Arc::new(Mutex::new(HashMap::new()));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let h = h.clone();
        async move {
            *h.lock().unwrap().entry(uri.path().to_string()).or_insert(0) += 1;
            (
                [(axum::http::header::CONTENT_TYPE, "application/atom+xml")],
                EMPTY_FEED,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

/// The city's CA: its certificate (PEM, for `SSL_CERT_FILE`) and what signs the proxy's certificates.
struct CityCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl CityCa {
    fn new() -> CityCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Example City TLS inspection CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).unwrap();
        CityCa { cert, key }
    }

    /// A server configuration presenting a certificate for `host`, signed by this CA.
    fn server_for(&self, host: &str) -> Arc<rustls::ServerConfig> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), self.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(
                    rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
                ),
            )
            .unwrap();
        Arc::new(config)
    }
}

/// The city's TLS-inspecting proxy: `CONNECT host:port` only; the tunnel is decrypted with a certificate
/// for `host` from the city's CA and forwarded to `upstream[host]` as plain HTTP. Records every CONNECT.
struct Proxy {
    addr: SocketAddr,
    connects: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    async fn start(ca: Arc<CityCa>, upstream: HashMap<String, SocketAddr>) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = Arc::new(Mutex::new(Vec::new()));
        let seen = connects.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let (ca, upstream, seen) = (ca.clone(), upstream.clone(), seen.clone());
                tokio::spawn(async move {
                    let _ = tunnel(client, &ca, &upstream, &seen).await;
                });
            }
        });
        Proxy { addr, connects }
    }

    fn connects(&self) -> Vec<String> {
        self.connects.lock().unwrap().clone()
    }
}

async fn tunnel(
    client: tokio::net::TcpStream,
    ca: &CityCa,
    upstream: &HashMap<String, SocketAddr>,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut client = tokio::io::BufReader::new(client);
    let mut request_line = String::new();
    client.read_line(&mut request_line).await?;
    loop {
        let mut header = String::new();
        client.read_line(&mut header).await?;
        if header == "\r\n" || header.is_empty() {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    seen.lock().unwrap().push(format!("{method} {target}"));
    let host = target.rsplit_once(':').map(|(h, _)| h).unwrap_or(target);
    let Some(up) = upstream.get(host).filter(|_| method == "CONNECT") else {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    client
        .get_mut()
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await?;
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_for(host));
    let mut tls = acceptor.accept(client.into_inner()).await?;
    let mut server = tokio::net::TcpStream::connect(up).await?;
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
    Ok(())
}

fn write_ca(dir: &Path, ca: &CityCa) -> std::path::PathBuf {
    let path = dir.join("city-ca.pem");
    std::fs::write(&path, ca.cert.pem()).unwrap();
    path
}

/// Environment of a process behind the proxy. `ca`: the OS store is the city's CA (`SSL_CERT_FILE`).
fn behind_proxy(proxy: &Proxy, ca: Option<&Path>) -> Vec<(String, String)> {
    let url = format!("http://{}", proxy.addr);
    let mut env = vec![
        ("HTTPS_PROXY".to_string(), url.clone()),
        ("HTTP_PROXY".to_string(), url),
        ("NO_PROXY".to_string(), "localhost".to_string()),
    ];
    if let Some(ca) = ca {
        env.push(("SSL_CERT_FILE".into(), ca.display().to_string()));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_tls_inspecting_proxy_with_the_citys_ca_jma_and_line_are_reached_and_no_proxy_is_honoured(
) {
    let dir = tempfile::tempdir().unwrap();
    let (feed, feed_hits) = feed_server().await;
    let sandbox_config = sonae::line::sandbox::SandboxConfig::default();
    let sandbox = sonae::line::sandbox::Sandbox::start(sandbox_config.clone())
        .await
        .unwrap();
    let sandbox_addr: SocketAddr = sandbox
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let ca = Arc::new(CityCa::new());
    let ca_file = write_ca(dir.path(), &ca);
    let proxy = Proxy::start(
        ca.clone(),
        HashMap::from([
            ("www.data.jma.go.jp".to_string(), feed),
            ("api.line.me".to_string(), sandbox_addr),
            ("api-data.line.me".to_string(), sandbox_addr),
        ]),
    )
    .await;

    // The real LINE and JMA addresses; one feed on `localhost`, which NO_PROXY sends around the proxy.
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let extra = format!(
        "api_base = \"https://api.line.me\"\napi_data_base = \"https://api-data.line.me\"\nmax_attempts = 1\n\
         \n[jma]\nfeeds = [\"https://www.data.jma.go.jp/developer/xml/feed/extra.xml\", \"http://localhost:{}/developer/xml/feed/eqvol.xml\"]\n\
         catch_up_from_long_feeds = false\n",
        feed.port()
    );
    let config = write_config(dir.path(), addr, &extra);
    // LINE's real API is configured, so the links residents get must not point at this machine; and the
    // stand-in's secrets.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("public_url = \"http://{addr}\""),
        "public_url = \"https://bousai.example.lg.jp\"",
    );
    std::fs::write(&config, text).unwrap();
    std::fs::write(
        dir.path().join("channel-secret"),
        &sandbox_config.channel_secret,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("access-token"),
        &sandbox_config.access_token,
    )
    .unwrap();

    let env = behind_proxy(&proxy, Some(&ca_file));
    let child = std::process::Command::new(SONAE)
        .args(["run", "--config"])
        .arg(&config)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let daemon = Daemon {
        child,
        addr,
        admin: admin_of(&config),
    };
    let polled_ok = |feed: &str| {
        let (_, body) = reqwest::get_full(&daemon.admin_url("/metrics")).unwrap_or_default();
        body.lines().any(|l| {
            l.starts_with(&format!(
                "sonae_jma_feed_polls_total{{feed=\"{feed}\",outcome=\"ok\"}}"
            ))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(polled_ok("extra.xml") && polled_ok("eqvol.xml")) {
        assert!(
            Instant::now() < deadline,
            "feeds not polled through the proxy; proxy saw {:?}",
            proxy.connects()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hits = feed_hits.lock().unwrap().clone();
    assert!(
        hits.get("/developer/xml/feed/extra.xml")
            .is_some_and(|n| *n >= 1),
        "{hits:?}"
    );
    assert!(
        hits.get("/developer/xml/feed/eqvol.xml")
            .is_some_and(|n| *n >= 1),
        "{hits:?}"
    );
    let connects = proxy.connects();
    assert!(
        connects.contains(&"CONNECT www.data.jma.go.jp:443".to_string()),
        "{connects:?}"
    );
    assert!(
        connects.iter().all(|c| !c.contains("localhost")),
        "NO_PROXY=localhost went through the proxy: {connects:?}"
    );
    drop(daemon);

    // An admin command talks to LINE through the same proxy: rich menus created on the stand-in.
    let out = tokio::process::Command::new(SONAE)
        .args(["db", "migrate", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tokio::process::Command::new(SONAE)
        .args(["richmenu", "sync", "--config"])
        .arg(&config)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "off")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let connects = proxy.connects();
    for host in ["CONNECT api.line.me:443", "CONNECT api-data.line.me:443"] {
        assert!(connects.iter().any(|c| c == host), "{host}: {connects:?}");
    }
    let menus = sandbox.with_state(|s| s.list_menus()["richmenus"].as_array().map_or(0, Vec::len));
    assert!(menus >= 2, "rich menus on the stand-in: {menus}");

    // The same without the city's CA in the store: refused, and the error says why.
    let without_ca = behind_proxy(&proxy, None);
    let out = tokio::process::Command::new(SONAE)
        .args(["richmenu", "sync", "--config"])
        .arg(&config)
        .envs(without_ca.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "off")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error sending request") && err.contains("UnknownIssuer"),
        "the certificate problem is named: {err}"
    );
}
