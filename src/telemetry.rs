//! Logging: `tracing` with an env-filter, to the systemd journal, a terminal or a log shipper.
//!
//! * `log.format = "auto"` (the default) writes to the journal natively when stderr is the journal (systemd
//!   sets `JOURNAL_STREAM` to stderr's device and inode): each event keeps its level as the journal
//!   `PRIORITY` (error 3, warn 4, info 5, debug 6) and its fields as journal fields (`F_ERROR`, `F_FEED`, …,
//!   see `journalctl -o verbose`), with `SYSLOG_IDENTIFIER=sonae`. Otherwise it is `human`.
//! * `human` colours only a terminal (and never with `NO_COLOR` set); `json` is one object per line.
//! * Errors are logged with their whole cause chain ([`chain`]), never only the outermost message.
//!
//! Secrets never reach the log because they are [`crate::secret::Secret`]s (no `Display`, redacted `Debug`);
//! LINE user ids are [`crate::ids::LineUserId`]s whose `Display`/`Debug` are redacted.

use std::io::IsTerminal as _;

use serde::Deserialize;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// The journal when stderr is the journal, `human` otherwise.
    Auto,
    Human,
    Json,
    /// The journal's native protocol (fails to start when there is no journal).
    Journald,
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
            format: LogFormat::Auto,
            filter: "info".into(),
        }
    }
}

/// True when stderr is connected to the systemd journal: `JOURNAL_STREAM` (set by systemd for services
/// whose output goes to the journal) names stderr's device and inode.
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    // fstat(2) on fd 2 through /proc: the standard library has no fstat on a raw descriptor.
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(m) => dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()),
        Err(_) => false,
    }
}

/// Installs the global subscriber writing human or JSON lines to `writer` (or to the journal, see the
/// module). `RUST_LOG`, when set, overrides `log.filter`. Returns an error if one is already installed
/// (tests may call it more than once) or if `journald` was asked for and there is no journal.
pub fn init<W>(log: &LogConfig, writer: W) -> anyhow::Result<()>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => {
            EnvFilter::try_new(f).map_err(|e| anyhow::anyhow!("RUST_LOG: {e}"))?
        }
        _ => EnvFilter::try_new(&log.filter).map_err(|e| anyhow::anyhow!("log.filter: {e}"))?,
    };
    let format = match log.format {
        LogFormat::Auto if stderr_is_journal() => LogFormat::Journald,
        LogFormat::Auto => LogFormat::Human,
        f => f,
    };
    let registry = tracing_subscriber::registry().with(filter);
    let res = match format {
        LogFormat::Journald => {
            let journald = tracing_journald::layer()
                .map_err(|e| anyhow::anyhow!("log.format = \"journald\": no journal socket: {e}"))?
                .with_syslog_identifier("sonae".into());
            registry.with(journald).try_init()
        }
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Human | LogFormat::Auto => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_target(true)
                        .with_ansi(colour)
                        .with_writer(writer),
                )
                .try_init()
        }
    };
    res.map_err(|e| anyhow::anyhow!("{e}"))
}

/// An error and every cause under it, `outer: cause: root cause` — what `{:#}` prints for an
/// `anyhow::Error`, for any `std::error::Error` (reqwest's "error sending request" says why only in its
/// sources).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Some errors repeat their source's message in their own; print it once.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("error sending request")]
    struct Outer(#[source] Middle);
    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause() {
        let e = Outer(Middle(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        )));
        assert_eq!(
            chain(&e),
            "error sending request: client error (Connect): Connection refused (os error 111)"
        );
    }
}
