//! JMA Atom feed poller: conditional GET, long-feed catch-up, download-once, archive-before-parse.
//!
//! # Design constraints
//! * **A telegram URL is downloaded once, ever.** Every entry URL is recorded in `jma_entries` (primary key)
//!   the first time any feed lists it; only `pending` entries are downloaded, and the archive row and the
//!   entry's `fetched` state commit in one transaction. This survives restarts and covers the same entry in the
//!   short feed, the `_l` feed and another feed. JMA blocks clients that re-download (research notes §1).
//! * **Nothing listed is lost.** A failed download leaves the entry `pending`; it is retried at the next
//!   cycle even after it has scrolled out of the feed, up to `jma.max_fetch_attempts`, then it becomes
//!   `failed` and an operator-visible problem.
//! * **Catch-up.** The short feeds list about 10 minutes. At start (no previous success), after a gap longer
//!   than `jma.short_feed_window_secs` since the last successful poll, or when the short feed's oldest entry is
//!   newer than that poll (entries may have scrolled out), the long twin (`x.xml` → `x_l.xml`) is read too. A
//!   failed catch-up is retried every cycle until it succeeds.
//! * **Politeness**: `If-Modified-Since` / `If-None-Match` from the last 200, a per-request timeout, at most
//!   `jma.max_concurrent_fetches` downloads at once over all feeds, and exponential backoff with full jitter
//!   after a failed poll ([`backoff_delay`]).
//! * **Health**: per feed URL, `jma_feeds` stores last success, last error, consecutive failures and documents
//!   fetched; `/metrics` and `/healthz` show them. A feed with no successful poll for
//!   `jma.silent_feed_alarm_secs` is `Degraded` and recorded once as a problem until it recovers.
//! * Time is an input: wall-clock decisions go through [`Clock`]; sleeping uses tokio time (pausable in tests).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rusqlite::{params, OptionalExtension};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::atom::{self, AtomError};
pub use super::pipeline::ParseFn;
use super::pipeline::Pipeline;
use super::JmaConfig;
use crate::health::{Health, Status};
use crate::metrics::Metrics;
use crate::store::Store;

/// Wall-clock time, injected.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The wait after `failures` failed polls: [`crate::backoff`] (full jitter, `base · 2^(failures-1)` capped at
/// `max`), at least one second. `unit` is a uniform random number in `[0, 1)`. With the defaults (5 s, 600 s):
/// ≤ 5 s, ≤ 10 s, ≤ 20 s, … capped at 10 minutes after 8 failures.
pub fn backoff_delay(failures: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    crate::backoff::at(failures, base, max, unit)
        .max(Duration::from_secs(1))
        .min(max.max(Duration::from_secs(1)))
}

/// Why a feed poll failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("request timed out")]
    Timeout,
    #[error("request failed: {0}")]
    Http(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("feed is not usable: {0}")]
    Atom(#[from] AtomError),
    #[error("database: {0:#}")]
    Store(#[from] anyhow::Error),
}

impl FeedError {
    fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            FeedError::Timeout
        } else {
            // The whole chain: reqwest's own message ("error sending request") says why only in its sources.
            FeedError::Http(crate::telemetry::chain(&e.without_url()))
        }
    }

    /// Short label for metrics.
    fn label(&self) -> &'static str {
        match self {
            FeedError::Timeout => "timeout",
            FeedError::Http(_) => "http",
            FeedError::Status(_) => "status",
            FeedError::Atom(_) => "malformed",
            FeedError::Store(_) => "store",
        }
    }
}

/// The result of polling one feed URL.
#[derive(Debug, PartialEq, Eq)]
pub enum Poll {
    /// 304 Not Modified.
    Unchanged,
    /// 200 with a complete feed.
    Fetched {
        entries: usize,
        new_entries: usize,
        oldest_entry: Option<DateTime<Utc>>,
    },
}

/// The result of one cycle of a short feed (short poll, maybe a catch-up, downloads).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub short_ok: bool,
    pub caught_up: bool,
    pub downloaded: usize,
    pub download_failures: usize,
}

