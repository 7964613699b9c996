//! Serves a recorded or constructed feed scenario (`feeds/<name>/`) over HTTP exactly like JMA's feeds, so the
//! demo and tests poll it with the real [`crate::jma::feed`] poller. Format: `feeds/README.md`.
//!
//! * `GET /developer/xml/feed/{feed}.xml` — the short feed: entries published in the last
//!   `short_window_secs` (default 600, like JMA's ≥ 10 minutes).
//! * `GET /developer/xml/feed/{feed}_l.xml` — the long feed: every entry published so far.
//! * `GET /developer/xml/data/{file}` — a telegram, once it is published (404 before, as on the real site).
//! * `Last-Modified` is the newest visible entry's time and `If-Modified-Since` is honoured (304).
//! * `GET /replay/status` — JSON: scenario title, elapsed scenario seconds, published/total entries.
//!
//! Scenario time runs at `speed` × tokio time from [`ReplayServer::start`] (pausable in tests), plus whatever
//! [`ReplayServer::advance`] adds.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// `scenario.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub title: String,
    /// Where the telegrams come from and whether they are constructed (shown in `/replay/status`).
    pub note: String,
    /// Wall-clock time of scenario second 0 (RFC 3339). Entry `<updated>` = start + `at_secs`.
    pub start: DateTime<Utc>,
    #[serde(default = "default_window")]
    pub short_window_secs: u64,
    #[serde(rename = "entry")]
    pub entries: Vec<EntrySpec>,
}

fn default_window() -> u64 {
    600
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntrySpec {
    /// Seconds after the scenario start when the entry appears.
    pub at_secs: u64,
    /// Feed name: `regular`, `extra`, `eqvol` or `other`.
    pub feed: String,
    /// Telegram file, relative to the scenario directory.
    pub file: String,
    /// Entry `<title>` (= the telegram's Control/Title).
    pub title: String,
    /// Entry `<author><name>` (= the publishing office).
    pub author: String,
    /// Entry `<content>` (optional headline).
    #[serde(default)]
    pub content: String,
}

/// A loaded scenario: entries sorted by time, telegram bytes in memory.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub spec: ScenarioFile,
    /// (spec, URL file name, body), sorted by `at_secs`.
    pub entries: Vec<(EntrySpec, String, bytes::Bytes)>,
}

const FEEDS: &[&str] = &["regular", "extra", "eqvol", "other"];

