//! LINE Messaging API: client, sending rules, webhook intake, rich menus, and the local stand-in.
//!
//! # Layout
//! | module | owns | pure? |
//! | --- | --- | --- |
//! | [`message`] | typed requests/responses (messages, Flex, actions, rich menus) | yes |
//! | [`limits`] | token buckets at LINE's rate limits; message size/count checks | yes |
//! | [`client`] | [`client::LineClient`]: the only code that talks to LINE; retry keys, retries, outcomes | I/O |
//! | [`signature`] | `X-Line-Signature` (HMAC-SHA256 over the raw body) | yes |
//! | [`events`] | webhook event parsing (forward-compatible) and the dispatch [`events::EventRouter`] | mixed |
//! | [`webhook`] | `POST /webhook`: verify, store durably, 200; the worker that processes stored events | I/O |
//! | [`menu_image`] | rich-menu images: tiles, Japanese labels (embedded subset font), contrast | yes |
//! | [`richmenu`] | rich menus as desired state: templates, `sonae richmenu sync`, account switch | I/O |
//! | [`sandbox`] | the local LINE stand-in (`sonae line-sandbox`) | I/O |
//! | [`spec`] | request/response checks against LINE's OpenAPI files | yes |
//!
//! Nothing outside this module talks to LINE except through [`client::LineClient`].

pub mod client;
pub mod events;
pub mod limits;
pub mod menu_image;
pub mod message;
pub mod richmenu;
pub mod signature;
pub mod webhook;

// The OpenAPI checker and the stand-in are the `line-openapi` and `line-sandbox` crates (`crates/`);
// `crate::line::spec` and `crate::line::sandbox` stay as they were.
pub use line_openapi as spec;
pub use line_sandbox as sandbox;

use std::path::PathBuf;
use std::sync::Arc;

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
    /// Per-attempt timeout of a LINE API request, seconds.
    pub request_timeout_secs: u64,
    /// Attempts per LINE API call on network errors, timeouts, 5xx and rate-limit 429s (first included).
    pub max_attempts: u32,
    /// Largest webhook body accepted; larger requests get 413 before the body is read further.
    pub webhook_body_limit_bytes: usize,
    /// Directory with the rich-menu templates (JSON + PNG per menu). Empty: the templates built into the binary.
    pub richmenu_dir: PathBuf,
}

impl Default for LineConfig {
    fn default() -> Self {
        LineConfig {
            api_base: "https://api.line.me".into(),
            api_data_base: "https://api-data.line.me".into(),
            channel_secret: SecretSource::from_env("SONAE_LINE_CHANNEL_SECRET"),
            channel_access_token: SecretSource::from_env("SONAE_LINE_CHANNEL_ACCESS_TOKEN"),
            request_timeout_secs: 10,
            max_attempts: 5,
            webhook_body_limit_bytes: 1_048_576,
            richmenu_dir: PathBuf::new(),
        }
    }
}

impl LineConfig {
    /// True when either base URL is LINE's real API (`*.line.me`), not a stand-in.
    pub fn is_real_line(&self) -> bool {
        [&self.api_base, &self.api_data_base].iter().any(|u| {
            url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase()))
                .is_some_and(|h| h == "line.me" || h.ends_with(".line.me"))
        })
    }

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
        if !(1..=120).contains(&self.request_timeout_secs) {
            problems.push(format!(
                "line.request_timeout_secs: {} is out of range; use 1..=120 (10 is a good value)",
                self.request_timeout_secs
            ));
        }
        if !(1..=20).contains(&self.max_attempts) {
            problems.push(format!(
                "line.max_attempts: {} is out of range; use 1..=20 (5 is a good value)",
                self.max_attempts
            ));
        }
        if !(1024..=16 * 1_048_576).contains(&self.webhook_body_limit_bytes) {
            problems.push(format!(
                "line.webhook_body_limit_bytes: {} is out of range; use 1024..=16777216 (LINE's webhooks are small; 1048576 is a good value)",
                self.webhook_body_limit_bytes
            ));
        }
        if !self.richmenu_dir.as_os_str().is_empty() && !self.richmenu_dir.is_dir() {
            problems.push(format!(
                "line.richmenu_dir: \"{}\" is not a directory; point it at the rich-menu templates or leave it empty for the built-in ones",
                self.richmenu_dir.display()
            ));
        }
        problems
    }
}

/// The LINE adapter's handle: the client, the event router services register into, the webhook's
/// settings and the worker's wake-up. Built once in `Application::build`; cheap to clone.
#[derive(Clone)]
pub struct LineRuntime {
    pub client: client::LineClient,
    pub events: Arc<events::EventRouter>,
    pub wake: Arc<tokio::sync::Notify>,
    pub intake: Arc<webhook::IntakeState>,
    pub store: crate::store::Store,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Verifies `X-Line-Signature`.
    pub channel_secret: crate::secret::Secret,
    pub webhook_body_limit_bytes: usize,
}

impl LineRuntime {
    /// The client from `[line]` and the secrets, alarms going to health, metrics and the problems table;
    /// an empty event router.
    pub fn build(
        cfg: &LineConfig,
        channel_secret: crate::secret::Secret,
        access_token: crate::secret::Secret,
        health: &Arc<crate::health::Health>,
        metrics: &Arc<crate::metrics::Metrics>,
        store: &crate::store::Store,
    ) -> anyhow::Result<LineRuntime> {
        let client = client::LineClient::with_alarm(
            client::ClientConfig {
                api_base: cfg.api_base.clone(),
                api_data_base: cfg.api_data_base.clone(),
                access_token,
                retry: client::RetryPolicy {
                    request_timeout: std::time::Duration::from_secs(cfg.request_timeout_secs),
                    max_attempts: cfg.max_attempts,
                    ..client::RetryPolicy::default()
                },
            },
            client::Alarm {
                health: health.clone(),
                metrics: metrics.clone(),
                store: Some(store.clone()),
            },
        )?;
        Ok(LineRuntime {
            client,
            events: Arc::new(events::EventRouter::new()),
            wake: Arc::new(tokio::sync::Notify::new()),
            intake: Arc::new(webhook::IntakeState::default()),
            store: store.clone(),
            metrics: metrics.clone(),
            channel_secret,
            webhook_body_limit_bytes: cfg.webhook_body_limit_bytes,
        })
    }
}