/// Persisted per-URL feed state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedHealth {
    pub last_poll_at: Option<String>,
    pub last_success_at: Option<String>,
    pub last_error_at: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub documents_fetched: u64,
    pub last_modified: Option<String>,
    pub etag: Option<String>,
}

pub fn feed_health(store: &Store, url: &str) -> anyhow::Result<FeedHealth> {
    let url = url.to_string();
    store.read_blocking(move |c| {
        Ok(c.query_row(
            "SELECT last_poll_at, last_success_at, last_error_at, last_error, consecutive_failures,
                    documents_fetched, last_modified, etag FROM jma_feeds WHERE url = ?1",
            [url],
            |r| {
                Ok(FeedHealth {
                    last_poll_at: r.get(0)?,
                    last_success_at: r.get(1)?,
                    last_error_at: r.get(2)?,
                    last_error: r.get(3)?,
                    consecutive_failures: r.get(4)?,
                    documents_fetched: r.get::<_, i64>(5)? as u64,
                    last_modified: r.get(6)?,
                    etag: r.get(7)?,
                })
            },
        )
        .optional()?
        .unwrap_or_default())
    })
}

/// (url, title, updated, author, data type, wanted) of one feed entry, ready to insert.
type EntryRow = (String, String, Option<String>, String, Option<String>, bool);

/// Everything the poller needs, shared by the per-feed loops.
pub struct Poller {
    cfg: JmaConfig,
    store: Store,
    client: reqwest::Client,
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    clock: Arc<dyn Clock>,
    downloads: Arc<Semaphore>,
    /// Wall-clock start, for the silence alarm of a feed that never succeeded.
    started: DateTime<Utc>,
}

/// The label of a feed URL on `/metrics` and `/healthz`: its file name (bounded by the config).
pub fn feed_label(url: &str) -> String {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path).to_string()
}

impl Poller {
    pub fn new(
        cfg: JmaConfig,
        store: Store,
        pipeline: Arc<Pipeline>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Poller> {
        let timeout = Duration::from_secs(cfg.request_timeout_secs);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!(
                "sonae/",
                env!("CARGO_PKG_VERSION"),
                " (municipal disaster alerting)"
            ))
            .build()
            .context("building the HTTP client")?;
        let downloads = Arc::new(Semaphore::new(cfg.max_concurrent_fetches.max(1)));
        Ok(Poller {
            started: clock.now(),
            cfg,
            store,
            client,
            pipeline,
            metrics,
            health,
            clock,
            downloads,
        })
    }

