//! Serves a recorded or constructed feed scenario (`feeds/<name>/`) over HTTP exactly like JMA's feeds, so the
//! demo and tests poll it with the real [`crate::jma::feed`] poller. Format: `feeds/README.md`.
//!
//! * `GET /developer/xml/feed/{feed}.xml` — the short feed: steps published in the last
//!   [`SHORT_WINDOW`] of replay time (JMA's short feeds cover at least 10 minutes).
//! * `GET /developer/xml/feed/{feed}_l.xml` — the long feed: every step published so far.
//! * `GET /developer/xml/data/{file}` — a telegram, once published (404 before, as on the real site).
//! * `Last-Modified` is the newest visible entry's time; `If-Modified-Since` is honoured (304).
//! * `GET /replay/status` — JSON: name, description, elapsed seconds, published/total steps.
//!
//! **Time.** Replay time `r` runs from 0 at [`ReplayServer::start`] (tokio time, pausable in tests; plus
//! [`ReplayServer::advance`]). Step `i` is published when `r ≥ (at_i − base_time) / speed`. Every timestamp
//! inside a telegram (Control/DateTime, ReportDateTime, TargetDateTime, …) is mapped with the same rule,
//! `t ↦ start_wall + (t − base_time) / speed`, and written back in its original offset, so a scenario recorded
//! on any day happens "now" and its ReportDateTime equals the moment it appears in the feed.

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
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;

/// How much replay time a short feed covers.
pub const SHORT_WINDOW: Duration = Duration::from_secs(600);

/// `scenario.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    /// Shown in `/replay/status`; says whether the scenario is constructed.
    pub description: String,
    /// Scenario time that maps to the moment the replay starts.
    pub base_time: DateTime<FixedOffset>,
    #[serde(rename = "step")]
    pub steps: Vec<StepSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// When the telegram appears in the feed (scenario time).
    pub at: DateTime<FixedOffset>,
    /// Feed name: `regular`, `extra`, `eqvol` or `other`.
    pub feed: String,
    /// Telegram file, relative to the scenario directory.
    pub file: String,
    /// Entry `<title>` (= the telegram's Control/Title).
    pub title: String,
    /// Entry `<author><name>`; default: the telegram's PublishingOffice.
    #[serde(default)]
    pub author: Option<String>,
}

/// One loaded step.
#[derive(Clone, Debug)]
pub struct Step {
    pub spec: StepSpec,
    /// File name used in the telegram URL.
    pub file_name: String,
    /// Scenario offset from `base_time`.
    pub offset: chrono::Duration,
    pub author: String,
    pub body: String,
}

/// A loaded scenario, steps sorted by time.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub spec: ScenarioFile,
    pub steps: Vec<Step>,
}

const FEEDS: &[&str] = &["regular", "extra", "eqvol", "other"];

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let a = s.find(open)? + open.len();
    let b = s[a..].find(close)? + a;
    Some(&s[a..b])
}

impl Scenario {
    /// Loads `dir/scenario.toml` and every telegram it names. Errors name the step and the fix.
    pub fn load(dir: &Path) -> anyhow::Result<Scenario> {
        let path = dir.join("scenario.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let spec: ScenarioFile =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mut steps = Vec::new();
        let mut names = BTreeSet::new();
        for (i, e) in spec.steps.iter().enumerate() {
            if !FEEDS.contains(&e.feed.as_str()) {
                bail!(
                    "{}: step[{i}].feed = \"{}\"; use one of {FEEDS:?}",
                    path.display(),
                    e.feed
                );
            }
            if e.at < spec.base_time {
                bail!(
                    "{}: step[{i}].at {} is before base_time {}; move base_time earlier",
                    path.display(),
                    e.at,
                    spec.base_time
                );
            }
            let file = dir.join(&e.file);
            let body = std::fs::read_to_string(&file).with_context(|| {
                format!(
                    "{}: step[{i}].file {} (UTF-8 XML)",
                    path.display(),
                    file.display()
                )
            })?;
            let file_name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !names.insert(file_name.clone()) {
                bail!(
                    "{}: step[{i}].file name {file_name} is used twice; telegram URLs must be unique",
                    path.display()
                );
            }
            let author = e
                .author
                .clone()
                .or_else(|| {
                    between(&body, "<PublishingOffice>", "</PublishingOffice>").map(str::to_string)
                })
                .unwrap_or_default();
            steps.push(Step {
                spec: e.clone(),
                file_name,
                offset: e.at - spec.base_time,
                author,
                body,
            });
        }
        steps.sort_by_key(|s| s.offset);
        Ok(Scenario { spec, steps })
    }
}

/// Maps scenario time to wall time: `start + (t − base) / speed`.
#[derive(Clone, Copy, Debug)]
pub struct TimeMap {
    pub base: DateTime<FixedOffset>,
    pub start: DateTime<Utc>,
    pub speed: f64,
}

impl TimeMap {
    pub fn map(&self, t: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        let since = (t - self.base).num_milliseconds() as f64 / self.speed;
        let wall = self.start + chrono::Duration::milliseconds(since.round() as i64);
        wall.with_timezone(t.offset())
    }

