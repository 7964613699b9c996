//! JMA disaster-prevention XML (気象庁防災情報XML): feed polling, parsing, warning codes and state.

pub mod archive;
pub mod atom;
pub mod feed;
pub mod inspect;
pub mod pipeline;
pub mod replay;
pub mod state;

// The pure parser and code tables are the `jma-xml` crate (`crates/jma-xml`); these paths stay as they were.
pub use jma_xml::{area, codes, report};

use std::sync::Arc;

use serde::Deserialize;

use crate::infra::Infra;
use pipeline::{ParseFn, Pipeline};
use state::CodeTable;

/// The parser the daemon uses: [`report::parse`], its error rendered for the archive's `parse_error` column.
pub fn daemon_parser() -> Option<ParseFn> {
    Some(Arc::new(|b: &[u8]| {
        report::parse(b).map_err(|e| e.to_string())
    }))
}

/// The code table the daemon uses: an adapter from [`codes`] to [`CodeTable`].
pub fn daemon_code_table() -> Arc<dyn CodeTable> {
    Arc::new(classify_code)
}

/// Classifies one warning Kind code of a telegram of `data_type` with the real tables in [`codes`].
///
/// * VXWW50 (土砂災害警戒情報): `3` 警戒 is 土砂災害 at 危険警報 level 4 (the same level VPWW56 `49` reports);
///   `0`/`1` are not in force and the state skips them by status anyway, so they classify as nothing.
/// * VPWW5x and VPHW: the warning-code table, with the 警戒レベル相当 of the telegram's family (08/38 高潮
///   differ between VPWW54 and VPWW57). Types outside both families use the R06 level.
pub fn classify_code(data_type: &str, code: &str) -> Option<state::KindClass> {
    use state::{KindClass, Severity as S};
    if data_type == "VXWW50" {
        return match codes::landslide_alert(code)? {
            codes::LandslideAlert::InForce => Some(KindClass {
                phenomenon: codes::Phenomenon::Landslide.as_str().into(),
                severity: S::Danger,
                level: Some(4),
                // Its Kind/Name is 警戒, which told residents nothing (「【警戒】札幌市…」); it is the warning
                // VPWW56 reports as code 49, under that code's name.
                name: codes::warning("49").map(|w| w.new_name.to_string()),
            }),
            codes::LandslideAlert::None | codes::LandslideAlert::Lifted => None,
        };
    }
    let w = codes::warning(code)?;
    let family = codes::Family::of(data_type).unwrap_or(codes::Family::R06);
    Some(KindClass {
        phenomenon: w.phenomenon.as_str().into(),
        severity: match w.severity {
            codes::Severity::Advisory => S::Advisory,
            codes::Severity::Warning => S::Warning,
            codes::Severity::DangerWarning => S::Danger,
            codes::Severity::Emergency => S::Emergency,
        },
        level: w.level(family),
        name: None,
    })
}

/// Starts the feed poller when `[jma] feeds` is non-empty. Returns the pipeline (state, event subscription)
/// for the disaster engine.
pub async fn spawn(ctx: &Infra, cfg: JmaConfig) -> anyhow::Result<Option<Arc<Pipeline>>> {
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

#[cfg(test)]
mod wiring_tests {
    use super::*;
    use state::Severity;

    #[test]
    fn the_daemon_code_table_maps_old_and_new_heavy_rain_codes_to_the_same_phenomenon() {
        let t = daemon_code_table();
        let old = t.classify("VPWW54", "03").expect("03 is known");
        let new = t.classify("VPWW55", "43").expect("43 is known");
        assert_eq!(old.phenomenon, "大雨");
        assert_eq!(new.phenomenon, "大雨");
        assert_eq!(old.severity, Severity::Warning);
        assert_eq!(new.severity, Severity::Danger);
        assert_eq!(new.level, Some(4));
    }

    #[test]
    fn the_daemon_code_table_reads_landslide_alerts_and_refuses_unknown_codes() {
        let t = daemon_code_table();
        let c = t.classify("VXWW50", "3").expect("3 is 警戒");
        assert_eq!(
            (c.phenomenon.as_str(), c.severity, c.level),
            ("土砂災害", Severity::Danger, Some(4))
        );
        // Residents are told the warning's name, not the telegram's 「警戒」.
        assert_eq!(c.name.as_deref(), Some("レベル４土砂災害危険警報"));
        assert_eq!(t.classify("VPWW54", "03").and_then(|c| c.name), None);
        assert!(t.classify("VXWW50", "1").is_none());
        assert!(t.classify("VPWW54", "zz").is_none());
    }

    #[test]
    fn the_daemon_parser_parses_a_real_telegram_and_rejects_garbage() {
        let parse = daemon_parser().expect("wired");
        assert!(parse(b"<not-jma/>").is_err());
        let dir = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/feeds/demo-heavy-rain/telegrams"
        ));
        let mut parsed = 0;
        for e in std::fs::read_dir(dir).expect("demo feed").flatten() {
            if e.path().extension().is_some_and(|x| x == "xml") {
                let bytes = std::fs::read(e.path()).expect("read");
                let r = parse(&bytes).expect("demo telegrams parse");
                assert!(!r.data_type.is_empty());
                parsed += 1;
            }
        }
        assert!(parsed > 0, "no telegrams found in {}", dir.display());
    }
}
