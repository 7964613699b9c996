//! LINE Messaging API: client, sending rules, webhook intake, rich menus, and the local stand-in.

use serde::Deserialize;

use crate::secret::SecretSource;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LineConfig {
    /// Messaging API base URL.
    pub api_base: String,
    /// Data API base URL (message content, rich-menu images).
    pub api_data_base: String,
    /// Channel secret: verifies `X-Line-Signature` on webhooks.
    pub channel_secret: SecretSource,
    /// Long-lived channel access token.
    pub channel_access_token: SecretSource,
}

impl Default for LineConfig {
    fn default() -> Self {
        LineConfig {
            api_base: "https://api.line.me".into(),
            api_data_base: "https://api-data.line.me".into(),
            channel_secret: SecretSource::from_env("SONAE_LINE_CHANNEL_SECRET"),
            channel_access_token: SecretSource::from_env("SONAE_LINE_CHANNEL_ACCESS_TOKEN"),
        }
    }
}

impl LineConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, v) in [
            ("line.api_base", &self.api_base),
            ("line.api_data_base", &self.api_data_base),
        ] {
            if url::Url::parse(v).is_err() {
                problems.push(format!(
                    "{key}: \"{v}\" is not a URL; e.g. \"https://api.line.me\""
                ));
            }
        }
        problems
    }
}

pub mod sandbox;
pub mod spec;