    /// Replay time at which a step with this scenario offset is published.
    pub fn due(&self, offset: chrono::Duration) -> Duration {
        Duration::from_millis((offset.num_milliseconds().max(0) as f64 / self.speed) as u64)
    }
}

/// Rewrites every `YYYY-MM-DDThh:mm:ss(Z|±hh:mm)` in `xml` with `map`, keeping each value's offset style.
pub fn shift_times(xml: &str, map: &TimeMap) -> String {
    let b = xml.as_bytes();
    let mut out = String::with_capacity(xml.len());
    let mut last = 0;
    let mut i = 0;
    let digit = |j: usize| b.get(j).is_some_and(|c| c.is_ascii_digit());
    while i + 19 < b.len() {
        let shape = (0..4).all(|k| digit(i + k))
            && b[i + 4] == b'-'
            && digit(i + 5)
            && digit(i + 6)
            && b[i + 7] == b'-'
            && digit(i + 8)
            && digit(i + 9)
            && b[i + 10] == b'T'
            && digit(i + 11)
            && digit(i + 12)
            && b[i + 13] == b':'
            && digit(i + 14)
            && digit(i + 15)
            && b[i + 16] == b':'
            && digit(i + 17)
            && digit(i + 18)
            && (i == 0 || !b[i - 1].is_ascii_digit());
        if !shape {
            i += 1;
            continue;
        }
        let (len, zulu) = match b.get(i + 19) {
            Some(b'Z') => (20, true),
            Some(b'+') | Some(b'-') if i + 25 <= b.len() && b[i + 22] == b':' => (25, false),
            _ => {
                i += 1;
                continue;
            }
        };
        let text = &xml[i..i + len];
        match DateTime::parse_from_rfc3339(text) {
            Ok(t) => {
                out.push_str(&xml[last..i]);
                let m = map.map(t);
                if zulu {
                    out.push_str(
                        &m.with_timezone(&Utc)
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    );
                } else {
                    out.push_str(&m.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
                }
                last = i + len;
                i += len;
            }
            Err(_) => i += 1,
        }
    }
    out.push_str(&xml[last..]);
    out
}

impl Scenario {
    /// The Atom document of `feed` at replay time `now` (pure).
    pub fn feed_xml(
        &self,
        base_url: &str,
        feed: &str,
        long: bool,
        now: Duration,
        map: &TimeMap,
    ) -> String {
        let visible: Vec<&Step> = self
            .steps
            .iter()
            .filter(|s| s.spec.feed == feed && map.due(s.offset) <= now)
            .filter(|s| long || map.due(s.offset) + SHORT_WINDOW >= now)
            .collect();
        let name = if long {
            format!("{feed}_l.xml")
        } else {
            format!("{feed}.xml")
        };
        let wall_now = map.start + chrono::Duration::milliseconds(now.as_millis() as i64);
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" lang=\"ja\">\n  \
             <title>{}（{}）</title>\n  <subtitle>JMAXML publishing feed</subtitle>\n  <updated>{}</updated>\n  \
             <id>{base_url}/developer/xml/feed/{name}#{}_{}</id>\n  \
             <link rel=\"self\" href=\"{base_url}/developer/xml/feed/{name}\"/>\n",
            if long { "長期" } else { "高頻度" },
            match feed {
                "regular" => "定時",
                "extra" => "随時",
                "eqvol" => "地震火山",
                _ => "その他",
            },
            wall_now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            if long { "long" } else { "short" },
            wall_now.timestamp(),
        );
        // Newest first, as JMA lists them.
        for s in visible.iter().rev() {
            let url = format!("{base_url}/developer/xml/data/{}", s.file_name);
            xml.push_str(&format!(
                "  <entry>\n    <title>{}</title>\n    <id>{url}</id>\n    <updated>{}</updated>\n    \
                 <author><name>{}</name></author>\n    <link type=\"application/xml\" href=\"{url}\"/>\n    \
                 <content type=\"text\"></content>\n  </entry>\n",
                xml_escape(&s.spec.title),
                map.map(s.spec.at)
                    .with_timezone(&Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                xml_escape(&s.author),
            ));
        }
        xml.push_str("</feed>\n");
        xml
    }

    /// Wall time of the newest entry of `feed` visible at `now`.
    fn last_modified(&self, feed: &str, now: Duration, map: &TimeMap) -> DateTime<Utc> {
        self.steps
            .iter()
            .filter(|s| s.spec.feed == feed && map.due(s.offset) <= now)
            .map(|s| map.map(s.spec.at).with_timezone(&Utc))
            .max()
            .unwrap_or(map.start)
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
    base_url: String,
    map: TimeMap,
    started: tokio::time::Instant,
    extra: Mutex<Duration>,
}

impl Inner {
    fn now(&self) -> Duration {
        self.started.elapsed() + *self.extra.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running replay server.
#[derive(Clone)]
pub struct ReplayServer {
    inner: Arc<Inner>,
    pub addr: std::net::SocketAddr,
}

impl ReplayServer {
    /// Binds `listen` (port 0 for any) and serves `scenario` until `shutdown`. `speed` > 1 compresses the
    /// scenario (60: one scenario hour per minute); `start` is the wall time replay time 0 maps to.
    pub async fn start(
        scenario: Scenario,
        listen: std::net::SocketAddr,
        speed: f64,
        start: DateTime<Utc>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<ReplayServer> {
        if !(speed.is_finite() && speed > 0.0) {
            bail!("replay speed {speed} must be a positive number");
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            map: TimeMap {
                base: scenario.spec.base_time,
                start,
                speed,
            },
            scenario,
            base_url: format!("http://{addr}"),
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
        format!("{}/developer/xml/feed/{feed}.xml", self.inner.base_url)
    }

    /// Moves replay time forward (tests, "skip ahead" in the demo).
    pub fn advance(&self, by: Duration) {
        *self.inner.extra.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    /// Replay time elapsed.
    pub fn now(&self) -> Duration {
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
    let lm = inner.scenario.last_modified(feed, now, &inner.map);
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
    let xml = inner
        .scenario
        .feed_xml(&inner.base_url, feed, long, now, &inner.map);
    (
        [
            (
                header::CONTENT_TYPE,
                "application/atom+xml; charset=utf-8".to_string(),
            ),
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
        .steps
        .iter()
        .find(|s| s.file_name == name && inner.map.due(s.offset) <= now)
    {
        Some(s) => (
            [(header::CONTENT_TYPE, "application/xml")],
            shift_times(&s.body, &inner.map),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn status(State(inner): State<Arc<Inner>>) -> Json<serde_json::Value> {
    let now = inner.now();
    let published = inner
        .scenario
        .steps
        .iter()
        .filter(|s| inner.map.due(s.offset) <= now)
        .count();
    Json(serde_json::json!({
        "name": inner.scenario.spec.name,
        "description": inner.scenario.spec.description,
        "elapsed_secs": now.as_secs(),
        "published": published,
        "total": inner.scenario.steps.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(speed: f64) -> TimeMap {
        TimeMap {
            base: DateTime::parse_from_rfc3339("2026-09-12T06:00:00+09:00").unwrap(),
            start: DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            speed,
        }
    }

    #[test]
    fn timestamps_are_moved_to_now_keeping_their_offset_style() {
        let xml = "<DateTime>2026-09-11T21:00:01Z</DateTime><ReportDateTime>2026-09-12T08:30:00+09:00</ReportDateTime>\
                   <Serial>20260912</Serial><Text>2026-09-12T06:00:00+09:00</Text>";
        let out = shift_times(xml, &map(1.0));
        assert_eq!(
            out,
            "<DateTime>2026-11-22T10:00:01Z</DateTime><ReportDateTime>2026-11-22T21:30:00+09:00</ReportDateTime>\
             <Serial>20260912</Serial><Text>2026-11-22T19:00:00+09:00</Text>"
        );
        // Speed 60: 2.5 scenario hours after base → 2.5 minutes after start.
        let out = shift_times("<R>2026-09-12T08:30:00+09:00</R>", &map(60.0));
        assert_eq!(out, "<R>2026-11-22T19:02:30+09:00</R>");
        assert_eq!(
            map(60.0).due(chrono::Duration::hours(2)),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn the_demo_scenario_loads_and_its_short_feed_shows_only_the_last_ten_minutes() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/feeds/demo-heavy-rain");
        let sc = Scenario::load(Path::new(dir)).unwrap();
        assert_eq!(sc.steps.len(), 9);
        assert_eq!(sc.steps[0].author, "札幌管区気象台");
        let m = map(60.0);
        // Step 2 (08:30) is due 150 s into the replay; step 3 (10:10) at 250 s.
        let at = |s: u64| Duration::from_secs(s);
        let short = sc.feed_xml("http://h", "extra", false, at(260), &m);
        let feed = crate::jma::atom::parse(short.as_bytes()).unwrap();
        assert_eq!(
            feed.entries
                .iter()
                .map(|e| e.url().rsplit('/').next().unwrap().to_string())
                .collect::<Vec<_>>(),
            vec!["03_VPWW56.xml", "02_VPWW55.xml", "01_VPWW55.xml"]
        );
        // Due times at speed 60: 0, 150, 250, 340, 500, 600, 690, 840, 840 s. At 1,400 s only the two
        // 20:00 telegrams are within the short window; the long feed has all nine, newest first.
        let later = sc.feed_xml("http://h", "extra", false, at(1400), &m);
        let later = crate::jma::atom::parse(later.as_bytes()).unwrap();
        assert_eq!(later.entries.len(), 2);
        let long = sc.feed_xml("http://h", "extra", true, at(1400), &m);
        let long = crate::jma::atom::parse(long.as_bytes()).unwrap();
        assert_eq!(long.entries.len(), 9);
        assert_eq!(
            long.entries[8].updated.unwrap(),
            DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").unwrap()
        );
        assert_eq!(
            long.entries[6].updated.unwrap(),
            DateTime::parse_from_rfc3339("2026-11-22T10:04:10Z").unwrap()
        );
    }
}
