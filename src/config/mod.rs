//! One TOML file, typed and validated at start.
//!
//! * Unknown keys are errors (`deny_unknown_fields` everywhere), reported with their dotted path.
//! * Every error names the key, the bad value and the fix.
//! * Secrets are never written in the file: each is a [`SecretSource`] (`file` or `env`).
//! * What depends on the machine rather than the file (place data, public URL vs. real LINE) is
//!   checked by [`preflight`], shared by `sonae check` and the daemon's start.
//! * `sonae config default` prints [`DEFAULT_TOML`], the fully commented default; a test checks that it
//!   parses to exactly [`Config::default`] and that `deploy/sonae.example.toml` is identical to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::secret::{Secret, SecretSource};

pub mod preflight;

/// The commented default configuration, as printed by `sonae config default`.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
    pub console: ConsoleConfig,
    pub line: crate::line::LineConfig,
    pub jma: crate::jma::JmaConfig,
    pub disaster: crate::disaster::DisasterConfig,
    pub delivery: crate::delivery::DeliveryConfig,
    pub place: crate::place::PlaceConfig,
    pub plow: crate::plow::PlowConfig,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the public listener: the LINE webhook, the resident pages and the operator console
    /// (behind the TLS reverse proxy).
    pub listen: SocketAddr,
    /// Address of the admin listener: `/healthz`, `/metrics` and `/api/status`, for the machine's own
    /// monitoring. Loopback by default; never expose it to the internet.
    pub admin_listen: SocketAddr,
    /// Public base URL residents' links point to (behind the reverse proxy).
    pub public_url: String,
    /// A request not answered within this many seconds gets 408 (both listeners).
    pub request_timeout_secs: u64,
    /// Seconds allowed for draining on SIGTERM before remaining work is abandoned.
    /// Must stay below the systemd unit's `TimeoutStopSec` (30 s).
    pub shutdown_deadline_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            admin_listen: "127.0.0.1:8081".parse().expect("valid default address"),
            public_url: "http://127.0.0.1:8080".into(),
            request_timeout_secs: 15,
            shutdown_deadline_secs: 20,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// SQLite database file. Must be on a local disk (WAL does not work over NFS/SMB).
    pub path: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: "/var/lib/sonae/sonae.db".into(),
        }
    }
}

pub use crate::telemetry::{LogConfig, LogFormat};

pub use crate::console::ConsoleConfig;

/// A configuration error: what is wrong and how to fix it, one message per problem.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(msg: impl Into<String>) -> Self {
        ConfigError {
            problems: vec![msg.into()],
        }
    }
}

/// Secrets loaded from their sources.
#[derive(Clone, Debug)]
pub struct Secrets {
    pub line_channel_secret: Secret,
    pub line_channel_access_token: Secret,
    pub api_token: Option<Secret>,
}