impl Scenario {
    /// Loads `dir/scenario.toml` and every telegram it names. Errors name the entry and the fix.
    pub fn load(dir: &Path) -> anyhow::Result<Scenario> {
        let path = dir.join("scenario.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let spec: ScenarioFile =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mut entries = Vec::new();
        let mut names = BTreeSet::new();
        for (i, e) in spec.entries.iter().enumerate() {
            if !FEEDS.contains(&e.feed.as_str()) {
                bail!(
                    "{}: entry[{i}].feed = \"{}\"; use one of {FEEDS:?}",
                    path.display(),
                    e.feed
                );
            }
            let file = dir.join(&e.file);
            let body = std::fs::read(&file).with_context(|| {
                format!("{}: entry[{i}].file {}", path.display(), file.display())
            })?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !names.insert(name.clone()) {
                bail!(
                    "{}: entry[{i}].file name {name} is used twice; telegram URLs must be unique",
                    path.display()
                );
            }
            entries.push((e.clone(), name, bytes::Bytes::from(body)));
        }
        entries.sort_by_key(|(e, _, _)| e.at_secs);
        Ok(Scenario { spec, entries })
    }

    /// The Atom document of `feed` at scenario second `now` (pure).
    pub fn feed_xml(&self, base: &str, feed: &str, long: bool, now: u64) -> String {
        let window = self.spec.short_window_secs;
        let visible: Vec<&(EntrySpec, String, bytes::Bytes)> = self
            .entries
            .iter()
            .filter(|(e, _, _)| e.feed == feed && e.at_secs <= now)
            .filter(|(e, _, _)| long || e.at_secs + window >= now)
            .collect();
        let at = |s: u64| {
            (self.spec.start + chrono::Duration::seconds(s as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let name = if long {
            format!("{feed}_l.xml")
        } else {
            format!("{feed}.xml")
        };
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" lang=\"ja\">\n  \
             <title>{}（{}）</title>\n  <subtitle>JMAXML publishing feed</subtitle>\n  <updated>{}</updated>\n  \
             <id>{base}/developer/xml/feed/{name}#{}_{now}</id>\n  \
             <link rel=\"self\" href=\"{base}/developer/xml/feed/{name}\"/>\n",
            if long { "長期" } else { "高頻度" },
            match feed {
                "regular" => "定時",
                "extra" => "随時",
                "eqvol" => "地震火山",
                _ => "その他",
            },
            at(now),
            if long { "long" } else { "short" },
        );
        // Newest first, as JMA lists them.
        for (e, file, _) in visible.iter().rev() {
            let url = format!("{base}/developer/xml/data/{file}");
            xml.push_str(&format!(
                "  <entry>\n    <title>{}</title>\n    <id>{url}</id>\n    <updated>{}</updated>\n    \
                 <author><name>{}</name></author>\n    <link type=\"application/xml\" href=\"{url}\"/>\n    \
                 <content type=\"text\">{}</content>\n  </entry>\n",
                xml_escape(&e.title),
                at(e.at_secs),
                xml_escape(&e.author),
                xml_escape(&e.content)
            ));
        }
        xml.push_str("</feed>\n");
        xml
    }

    /// Time of the newest entry of `feed` visible at `now`.
    fn last_modified(&self, feed: &str, now: u64) -> DateTime<Utc> {
        let s = self
            .entries
            .iter()
            .filter(|(e, _, _)| e.feed == feed && e.at_secs <= now)
            .map(|(e, _, _)| e.at_secs)
            .max()
            .unwrap_or(0);
        self.spec.start + chrono::Duration::seconds(s as i64)
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Inner {
    scenario: Scenario,
    base: String,
    speed: f64,
    started: tokio::time::Instant,
    extra: Mutex<Duration>,
}

impl Inner {
    fn now(&self) -> u64 {
        let run = self.started.elapsed().mul_f64(self.speed);
        let extra = *self.extra.lock().unwrap_or_else(|p| p.into_inner());
        (run + extra).as_secs()
    }
}

/// A running replay server.
#[derive(Clone)]
pub struct ReplayServer {
    inner: Arc<Inner>,
    pub addr: std::net::SocketAddr,
}

impl ReplayServer {
    /// Binds `listen` (port 0 for any) and serves `scenario` until `shutdown`.
    pub async fn start(
        scenario: Scenario,
        listen: std::net::SocketAddr,
        speed: f64,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<ReplayServer> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            scenario,
            base: format!("http://{addr}"),
            speed,
            started: tokio::time::Instant::now(),
            extra: Mutex::new(Duration::ZERO),
        });
        let app = Router::new()
            .route("/developer/xml/feed/{name}", get(feed))
            .route("/developer/xml/data/{name}", get(data))
            .route("/replay/status", get(status))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
        });
        Ok(ReplayServer { inner, addr })
    }

    /// The feed URL to put in `[jma] feeds`, e.g. `feed_url("extra")`.
    pub fn feed_url(&self, feed: &str) -> String {
        format!("{}/developer/xml/feed/{feed}.xml", self.inner.base)
    }

    /// Moves scenario time forward (tests, "skip ahead" in the demo).
    pub fn advance(&self, by: Duration) {
        *self.inner.extra.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    /// Scenario seconds elapsed.
    pub fn now_secs(&self) -> u64 {
        self.inner.now()
    }
}

async fn feed(
    State(inner): State<Arc<Inner>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let Some(stem) = name.strip_suffix(".xml") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (feed, long) = match stem.strip_suffix("_l") {
        Some(f) => (f, true),
        None => (stem, false),
    };
    if !FEEDS.contains(&feed) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let now = inner.now();
    let lm = inner.scenario.last_modified(feed, now);
    let lm_text = lm.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Some(ims) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
    {
        if lm <= ims.with_timezone(&Utc) {
            return StatusCode::NOT_MODIFIED.into_response();
        }
    }
    let xml = inner.scenario.feed_xml(&inner.base, feed, long, now);
    (
        [
            (header::CONTENT_TYPE, "application/atom+xml; charset=utf-8".to_string()),
            (header::LAST_MODIFIED, lm_text),
            (header::CACHE_CONTROL, "max-age=60".to_string()),
        ],
        xml,
    )
        .into_response()
}

async fn data(State(inner): State<Arc<Inner>>, UrlPath(name): UrlPath<String>) -> Response {
    let now = inner.now();
    match inner
        .scenario
        .entries
        .iter()
        .find(|(e, file, _)| *file == name && e.at_secs <= now)
    {
        Some((_, _, body)) => (
            [(header::CONTENT_TYPE, "application/xml")],
            body.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn status(State(inner): State<Arc<Inner>>) -> Json<serde_json::Value> {
    let now = inner.now();
    let published = inner
        .scenario
        .entries
        .iter()
        .filter(|(e, _, _)| e.at_secs <= now)
        .count();
    Json(serde_json::json!({
        "title": inner.scenario.spec.title,
        "note": inner.scenario.spec.note,
        "elapsed_secs": now,
        "published": published,
        "total": inner.scenario.entries.len(),
    }))
}
