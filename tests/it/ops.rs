//! Running Sonae as a city's IT section does: `sonae check` refusing what would silently switch the mission
//! off, the two listeners and their headers, the access log, journald, `systemctl status`, the demo's output.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn check(config: &Path) -> (Option<i32>, String, String) {
    check_with(config, &[])
}

fn check_with(config: &Path, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(SONAE)
        .args(["check", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The shipped default (`sonae config default`) with the database and the secrets moved to `dir`.
fn shipped_default(dir: &Path) -> PathBuf {
    let out = Command::new(SONAE)
        .args(["config", "default"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap().replace(
        "path = \"/var/lib/sonae/sonae.db\"",
        &format!("path = \"{}\"", dir.join("sonae.db").display()),
    );
    let path = dir.join("default.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const SECRETS: [(&str, &str); 2] = [
    ("SONAE_LINE_CHANNEL_SECRET", "test-channel-secret"),
    ("SONAE_LINE_CHANNEL_ACCESS_TOKEN", "test-access-token"),
];

#[test]
fn check_and_the_daemon_refuse_the_shipped_defaults_naming_each_key_and_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = shipped_default(dir.path());
    let (code, stdout, err) = check_with(&config, &SECRETS);
    assert_eq!(code, Some(2), "{stdout}{err}");
    for needle in [
        "error: place.districts: cannot read \"/etc/sonae/districts.geojson\"",
        "or set place.enabled = false to run without districts and shelters",
        "error: place.shelters: cannot read \"/etc/sonae/shelters.csv\"",
        "error: server.public_url: \"http://127.0.0.1:8080\" is this machine, but line.api_base is LINE's real API",
        "set it to the https address residents reach",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }

    // The daemon refuses on the same grounds, with the same exit code, before it opens anything.
    let out = Command::new(SONAE)
        .args(["run", "--config"])
        .arg(&config)
        .envs(SECRETS)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let run_err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{run_err}");
    for key in [
        "error: place.districts:",
        "error: place.shelters:",
        "error: server.public_url:",
    ] {
        assert!(run_err.contains(key), "missing {key:?} in:\n{run_err}");
    }
    assert!(
        !dir.path().join("sonae.db").exists(),
        "a refused start creates no database"
    );
}

/// A config for `check` with the demo city and a public https address; `extra` is
/// appended.
fn production_like(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        r#"[server]
public_url = "https://bousai.example.lg.jp"
[store]
path = "{db}"
[line]
channel_secret = {{ credential = "line-channel-secret" }}
channel_access_token = {{ credential = "line-channel-access-token" }}
[place]
districts = "{districts}"
shelters = ["{shelters}"]
{extra}
"#,
        db = dir.join("sonae.db").display(),
        districts = repo("deploy/demo/sapporo-districts.geojson").display(),
        shelters = repo("deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv").display(),
    );
    let path = dir.join("sonae.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A systemd-style credentials directory holding the LINE secrets.
fn credentials(dir: &Path) -> PathBuf {
    let creds = dir.join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("line-channel-secret"), "s3cret\n").unwrap();
    std::fs::write(creds.join("line-channel-access-token"), "t0ken\n").unwrap();
    creds
}

#[test]
fn check_accepts_a_complete_production_config_with_systemd_credentials_and_warns_about_retired_keys(
) {
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials(dir.path());
    let config = production_like(
        dir.path(),
        "[console]\nsession_key = { file = \"/etc/sonae/credentials/session-key\" }\n\
         [plow]\nleaflet_dir = \"/usr/share/sonae/web/node_modules/leaflet/dist\"\n",
    );
    let creds_env = [("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())];
    let (code, stdout, err) = check_with(&config, &creds_env);
    assert_eq!(code, Some(0), "{stdout}{err}");
    assert!(stdout.contains(": ok (5899 districts,"), "{stdout}");
    assert!(
        err.contains("warning: console.session_key: no longer used"),
        "{err}"
    );
    assert!(
        err.contains(
            "warning: plow.leaflet_dir: no longer used (Leaflet 1.9.4 is built into sonae"
        ),
        "{err}"
    );
    assert!(
        err.contains("note: store.path: no database at"),
        "the database will be created: {err}"
    );

    // Without systemd's credentials directory the same file says what is missing.
    let (code, _, err) = check(&config);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("line.channel_secret.credential: CREDENTIALS_DIRECTORY is not set"),
        "{err}"
    );
}

#[test]
fn check_refuses_place_files_it_cannot_use_and_an_unreadable_template_dir() {
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials(dir.path());
    let creds_env = [("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())];
    let config = production_like(
        dir.path(),
        "[console]\ntemplates_dir = \"/nonexistent/sonae/console\"\n",
    );
    let (code, stdout, err) = check_with(&config, &creds_env);
    assert_eq!(code, Some(2), "{stdout}{err}");
    assert!(
        err.contains("error: console.templates_dir: cannot read \"/nonexistent/sonae/console\""),
        "{err}"
    );

    let not_geojson = dir.path().join("districts.geojson");
    std::fs::write(&not_geojson, "id,name\n1,中央\n").unwrap();
    let config = production_like(dir.path(), "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &repo("deploy/demo/sapporo-districts.geojson")
            .display()
            .to_string(),
        &not_geojson.display().to_string(),
    );
    std::fs::write(&config, text).unwrap();
    let (code, stdout, err) = check_with(&config, &creds_env);
    assert_eq!(code, Some(2), "{stdout}{err}");
    assert!(
        err.contains(&format!(
            "error: place.districts: \"{}\" cannot be used (not GeoJSON",
            not_geojson.display()
        )),
        "{err}"
    );

    // The explicit opt-out: no place data, a warning, and the daemon would start.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[place]\n", "[place]\nenabled = false\n");
    std::fs::write(&config, text).unwrap();
    let (code, stdout, err) = check_with(&config, &creds_env);
    assert_eq!(code, Some(0), "{stdout}{err}");
    assert!(
        err.contains("warning: place.enabled = false: no districts or shelters are loaded"),
        "{err}"
    );
}

/// One HTTP/1.1 exchange on a raw socket: (status, headers lower-cased, body).
fn http(addr: SocketAddr, request: &str) -> (u16, Vec<(String, String)>, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.get(9..12))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn get(addr: SocketAddr, path: &str) -> (u16, Vec<(String, String)>, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The real daemon with its stderr in a file, `RUST_LOG=info`, and no `NO_COLOR`: colour must be off
/// because stderr is not a terminal.
fn daemon_logging_to(config: &Path, addr: SocketAddr, log: &Path) -> Daemon {
    let child = Command::new(SONAE)
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let d = Daemon {
        child,
        addr,
        admin: admin_of(config),
    };
    d.wait_healthy(Duration::from_secs(30));
    d
}

#[test]
fn the_public_listener_serves_residents_and_the_console_with_security_headers_and_the_admin_listener_the_rest(
) {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let extra = format!(
        "\n[place]\ncity_name = \"札幌市\"\ndistricts = \"{}\"\nshelters = [\"{}\"]\n",
        repo("deploy/demo/sapporo-districts.geojson").display(),
        repo("deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv").display(),
    );
    let config = write_config(dir.path(), addr, &extra);
    // A one-second request timeout, so a stalled request shows it.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "shutdown_deadline_secs = 5\n",
        "shutdown_deadline_secs = 5\nrequest_timeout_secs = 1\n",
    );
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("stderr.log");
    let d = daemon_logging_to(&config, addr, &log);

    // Public: resident pages, their assets, the console, the webhook — each with the same security headers.
    for (path, want) in [
        ("/shelters", 200),
        ("/assets/shelters.js", 200),
        ("/assets/leaflet/leaflet.js", 200),
        ("/services", 200),
        ("/assets/services.css", 200),
        ("/console/login", 200),
        ("/plows", 200), // plows are not enabled here: a page that says so
        ("/plows/assets/plows.css", 200),
    ] {
        let (code, headers, body) = get(d.addr, path);
        assert_eq!(code, want, "{path}");
        if header(&headers, "content-type").is_some_and(|t| t.starts_with("text/html")) {
            // What the CSP would block: inline scripts, style elements and style attributes.
            let inline_script = body
                .match_indices("<script")
                .any(|(i, _)| !body[i..].split('>').next().unwrap_or("").contains("src="));
            assert!(
                !inline_script && !body.contains("<style") && !body.contains(" style=\""),
                "{path} has inline code the CSP blocks:\n{body}"
            );
        }
        let csp = header(&headers, "content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(header(&headers, "x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            header(&headers, "referrer-policy"),
            Some("same-origin"),
            "{path}"
        );
        assert_eq!(
            header(&headers, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    let (code, headers, _) = http(
        d.addr,
        &format!("POST /webhook HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
    );
    assert_eq!(code, 401, "no signature");
    assert_eq!(header(&headers, "x-frame-options"), Some("DENY"));
    // Staff endpoints are not on the public listener…
    for path in ["/healthz", "/metrics", "/api/status"] {
        assert_eq!(get(d.addr, path).0, 404, "{path} on the public listener");
    }
    // …but on the admin listener, which serves nothing else.
    let (code, _, body) = get(d.admin, "/healthz");
    assert_eq!(code, 200);
    assert!(body.contains("\"components\""), "{body}");
    let (code, _, body) = get(d.admin, "/metrics");
    assert_eq!(code, 200);
    assert!(body.contains("sonae_uptime_seconds"), "{body}");
    assert_eq!(get(d.admin, "/console/login").0, 404);
    assert_eq!(get(d.admin, "/shelters").0, 404);

    // A request that stalls (a body announced and never sent) is answered 408 after request_timeout_secs.
    let started = Instant::now();
    let (code, _, _) = http(
        d.addr,
        &format!("POST /webhook HTTP/1.1\r\nHost: {addr}\r\nX-Line-Signature: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{"),
    );
    assert_eq!(code, 408);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // The access log: one line per request, with method, path and status, without colour codes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("status=408") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
    let access: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("sonae::access"))
        .collect();
    assert!(
        access.iter().any(|l| l.contains("method=GET")
            && l.contains("path=/console/login")
            && l.contains("status=200")),
        "{text}"
    );
    assert!(
        access
            .iter()
            .any(|l| l.contains("path=/webhook") && l.contains("status=408")),
        "{text}"
    );
}

#[test]
fn user_list_refuses_an_older_database_without_migrating_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "127.0.0.1:1".parse().unwrap(), "");
    let db = dir.path().join("sonae.db");
    // The database of the release before the newest migration: every migration but the last, applied the way
    // the store applies them.
    let mut c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = WAL; CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .unwrap();
    let migrations = sonae::store::MIGRATIONS;
    for (version, name, sql) in &migrations[..migrations.len() - 1] {
        let tx = c.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.execute(
            "INSERT INTO schema_version VALUES (?1, ?2, 'test')",
            rusqlite::params![version, name],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    drop(c);
    let versions = || rusqlite_count(&db, "SELECT count(*) FROM schema_version");
    let before = versions();
    let out = Command::new(SONAE)
        .args(["user", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("1 migration(s) of this sonae not applied"),
        "{err}"
    );
    assert_eq!(versions(), before, "user list changed the schema");
    let (code, _, err) = check(&config);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("1 migration(s) to apply"), "{err}");
    assert_eq!(versions(), before, "check changed the schema");

    let out = Command::new(SONAE)
        .args(["db", "migrate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied 1 migration(s)"));
    assert_eq!(versions(), before + 1);
    let out = Command::new(SONAE)
        .args(["user", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `SELECT count(*) …` on a read-only connection: no schema check, no migration.
fn rusqlite_count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// Reads `sd_notify` datagrams from `sock` until one satisfies `pred`.
fn notify_until(
    sock: &std::os::unix::net::UnixDatagram,
    within: Duration,
    pred: impl Fn(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = pred(&msg);
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
    panic!("no matching notification within {within:?}; got {seen:?}");
}

#[test]
fn systemctl_status_shows_the_mode_and_the_feed_health() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // A feed nobody answers: its first poll fails, which the status shows as a failed fetch.
    let config = write_config(
        dir.path(),
        addr,
        "\n[jma]\nfeeds = [\"http://127.0.0.1:9/developer/xml/feed/extra.xml\"]\ncatch_up_from_long_feeds = false\n",
    );
    let child = Command::new(SONAE)
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "off")
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let d = Daemon {
        child,
        addr,
        admin: admin_of(&config),
    };
    let seen = notify_until(&sock, Duration::from_secs(30), |m| {
        m.starts_with("STATUS=") && m.contains("直近の取得に失敗")
    });
    assert!(seen.iter().any(|m| m == "READY=1"), "{seen:?}");
    let status = seen.last().unwrap();
    assert!(
        status.starts_with("STATUS=平常時 ・ 気象庁フィード 1/1 正常（extra.xml: 直近の取得に失敗"),
        "{status}"
    );
    assert!(
        status.contains(
            "要確認: disaster（低下: 地区・避難所データを使わない設定（place.enabled = false）"
        ),
        "{status}"
    );
    d.signal("TERM");
    let seen = notify_until(&sock, Duration::from_secs(10), |m| m == "STOPPING=1");
    assert_eq!(seen.last().unwrap(), "STOPPING=1");
}

/// Parses journald's native protocol: `KEY=value\n`, or `KEY\n` + little-endian u64 length + value + `\n`.
fn journal_fields(datagram: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
            break;
        };
        let line = &rest[..nl];
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            out.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            rest = &rest[nl + 1..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let len = u64::from_le_bytes(rest[nl + 1..nl + 9].try_into().unwrap()) as usize;
            let value = &rest[nl + 9..nl + 9 + len];
            out.push((key, String::from_utf8_lossy(value).into_owned()));
            rest = &rest[nl + 9 + len + 1..];
        }
    }
    out
}

#[test]
fn under_systemd_the_log_goes_to_the_journal_with_priorities_fields_and_the_whole_error_chain() {
    // systemd sets JOURNAL_STREAM to stderr's device:inode when the service's output is the journal. The
    // daemon then writes to /run/systemd/journal/socket; here a user and mount namespace (unshare) puts this
    // test's socket at that path, so the daemon runs exactly as under systemd.
    use std::os::unix::fs::MetadataExt as _;
    let probe = Command::new("unshare").args(["-rm", "true"]).status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "this test needs unprivileged user namespaces (`unshare -rm true`)"
    );
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("journal.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir.path(),
        addr,
        "\n[jma]\nfeeds = [\"http://127.0.0.1:9/developer/xml/feed/extra.xml\"]\ncatch_up_from_long_feeds = false\n",
    );
    let stderr_path = dir.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    let child = Command::new("unshare")
        .args(["-rm", "sh", "-c"])
        .arg(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && \
             touch /run/systemd/journal/socket && mount --bind \"$1\" /run/systemd/journal/socket && \
             exec \"$2\" run --config \"$3\"",
        )
        .arg("sh")
        .arg(&sock_path)
        .arg(SONAE)
        .arg(&config)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let d = Daemon {
        child,
        addr,
        admin: admin_of(&config),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = vec![0u8; 1 << 20];
    let mut events: Vec<Vec<(String, String)>> = Vec::new();
    let find = |events: &[Vec<(String, String)>], message: &str| {
        events
            .iter()
            .find(|e| e.iter().any(|(k, v)| k == "MESSAGE" && v == message))
            .cloned()
    };
    while find(&events, "feed poll failed").is_none() {
        assert!(
            Instant::now() < deadline,
            "no \"feed poll failed\" in the journal; got {events:?}\nstderr: {}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        if let Ok(n) = sock.recv(&mut buf) {
            events.push(journal_fields(&buf[..n]));
        }
    }
    let field = |e: &[(String, String)], k: &str| {
        e.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let failed = find(&events, "feed poll failed").unwrap();
    assert_eq!(
        field(&failed, "PRIORITY"),
        "4",
        "warn = warning: {failed:?}"
    );
    assert_eq!(field(&failed, "SYSLOG_IDENTIFIER"), "sonae");
    assert_eq!(field(&failed, "TARGET"), "sonae::jma::feed");
    assert_eq!(field(&failed, "F_FEED"), "extra.xml");
    let error = field(&failed, "F_ERROR");
    assert!(
        error.contains("error sending request") && error.contains("Connection refused"),
        "the error's cause is logged, not only its outer message: {error:?}"
    );
    // Start-up at info = notice (5).
    let wait = Instant::now() + Duration::from_secs(10);
    while find(&events, "sonae is running").is_none() && Instant::now() < wait {
        if let Ok(n) = sock.recv(&mut buf) {
            events.push(journal_fields(&buf[..n]));
        }
    }
    let running = find(&events, "sonae is running").expect("start-up line in the journal");
    assert_eq!(field(&running, "PRIORITY"), "5");
    assert_eq!(field(&running, "F_LISTEN"), addr.to_string());
    let text = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        !text.contains("feed poll failed"),
        "the journal gets the events, stderr does not repeat them:\n{text}"
    );
    drop(d);
}

#[test]
fn the_demo_prints_its_own_progress_and_not_the_embedded_brokers_log() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(SONAE)
        .args(["demo", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains("] mode: 平常時")) {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(l) => lines.push(l),
            Err(_) => assert!(
                Instant::now() < deadline && child.try_wait().unwrap().is_none(),
                "demo did not come up; stdout so far:\n{}\nstderr:\n{}",
                lines.join("\n"),
                std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
            ),
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let out = lines.join("\n");
    for step in [
        "Sonae demo: 札幌市",
        "loading 札幌市's districts and shelters",
        "districts,",
        "registering 3000 simulated residents",
        "Sonae demo is running",
        "console        : http://127.0.0.1:",
        "health, metrics: http://127.0.0.1:",
    ] {
        assert!(out.contains(step), "missing {step:?} in:\n{out}");
    }
    let err = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(
        !err.contains("rumqttd"),
        "broker log in the demo's output:\n{err}"
    );
    assert!(
        !err.contains(" INFO "),
        "INFO lines in the demo's output:\n{err}"
    );
}

#[test]
fn the_unit_starts_after_time_synchronisation_and_hands_over_only_the_line_credentials() {
    let unit = std::fs::read_to_string(repo("systemd/sonae.service")).unwrap();
    let values = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    for key in ["After", "Wants"] {
        assert!(
            values(key).iter().any(|v| v == "time-sync.target"),
            "{key}= lacks time-sync.target"
        );
    }
    let creds = values("LoadCredential");
    assert!(
        creds.iter().all(|c| !c.starts_with("session-key:")),
        "{creds:?}"
    );
    assert!(creds.iter().any(|c| c.starts_with("line-channel-secret:")));
}

/// `KEY=` command lines of a unit file, with systemd's `%%` and `$$` escapes undone and the installed paths
/// replaced by this test's.
fn unit_command(unit: &str, key: &str, paths: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(repo(&format!("systemd/{unit}"))).unwrap();
    let mut line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{unit} has no {key}="))
        .replace("%%", "%")
        .replace("$$", "$");
    for (from, to) in paths {
        line = line.replace(from, to);
    }
    line
}

#[test]
fn the_backup_unit_writes_a_dated_private_copy_and_prunes_copies_older_than_two_weeks() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "127.0.0.1:1".parse().unwrap(), "");
    migrate(&config);
    let backups = dir.path().join("sonae-backup");
    std::fs::create_dir(&backups).unwrap();
    let old = backups.join("sonae-20250101-031500.db");
    std::fs::write(&old, "old").unwrap();
    assert!(Command::new("touch")
        .args(["-d", "20 days ago"])
        .arg(&old)
        .status()
        .unwrap()
        .success());
    let paths = [
        ("/usr/local/bin/sonae", SONAE),
        ("/var/lib/sonae-backup", backups.to_str().unwrap()),
        ("/etc/sonae/sonae.toml", config.to_str().unwrap()),
    ];
    for key in ["ExecStart", "ExecStartPost"] {
        let line = unit_command("sonae-backup.service", key, &paths);
        let out = Command::new("sh")
            .args(["-c", &format!("umask 022 && {line}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{key}={line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let left: Vec<PathBuf> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let name = left[0].file_name().unwrap().to_str().unwrap().to_string();
    let today = chrono::Local::now().format("sonae-%Y%m%d-").to_string();
    assert!(name.starts_with(&today) && name.ends_with(".db"), "{name}");
    let mode = std::fs::metadata(&left[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let copy = sonae::store::Store::open_current(&left[0]).unwrap();
    copy.integrity_check().unwrap();
}
