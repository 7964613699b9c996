//! Secrets that must never reach a log line, a panic message or `Debug` output.
//!
//! A [`Secret`] only gives its value through [`Secret::expose`]; `Debug` prints `Secret([redacted])` and
//! there is deliberately no `Display`. Secrets are loaded from a systemd credential (`LoadCredential=`), a
//! file or an environment variable, never written inline in the config file.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// A string that must not be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// `bytes` random bytes, URL-safe base64 (for keys made up on the spot: the demo, the stand-in's daemon).
    pub fn random(bytes: usize) -> Self {
        use base64::Engine as _;
        use rand::RngCore as _;
        let mut buf = vec![0u8; bytes];
        rand::thread_rng().fill_bytes(&mut buf);
        Secret(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
    }

    /// The secret value. Call only where the value is sent on (HTTP header, HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where a secret comes from: `{ credential = "line-channel-secret" }` (a systemd credential, read from
/// `$CREDENTIALS_DIRECTORY`), `{ file = "/etc/sonae/line-secret" }` or `{ env = "SONAE_LINE_SECRET" }`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// The name of a credential systemd hands over (`LoadCredential=NAME:PATH`). It is read from
    /// `$CREDENTIALS_DIRECTORY/NAME`, so the same configuration works for the service and for an admin
    /// command run as a transient unit with the same credentials (README, "Admin commands").
    pub credential: Option<String>,
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

impl SecretSource {
    pub fn from_env(var: &str) -> Self {
        SecretSource {
            env: Some(var.to_string()),
            ..SecretSource::default()
        }
    }

    /// Reads the secret. `key` is the config key, used in the error message.
    ///
    /// Errors say which key, which file or variable, and what to do about it.
    pub fn load(&self, key: &str) -> Result<Secret, String> {
        let set = [
            self.credential.is_some(),
            self.file.is_some(),
            self.env.is_some(),
        ];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err(format!(
                "{key}: set one of `credential`, `file` or `env`, not several"
            ));
        }
        if let Some(name) = &self.credential {
            if name.is_empty() || name.contains('/') {
                return Err(format!(
                    "{key}.credential: \"{name}\" is not a credential name; use the NAME of LoadCredential=NAME:PATH"
                ));
            }
            let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") else {
                return Err(format!(
                    "{key}.credential: CREDENTIALS_DIRECTORY is not set; run under systemd with LoadCredential={name}:PATH (for admin commands see the README), or use `file`"
                ));
            };
            return read_file(&format!("{key}.credential"), &PathBuf::from(dir).join(name));
        }
        match (&self.file, &self.env) {
            (None, None) => Err(format!(
                "{key}: set `credential = \"NAME\"`, `file = \"/path\"` or `env = \"VARIABLE\"`"
            )),
            (Some(path), _) => read_file(&format!("{key}.file"), path),
            (None, Some(var)) => match std::env::var(var) {
                Ok(s) if !s.trim().is_empty() => Ok(Secret(s.trim().to_string())),
                _ => Err(format!(
                    "{key}.env: environment variable {var} is not set (export it, or point `{key}.file` at a file)"
                )),
            },
        }
    }
}

fn read_file(key: &str, path: &std::path::Path) -> Result<Secret, String> {
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim().is_empty() => Err(format!("{key}: file \"{}\" is empty", path.display())),
        Ok(s) => Ok(Secret(s.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{key}: file \"{}\" not found", path.display()))
        }
        Err(e) => Err(format!("{key}: cannot read \"{}\": {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_secret() {
        let s = Secret::new("super-secret-token-123");
        let printed = format!("{s:?} {:?}", Some(&s));
        assert!(!printed.contains("super-secret"), "{printed}");
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn missing_file_names_the_key_and_the_file() {
        let src = SecretSource {
            file: Some("/nonexistent/sonae-secret".into()),
            ..SecretSource::default()
        };
        let err = src.load("line.channel_secret").unwrap_err();
        assert_eq!(
            err,
            "line.channel_secret.file: file \"/nonexistent/sonae-secret\" not found"
        );
    }

    #[test]
    fn secret_is_read_from_a_file_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "abc\n").unwrap();
        let src = SecretSource {
            file: Some(path),
            ..SecretSource::default()
        };
        assert_eq!(src.load("k").unwrap().expose(), "abc");
    }

    #[test]
    fn two_sources_at_once_are_refused() {
        let src = SecretSource {
            credential: Some("a".into()),
            env: Some("B".into()),
            ..SecretSource::default()
        };
        assert_eq!(
            src.load("k").unwrap_err(),
            "k: set one of `credential`, `file` or `env`, not several"
        );
    }
}
