//! JMA disaster-prevention XML (気象庁防災情報XML): feed polling, parsing, warning codes and state.

pub mod archive;
pub mod area;
pub mod atom;
pub mod codes;
pub mod feed;
pub mod inspect;
pub mod pipeline;
pub mod replay;
pub mod report;
pub mod state;

use std::sync::Arc;

use serde::Deserialize;

use crate::app::Context;
use pipeline::{ParseFn, Pipeline};
use state::CodeTable;

/// The parser the daemon uses. **Wiring point**: once `jma::report::parse` lands this becomes
/// `Some(Arc::new(|b| report::parse(b).map_err(|e| e.to_string())))`. Until then telegrams are archived as
/// `unparsed` and processed at the first start with a parser (nothing is lost).
pub fn daemon_parser() -> Option<ParseFn> {
    None
}

/// The code table the daemon uses. **Wiring point**: an adapter from `jma::codes` to [`CodeTable`]. Until then
/// no code is known (each unknown code is reported once as a problem).
pub fn daemon_code_table() -> Arc<dyn CodeTable> {
    Arc::new(|_: &str, _: &str| None)
}

/// Starts the feed poller on `ctx.tasks` when `[jma] feeds` is non-empty. Returns the pipeline (state, event
/// subscription) for the disaster engine.
pub async fn spawn(ctx: &Context) -> anyhow::Result<Option<Arc<Pipeline>>> {
    let cfg = ctx.config.jma.clone();
    if cfg.feeds.is_empty() {
        tracing::info!("jma.feeds is empty; not polling JMA");
        return Ok(None);
    }
    let pipeline = Arc::new(
        Pipeline::open(
            ctx.store.clone(),
            daemon_parser(),
            daemon_code_table(),
            Some(ctx.metrics.clone()),
        )
        .await?,
    );
    let poller = Arc::new(feed::Poller::new(
        cfg,
        ctx.store.clone(),
        pipeline.clone(),
        ctx.metrics.clone(),
        ctx.health.clone(),
        Arc::new(feed::SystemClock),
    )?);
    let token = ctx.shutdown.clone();
    ctx.tasks.spawn(poller.run(token));
    Ok(Some(pipeline))
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JmaConfig {
    /// Atom feeds polled about once a minute. Each short feed has a long (`_l`) twin used for catch-up.
    pub feeds: Vec<String>,
    /// Seconds between polls of each feed.
    pub poll_interval_secs: u64,
    /// A feed with no successful poll for this many seconds is reported to operators.
    pub silent_feed_alarm_secs: u64,
    /// Read the long twin (`extra.xml` → `extra_l.xml`) at start and after any gap longer than
    /// `short_feed_window_secs`, so nothing published while we were away is missed.
    pub catch_up_from_long_feeds: bool,
    /// How far back a short feed reaches (JMA: at least the last 10 minutes). A gap since the last successful
    /// poll longer than this, or a short feed whose oldest entry is newer than that poll, triggers a catch-up.
    pub short_feed_window_secs: u64,
    /// Telegram downloads in flight at once, over all feeds.
    pub max_concurrent_fetches: usize,
    /// Timeout of one HTTP request (feed or telegram), in seconds.
    pub request_timeout_secs: u64,
    /// Backoff after a failed poll: full jitter, doubling from `backoff_base_secs` up to `backoff_max_secs`.
    pub backoff_base_secs: u64,
    pub backoff_max_secs: u64,
    /// A telegram URL that fails this many downloads is given up and reported to operators.
    pub max_fetch_attempts: u32,
    /// Data-type codes (or prefixes, e.g. "VXKO") to download; other entries are recorded but not fetched.
    /// Empty: download everything.
    pub fetch_types: Vec<String>,
}

/// The types the parser understands and the disaster engine acts on (issue 3, item 3), plus VPNO50.
pub const DEFAULT_FETCH_TYPES: &[&str] = &[
    "VPWW50", "VPWW53", "VPWW54", "VPWW55", "VPWW56", "VPWW57", "VPWW58", "VPWW59", "VPWW60",
    "VPWW61", "VXWW50", "VXKO", "VPOA50", "VPHW50", "VPHW51", "VTSE41", "VXSE51", "VXSE52",
    "VXSE53", "VFVO50", "VPNO50",
];

impl Default for JmaConfig {
    fn default() -> Self {
        JmaConfig {
            feeds: vec![
                "https://www.data.jma.go.jp/developer/xml/feed/regular.xml".into(),
                "https://www.data.jma.go.jp/developer/xml/feed/extra.xml".into(),
                "https://www.data.jma.go.jp/developer/xml/feed/eqvol.xml".into(),
            ],
            poll_interval_secs: 60,
            silent_feed_alarm_secs: 600,
            catch_up_from_long_feeds: true,
            short_feed_window_secs: 600,
            max_concurrent_fetches: 4,
            request_timeout_secs: 20,
            backoff_base_secs: 5,
            backoff_max_secs: 600,
            max_fetch_attempts: 10,
            fetch_types: DEFAULT_FETCH_TYPES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl JmaConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, f) in self.feeds.iter().enumerate() {
            if url::Url::parse(f).is_err() {
                problems.push(format!(
                    "jma.feeds[{i}]: \"{f}\" is not a URL; write the full Atom feed URL"
                ));
            }
        }
        if !(10..=3600).contains(&self.poll_interval_secs) {
            problems.push(format!(
                "jma.poll_interval_secs: {} is out of range; use 10..=3600 (JMA asks for about 60)",
                self.poll_interval_secs
            ));
        }
        if self.silent_feed_alarm_secs < self.poll_interval_secs {
            problems.push(format!(
                "jma.silent_feed_alarm_secs: {} is shorter than jma.poll_interval_secs ({}); use at least the poll interval (default 600)",
                self.silent_feed_alarm_secs, self.poll_interval_secs
            ));
        }
        if !(60..=86_400).contains(&self.short_feed_window_secs) {
            problems.push(format!(
                "jma.short_feed_window_secs: {} is out of range; use 60..=86400 (JMA's short feeds cover 600 s)",
                self.short_feed_window_secs
            ));
        }
        if !(1..=32).contains(&self.max_concurrent_fetches) {
            problems.push(format!(
                "jma.max_concurrent_fetches: {} is out of range; use 1..=32 (default 4)",
                self.max_concurrent_fetches
            ));
        }
        if !(1..=300).contains(&self.request_timeout_secs) {
            problems.push(format!(
                "jma.request_timeout_secs: {} is out of range; use 1..=300 (default 20)",
                self.request_timeout_secs
            ));
        }
        if self.backoff_base_secs == 0 || self.backoff_base_secs > self.backoff_max_secs {
            problems.push(format!(
                "jma.backoff_base_secs: {} must be at least 1 and at most jma.backoff_max_secs ({})",
                self.backoff_base_secs, self.backoff_max_secs
            ));
        }
        if self.max_fetch_attempts == 0 {
            problems.push(
                "jma.max_fetch_attempts: 0 would never download anything; use at least 1 (default 10)".into(),
            );
        }
        for (i, t) in self.fetch_types.iter().enumerate() {
            if t.len() < 2 || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
                problems.push(format!(
                    "jma.fetch_types[{i}]: \"{t}\" is not a data-type code; write e.g. \"VPWW54\" or a prefix such as \"VXKO\""
                ));
            }
        }
        problems
    }

    /// Whether entries of this data type are downloaded.
    pub fn wants(&self, data_type: Option<&str>) -> bool {
        if self.fetch_types.is_empty() {
            return true;
        }
        match data_type {
            Some(dt) => self.fetch_types.iter().any(|t| dt.starts_with(t.as_str())),
            // A URL without a recognisable code: fetch it rather than risk missing a warning.
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_feed_settings_are_named_with_the_value_and_the_fix() {
        let cfg = JmaConfig {
            feeds: vec!["extra.xml".into()],
            short_feed_window_secs: 5,
            max_concurrent_fetches: 0,
            backoff_base_secs: 900,
            fetch_types: vec!["VP WW".into()],
            ..JmaConfig::default()
        };
        let p = cfg.validate();
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(p[0].starts_with("jma.feeds[0]: \"extra.xml\" is not a URL"));
        assert!(p[1].starts_with("jma.short_feed_window_secs: 5 is out of range; use 60..=86400"));
        assert!(p[2].starts_with("jma.max_concurrent_fetches: 0"));
        assert!(p[3].starts_with("jma.backoff_base_secs: 900 must be at least 1 and at most"));
        assert!(p[4].starts_with("jma.fetch_types[0]: \"VP WW\" is not a data-type code"));
        assert!(JmaConfig::default().validate().is_empty());
    }

    #[test]
    fn fetch_types_match_codes_and_prefixes() {
        let cfg = JmaConfig::default();
        assert!(cfg.wants(Some("VPWW55")));
        assert!(cfg.wants(Some("VXKO52")));
        assert!(!cfg.wants(Some("VPFD50")));
        assert!(
            cfg.wants(None),
            "an unrecognised URL is fetched rather than risk a miss"
        );
        let all = JmaConfig {
            fetch_types: vec![],
            ..JmaConfig::default()
        };
        assert!(all.wants(Some("VPFD50")));
    }
}
