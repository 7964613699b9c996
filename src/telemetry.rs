//! Logging: `tracing` with an env-filter, human or JSON output.
//!
//! Secrets never reach the log because they are [`crate::secret::Secret`]s (no `Display`, redacted `Debug`);
//! LINE user ids are [`crate::ids::LineUserId`]s whose `Display`/`Debug` are redacted.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use serde::Deserialize;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `tracing` env-filter directives; the `RUST_LOG` environment variable overrides it.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            filter: "info".into(),
        }
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.filter`.
/// Returns an error if one is already installed (tests may call it more than once).
pub fn init<W>(log: &LogConfig, writer: W) -> anyhow::Result<()>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => EnvFilter::try_new(f)?,
        _ => EnvFilter::try_new(&log.filter)?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let res = match log.format {
        LogFormat::Human => builder.with_target(true).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    res.map_err(|e| anyhow::anyhow!("{e}"))
}