    /// Runs one loop per configured feed until `shutdown`. Returns when every loop has stopped.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        // Documents archived before a crash (or while no parser was wired) are processed first.
        if let Err(e) = self.pipeline.drain().await {
            tracing::error!(error = %format!("{e:#}"), "processing archived JMA telegrams");
        }
        let mut loops = Vec::new();
        for url in self.cfg.feeds.clone() {
            let me = self.clone();
            let token = shutdown.clone();
            loops.push(tokio::spawn(async move { me.feed_loop(url, token).await }));
        }
        for l in loops {
            let _ = l.await;
        }
    }

    async fn feed_loop(&self, url: String, shutdown: CancellationToken) {
        let label = feed_label(&url);
        let mut catchup_pending = false;
        loop {
            let cycle = tokio::select! {
                // Cancel-safety: dropping a cycle mid-way is safe — every step is durable on its own (an
                // entry is recorded before it is downloaded; an archive row and the entry's `fetched` state
                // commit together), so the next start resumes where this one stopped.
                _ = shutdown.cancelled() => return,
                c = self.cycle(&url, &mut catchup_pending) => c,
            };
            let delay = if cycle.short_ok {
                Duration::from_secs(self.cfg.poll_interval_secs)
            } else {
                let failures = feed_health(&self.store, &url)
                    .map(|h| h.consecutive_failures)
                    .unwrap_or(1);
                backoff_delay(
                    failures.max(1),
                    Duration::from_secs(self.cfg.backoff_base_secs),
                    Duration::from_secs(self.cfg.backoff_max_secs),
                    rand::random::<f64>(),
                )
            };
            tracing::debug!(feed = %label, ?cycle, ?delay, "feed cycle done");
            tokio::select! {
                // Cancel-safety: sleeping holds nothing.
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One cycle of a short feed: poll it, catch up from its long twin when needed, download what is pending,
    /// process it, and update health. `catchup_pending` carries a failed catch-up to the next cycle.
    pub async fn cycle(&self, url: &str, catchup_pending: &mut bool) -> CycleReport {
        let mut report = CycleReport::default();
        let before = feed_health(&self.store, url).unwrap_or_default();
        let last_success = before
            .last_success_at
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc));
        let now = self.clock.now();
        let window = chrono::Duration::seconds(self.cfg.short_feed_window_secs as i64);
        let short = self.poll_url(url, url).await;
        report.short_ok = short.is_ok();
        let scrolled_out = match (&short, last_success) {
            (
                Ok(Poll::Fetched {
                    oldest_entry: Some(oldest),
                    ..
                }),
                Some(last),
            ) => *oldest > last,
            _ => false,
        };
        let gap = match last_success {
            None => true,
            Some(last) => now - last > window,
        };
        let long = atom::long_feed_url(url);
        if self.cfg.catch_up_from_long_feeds && long.is_some() && (gap || scrolled_out) {
            *catchup_pending = true;
        }
        if *catchup_pending {
            if let Some(long) = &long {
                tracing::info!(feed = %feed_label(url), gap, scrolled_out, "catching up from the long feed");
                match self.poll_url(long, url).await {
                    Ok(_) => {
                        *catchup_pending = false;
                        report.caught_up = true;
                        self.metrics.inc(
                            "sonae_jma_feed_catchups_total",
                            "Catch-ups from a long (_l) feed.",
                            &[("feed", &feed_label(url))],
                        );
                        let at = self.clock.now().to_rfc3339();
                        let u = url.to_string();
                        let _ = self
                            .store
                            .write(move |tx| {
                                tx.execute(
                                    "UPDATE jma_feeds SET last_catchup_at = ?2 WHERE url = ?1",
                                    params![u, at],
                                )?;
                                Ok(())
                            })
                            .await;
                    }
                    Err(e) => {
                        tracing::warn!(feed = %feed_label(long), error = %e, "catch-up failed; retrying next cycle");
                    }
                }
            }
        }
        let (ok, failed) = self.download_pending(url, long.as_deref()).await;
        report.downloaded = ok;
        report.download_failures = failed;
        if let Err(e) = self.pipeline.drain().await {
            tracing::error!(error = %format!("{e:#}"), "processing JMA telegrams");
        }
        self.check_silence(url).await;
        report
    }

    /// GETs one feed URL (conditional), records new entries owned by `owner` (the short feed), and updates
    /// the URL's health row and metrics.
    pub async fn poll_url(&self, url: &str, owner: &str) -> Result<Poll, FeedError> {
        let label = feed_label(url);
        let res = self.poll_url_inner(url, owner).await;
        let now = self.clock.now().to_rfc3339();
        let u = url.to_string();
        let (outcome, err_text) = match &res {
            Ok(Poll::Unchanged) => ("unchanged", None),
            Ok(Poll::Fetched { .. }) => ("ok", None),
            Err(e) => (e.label(), Some(e.to_string())),
        };
        let failures = self
            .store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO jma_feeds (url, last_poll_at) VALUES (?1, ?2)
                     ON CONFLICT (url) DO UPDATE SET last_poll_at = excluded.last_poll_at",
                    params![u, now],
                )?;
                match &err_text {
                    None => tx.execute(
                        "UPDATE jma_feeds SET last_success_at = ?2, consecutive_failures = 0 WHERE url = ?1",
                        params![u, now],
                    )?,
                    Some(e) => tx.execute(
                        "UPDATE jma_feeds SET last_error_at = ?2, last_error = ?3,
                           consecutive_failures = consecutive_failures + 1 WHERE url = ?1",
                        params![u, now, e],
                    )?,
                };
                Ok(tx.query_row(
                    "SELECT consecutive_failures FROM jma_feeds WHERE url = ?1",
                    [&u],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .await
            .unwrap_or(0);
        self.metrics.inc(
            "sonae_jma_feed_polls_total",
            "Feed polls by outcome (ok, unchanged, timeout, http, status, malformed, store).",
            &[("feed", &label), ("outcome", outcome)],
        );
        self.metrics.set(
            "sonae_jma_feed_consecutive_failures",
            "Failed polls in a row.",
            &[("feed", &label)],
            failures as f64,
        );
        match &res {
            Ok(_) => {
                self.metrics.set(
                    "sonae_jma_feed_last_success_timestamp_seconds",
                    "Unix time of the last successful poll.",
                    &[("feed", &label)],
                    self.clock.now().timestamp() as f64,
                );
            }
            Err(e) => {
                tracing::warn!(feed = %label, error = %e, failures, "feed poll failed");
                // A single failed poll is routine (CDN hiccup) and is retried within seconds; three in a row,
                // and every 30th after that, is worth an operator's look. Silence has its own alarm.
                if failures == 3 || (failures > 3 && failures % 30 == 0) {
                    self.store
                        .record_problem(
                            "jma.feed",
                            format!("気象庁フィード {label} を取得できませんでした（{failures} 回連続）: {e}"),
                            Some(url.to_string()),
                        )
                        .await;
                }
            }
        }
        res
    }

    async fn poll_url_inner(&self, url: &str, owner: &str) -> Result<Poll, FeedError> {
        let prev = feed_health(&self.store, url)?;
        let mut req = self.client.get(url);
        if let Some(lm) = &prev.last_modified {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
        if let Some(etag) = &prev.etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let resp = req.send().await.map_err(FeedError::from_reqwest)?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Poll::Unchanged);
        }
        if !status.is_success() {
            return Err(FeedError::Status(status.as_u16()));
        }
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let last_modified = header(reqwest::header::LAST_MODIFIED);
        let etag = header(reqwest::header::ETAG);
        let body = resp.bytes().await.map_err(FeedError::from_reqwest)?;
        let feed = atom::parse(&body)?;
        let oldest_entry = feed.oldest_entry().map(|d| d.with_timezone(&Utc));
        let entries = feed.entries.len();
        // Validators are stored only together with the entries of a complete feed, so a truncated or failed
        // download is fetched again in full next time.
        let rows: Vec<EntryRow> = feed
            .entries
            .iter()
            .map(|e| {
                let dt = atom::data_type_of_url(e.url());
                let wanted = self.cfg.wants(dt.as_deref());
                (
                    e.url().to_string(),
                    e.title.clone(),
                    e.updated.map(|d| d.with_timezone(&Utc).to_rfc3339()),
                    e.author.clone(),
                    dt,
                    wanted,
                )
            })
            .collect();
        let now = self.clock.now().to_rfc3339();
        let u = url.to_string();
        let owner = owner.to_string();
        let new_entries = self
            .store
            .write(move |tx| {
                let mut new = 0;
                for (eurl, title, updated, author, dt, wanted) in &rows {
                    new += tx.execute(
                        "INSERT OR IGNORE INTO jma_entries (url, feed_url, title, updated, author, data_type,
                           first_seen_at, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            eurl,
                            owner,
                            title,
                            updated,
                            author,
                            dt,
                            now,
                            if *wanted { "pending" } else { "skipped" }
                        ],
                    )?;
                }
                tx.execute(
                    "INSERT INTO jma_feeds (url) VALUES (?1) ON CONFLICT (url) DO NOTHING",
                    [&u],
                )?;
                tx.execute(
                    "UPDATE jma_feeds SET last_modified = ?2, etag = ?3,
                       last_change_at = CASE WHEN ?4 > 0 THEN ?5 ELSE last_change_at END WHERE url = ?1",
                    params![u, last_modified, etag, new as i64, now],
                )?;
                Ok(new)
            })
            .await?;
        Ok(Poll::Fetched {
            entries,
            new_entries,
            oldest_entry,
        })
    }

    /// Downloads every pending entry owned by this short feed (listed in it or its long twin), oldest first,
    /// at most `max_concurrent_fetches` at once over all feeds. Archives in entry order. Returns
    /// (downloaded, failed).
    async fn download_pending(&self, owner: &str, long: Option<&str>) -> (usize, usize) {
        let owner_s = owner.to_string();
        let long_s = long.unwrap_or(owner).to_string();
        let pending = self
            .store
            .read(move |c| {
                let mut stmt = c.prepare(
                    "SELECT url, data_type FROM jma_entries WHERE state = 'pending' AND feed_url IN (?1, ?2)
                     ORDER BY updated, first_seen_at, url",
                )?;
                let rows = stmt
                    .query_map(params![owner_s, long_s], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await;
        let pending = match pending {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reading pending JMA entries");
                return (0, 0);
            }
        };
        let label = feed_label(owner);
        let mut ok = 0;
        let mut failed = 0;
        // `buffered` keeps input order, so telegrams are archived (and therefore applied) oldest first even
        // though they download concurrently.
        let mut results = futures::stream::iter(pending)
            .map(|(url, dt)| async move {
                let permit = self.downloads.clone().acquire_owned().await;
                let r = self.download(&url).await;
                drop(permit);
                (url, dt, r)
            })
            .buffered(self.cfg.max_concurrent_fetches.max(1));
        while let Some((url, dt, r)) = results.next().await {
            match r {
                Ok(body) => match self.archive(owner, &url, dt, body).await {
                    Ok(()) => {
                        ok += 1;
                        self.metrics.inc(
                            "sonae_jma_documents_fetched_total",
                            "Telegrams downloaded and archived.",
                            &[("feed", &label)],
                        );
                    }
                    Err(e) => {
                        failed += 1;
                        tracing::error!(error = %format!("{e:#}"), "archiving a JMA telegram");
                    }
                },
                Err(e) => {
                    failed += 1;
                    self.metrics.inc(
                        "sonae_jma_fetch_errors_total",
                        "Failed telegram downloads.",
                        &[("feed", &label), ("reason", e.label())],
                    );
                    self.download_failed(&url, &e).await;
                }
            }
        }
        (ok, failed)
    }

    async fn download(&self, url: &str) -> Result<bytes::Bytes, FeedError> {
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(FeedError::from_reqwest)?;
        if !resp.status().is_success() {
            return Err(FeedError::Status(resp.status().as_u16()));
        }
        let body = resp.bytes().await.map_err(FeedError::from_reqwest)?;
        if body.is_empty() {
            return Err(FeedError::Http("empty body".into()));
        }
        Ok(body)
    }

    /// The archive row and the entry's `fetched` state commit together: from here on the URL is never
    /// requested again.
    async fn archive(
        &self,
        owner: &str,
        url: &str,
        data_type: Option<String>,
        body: bytes::Bytes,
    ) -> anyhow::Result<()> {
        let at = self.clock.now();
        let u = url.to_string();
        let owner = owner.to_string();
        self.store
            .write(move |tx| {
                let id = super::archive::insert(tx, &u, at, &body, data_type.as_deref())?;
                tx.execute(
                    "UPDATE jma_entries SET state = 'fetched', archive_id = ?2, attempts = attempts + 1,
                       last_error = NULL WHERE url = ?1",
                    params![u, id],
                )?;
                tx.execute(
                    "UPDATE jma_feeds SET documents_fetched = documents_fetched + 1 WHERE url = ?1",
                    [&owner],
                )?;
                Ok(())
            })
            .await
    }

    async fn download_failed(&self, url: &str, e: &FeedError) {
        let max = self.cfg.max_fetch_attempts as i64;
        let u = url.to_string();
        let msg = e.to_string();
        let gave_up = self
            .store
            .write(move |tx| {
                tx.execute(
                    "UPDATE jma_entries SET attempts = attempts + 1, last_error = ?2,
                       state = CASE WHEN attempts + 1 >= ?3 THEN 'failed' ELSE state END WHERE url = ?1",
                    params![u, msg, max],
                )?;
                Ok(tx.query_row(
                    "SELECT state = 'failed' FROM jma_entries WHERE url = ?1",
                    [&u],
                    |r| r.get::<_, bool>(0),
                )?)
            })
            .await
            .unwrap_or(false);
        tracing::warn!(url, error = %e, gave_up, "telegram download failed");
        if gave_up {
            self.store
                .record_problem(
                    "jma.feed",
                    format!(
                        "気象庁電文を {} 回取得できず、取得をあきらめました: {e}",
                        self.cfg.max_fetch_attempts
                    ),
                    Some(url.to_string()),
                )
                .await;
        }
    }

    /// Sets the feed's health: `Degraded` (and one recorded problem per silent episode) when the last
    /// successful poll is older than `jma.silent_feed_alarm_secs`.
    async fn check_silence(&self, url: &str) {
        let label = feed_label(url);
        let component = format!("jma_feed:{label}");
        let h = feed_health(&self.store, url).unwrap_or_default();
        let now = self.clock.now();
        let last = h
            .last_success_at
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc));
        let alarm = chrono::Duration::seconds(self.cfg.silent_feed_alarm_secs as i64);
        // Silent since the last success, or since this poller started (a restart after downtime does not
        // alarm on its first failure; the catch-up covers the downtime).
        let silent_since = last.map_or(self.started, |l| l.max(self.started));
        let silent = now - silent_since > alarm;
        self.metrics.set(
            "sonae_jma_feed_documents_fetched",
            "Telegrams downloaded via this feed (stored total).",
            &[("feed", &label)],
            h.documents_fetched as f64,
        );
        if silent {
            let was = self
                .health
                .snapshot()
                .get(&component)
                .map(|s| s.status == Status::Degraded)
                .unwrap_or(false);
            let mins = (now - silent_since).num_minutes();
            self.health.set(
                component.clone(),
                Status::Degraded,
                format!(
                    "{mins} 分間取得できていません（連続失敗 {} 回）",
                    h.consecutive_failures
                ),
            );
            if !was {
                self.store
                    .record_problem(
                        "jma.feed",
                        format!(
                            "気象庁フィード {label} が {mins} 分間取得できていません。警報を見落とすおそれがあります"
                        ),
                        h.last_error.clone(),
                    )
                    .await;
            }
        } else if h.consecutive_failures > 0 {
            self.health.set(
                component,
                Status::Ok,
                format!("直近の取得に失敗（連続 {} 回）", h.consecutive_failures),
            );
        } else {
            self.health.set(component, Status::Ok, "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_is_capped_and_never_below_a_second() {
        let b = Duration::from_secs(5);
        let m = Duration::from_secs(600);
        assert_eq!(
            backoff_delay(1, b, m, 0.999_999),
            Duration::from_secs(5).mul_f64(0.999_999)
        );
        assert!(backoff_delay(2, b, m, 0.999_999) > Duration::from_secs(9));
        assert!(backoff_delay(4, b, m, 0.999_999) > Duration::from_secs(39));
        assert!(backoff_delay(20, b, m, 0.999_999) <= m);
        assert!(backoff_delay(20, b, m, 0.999_999) > Duration::from_secs(599));
        assert_eq!(backoff_delay(3, b, m, 0.0), Duration::from_secs(1));
        assert_eq!(backoff_delay(u32::MAX, b, m, 0.5), Duration::from_secs(300));
    }

    #[test]
    fn full_jitter_spreads_delays_over_the_whole_range() {
        let b = Duration::from_secs(5);
        let m = Duration::from_secs(600);
        let ds: Vec<Duration> = (0..10)
            .map(|i| backoff_delay(5, b, m, i as f64 / 10.0))
            .collect();
        assert_eq!(ds[5], Duration::from_secs(40));
        assert!(ds.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn feed_labels_are_file_names() {
        assert_eq!(
            feed_label("https://www.data.jma.go.jp/developer/xml/feed/extra_l.xml?x=1"),
            "extra_l.xml"
        );
    }
}