impl Config {
    /// Reads and validates a config file (types, ranges, unknown keys). Does not read secrets.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::one(format!("config file \"{}\": {e}", path.display())))?;
        Config::parse(&text)
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = inner.message().trim().to_string();
            let location = inner
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            if path == "." || path.is_empty() {
                ConfigError::one(format!("config{location}: {msg}"))
            } else {
                ConfigError::one(format!("{path}{location}: {msg}"))
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let d = self.server.shutdown_deadline_secs;
        if d == 0 || d >= 30 {
            problems.push(format!(
                "server.shutdown_deadline_secs: {d} is out of range; use 1..=29 (it must stay below systemd's TimeoutStopSec=30)"
            ));
        }
        if self.server.admin_listen == self.server.listen && self.server.listen.port() != 0 {
            problems.push(format!(
                "server.admin_listen: {} is also server.listen; give the admin listener (health, metrics) its own loopback port, e.g. \"127.0.0.1:8081\"",
                self.server.admin_listen
            ));
        }
        let t = self.server.request_timeout_secs;
        if !(1..=300).contains(&t) {
            problems.push(format!(
                "server.request_timeout_secs: {t} is out of range; use 1..=300 (15 is a good value)"
            ));
        }
        if url::Url::parse(&self.server.public_url).is_err() {
            problems.push(format!(
                "server.public_url: \"{}\" is not a URL; write it like \"https://bousai.example.lg.jp\"",
                self.server.public_url
            ));
        }
        if self.store.path.as_os_str().is_empty() {
            problems.push(
                "store.path: is empty; give the SQLite file, e.g. \"/var/lib/sonae/sonae.db\""
                    .into(),
            );
        }
        problems.extend(self.console.validate());
        problems.extend(self.line.validate());
        problems.extend(self.jma.validate());
        problems.extend(self.disaster.validate());
        problems.extend(self.delivery.validate());
        problems.extend(self.place.validate());
        problems.extend(self.plow.validate());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Settings that still load but deserve the operator's attention: retired keys, opt-outs. `sonae check`
    /// prints them and the daemon logs them at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.console.session_key.is_some() {
            out.push("console.session_key: no longer used (console sessions are random tokens stored only as hashes, nothing is signed); delete the key, and the session-key credential".into());
        }
        if self.plow.leaflet_dir.is_some() {
            out.push("plow.leaflet_dir: no longer used (Leaflet 1.9.4 is built into sonae and served at /assets/leaflet/); delete the key".into());
        }
        if !self.place.enabled {
            out.push("place.enabled = false: no districts or shelters are loaded, so there are no disaster alerts, no registration by district and no shelter map; set it to true with the city's data for production".into());
        }
        out
    }

    /// Loads every secret; errors name the key and the file or variable.
    pub fn load_secrets(&self) -> Result<Secrets, ConfigError> {
        let mut problems = Vec::new();
        let mut get = |src: &SecretSource, key: &str| match src.load(key) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let line_channel_secret = get(&self.line.channel_secret, "line.channel_secret");
        let line_channel_access_token =
            get(&self.line.channel_access_token, "line.channel_access_token");
        let api_token = self
            .console
            .api_token
            .as_ref()
            .and_then(|s| get(s, "console.api_token"));
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Secrets {
            line_channel_secret: line_channel_secret.expect("checked above"),
            line_channel_access_token: line_channel_access_token.expect("checked above"),
            api_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_default_parses_to_the_built_in_default() {
        let parsed = Config::parse(DEFAULT_TOML).expect("default config parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn deploy_example_is_exactly_the_printed_default() {
        let example = include_str!("../../deploy/sonae.example.toml");
        assert_eq!(
            example, DEFAULT_TOML,
            "run `sonae config default > deploy/sonae.example.toml`"
        );
    }

    fn err(text: &str) -> String {
        Config::parse(text)
            .expect_err("config should be rejected")
            .to_string()
    }

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let e = err("[server]\nlisten = \"127.0.0.1:1\"\nlistn = 3\n");
        assert!(
            e.starts_with("server.listn (line 3): unknown field `listn`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_section_is_an_error() {
        let e = err("[sever]\nlisten = \"127.0.0.1:1\"\n");
        assert!(e.contains("unknown field `sever`"), "{e}");
    }

    #[test]
    fn bad_listen_address_names_key_and_value() {
        let e = err("[server]\nlisten = \"localhost\"\n");
        assert!(
            e.starts_with("server.listen (line 2): invalid socket address syntax"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = err("[server]\nshutdown_deadline_secs = \"ten\"\n");
        assert!(
            e.starts_with("server.shutdown_deadline_secs (line 2): invalid type: string \"ten\""),
            "{e}"
        );
    }

    #[test]
    fn shutdown_deadline_must_fit_inside_systemd_timeout() {
        let e = err("[server]\nshutdown_deadline_secs = 45\n");
        assert_eq!(
            e,
            "server.shutdown_deadline_secs: 45 is out of range; use 1..=29 (it must stay below systemd's TimeoutStopSec=30)"
        );
    }

    #[test]
    fn bad_log_format_lists_the_choices() {
        let e = err("[log]\nformat = \"xml\"\n");
        assert!(
            e.starts_with("log.format (line 2): unknown variant `xml`, expected one of `auto`, `human`, `json`, `journald`"),
            "{e}"
        );
    }

    #[test]
    fn console_timeouts_must_be_sensible() {
        let e = err("[console]\nidle_timeout_secs = 10\n");
        assert!(
            e.contains("console.idle_timeout_secs: 10 is out of range; use 60..=28800"),
            "{e}"
        );
        let e = err("[console]\nidle_timeout_secs = 1800\nabsolute_timeout_secs = 600\n");
        assert!(
            e.contains("console.absolute_timeout_secs: 600 is out of range"),
            "{e}"
        );
    }

    #[test]
    fn bad_public_url_says_how_to_write_it() {
        let e = err("[server]\npublic_url = \"bousai\"\n");
        assert!(
            e.contains("server.public_url: \"bousai\" is not a URL"),
            "{e}"
        );
    }

    #[test]
    fn a_config_with_the_retired_session_key_still_loads_with_a_warning() {
        let c =
            Config::parse("[console]\nsession_key = { env = \"SONAE_SESSION_KEY\" }\n").unwrap();
        let w = c.warnings();
        assert!(
            w.iter()
                .any(|w| w.starts_with("console.session_key: no longer used")),
            "{w:?}"
        );
        assert!(Config::default().warnings().is_empty());
    }

    #[test]
    fn the_admin_listener_needs_its_own_address() {
        let e = err("[server]\nlisten = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\"\n");
        assert!(
            e.contains("server.admin_listen: 127.0.0.1:9000 is also server.listen"),
            "{e}"
        );
    }

    #[test]
    fn missing_secret_file_is_reported_with_key_and_path() {
        let c = Config::parse(
            "[line]\nchannel_secret = { file = \"/etc/sonae/secret\" }\nchannel_access_token = { env = \"SONAE_TEST_UNSET_TOKEN\" }\n",
        )
        .unwrap();
        let e = c.load_secrets().unwrap_err().to_string();
        assert!(
            e.contains("line.channel_secret.file: file \"/etc/sonae/secret\" not found"),
            "{e}"
        );
        assert!(e.contains("line.channel_access_token.env: environment variable SONAE_TEST_UNSET_TOKEN is not set"), "{e}");
    }

    #[test]
    fn loaded_secrets_do_not_appear_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, v: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, v).unwrap();
            p.display().to_string()
        };
        let text = format!(
            "[line]\nchannel_secret = {{ file = \"{}\" }}\nchannel_access_token = {{ file = \"{}\" }}\n[console]\napi_token = {{ file = \"{}\" }}\n",
            write("a", "channel-secret-value-0001"),
            write("b", "access-token-value-0002"),
            write("c", "api-token-value-0003"),
        );
        let secrets = Config::parse(&text).unwrap().load_secrets().unwrap();
        let printed = format!("{secrets:?}");
        for needle in [
            "channel-secret-value",
            "access-token-value",
            "api-token-value",
        ] {
            assert!(!printed.contains(needle), "{printed}");
        }
    }
}
