//! JMA disaster-prevention XML (気象庁防災情報XML): feed polling, parsing, warning codes and state.

pub mod report;
pub mod atom;
pub mod state;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JmaConfig {
    /// Atom feeds polled about once a minute. Each short feed has a long (`_l`) twin used for catch-up.
    pub feeds: Vec<String>,
    /// Seconds between polls of each feed.
    pub poll_interval_secs: u64,
    /// A feed with no successful poll for this many seconds is reported to operators.
    pub silent_feed_alarm_secs: u64,
}

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
        problems
    }
}
