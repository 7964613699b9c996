//! Console templates (minijinja), read at run time from `console.templates_dir` so a city can change
//! wording and layout without recompiling.
//!
//! A file missing from that directory falls back to the copy built into the binary (the repository's
//! `templates/console/`), so a partial customisation works; an empty `templates_dir` (the default) uses the
//! built-in copies only. A configured directory that cannot be read is a configuration error.
//! Templates are read once, on first use; restart the daemon after editing them. Output of `.html`
//! templates is HTML-escaped automatically.

use std::path::{Path, PathBuf};

use chrono::DateTime;
use minijinja::Environment;

/// The built-in copies: (file name, contents).
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "base.html",
        include_str!("../../templates/console/base.html"),
    ),
    (
        "login.html",
        include_str!("../../templates/console/login.html"),
    ),
    (
        "dashboard.html",
        include_str!("../../templates/console/dashboard.html"),
    ),
    (
        "shelters.html",
        include_str!("../../templates/console/shelters.html"),
    ),
    (
        "audit.html",
        include_str!("../../templates/console/audit.html"),
    ),
    (
        "problems.html",
        include_str!("../../templates/console/problems.html"),
    ),
    (
        "plows.html",
        include_str!("../../templates/console/plows.html"),
    ),
    (
        "users.html",
        include_str!("../../templates/console/users.html"),
    ),
    (
        "one_time_password.html",
        include_str!("../../templates/console/one_time_password.html"),
    ),
    (
        "password.html",
        include_str!("../../templates/console/password.html"),
    ),
    (
        "alerts.html",
        include_str!("../../templates/console/alerts.html"),
    ),
    (
        "alert_new.html",
        include_str!("../../templates/console/alert_new.html"),
    ),
    (
        "alert.html",
        include_str!("../../templates/console/alert.html"),
    ),
    (
        "safety.html",
        include_str!("../../templates/console/safety.html"),
    ),
    (
        "error.html",
        include_str!("../../templates/console/error.html"),
    ),
    (
        "console.css",
        include_str!("../../templates/console/console.css"),
    ),
    (
        "alerts-map.js",
        include_str!("../../templates/console/alerts-map.js"),
    ),
    (
        "safety-map.js",
        include_str!("../../templates/console/safety-map.js"),
    ),
    (
        "console.js",
        include_str!("../../templates/console/console.js"),
    ),
];

/// Reads `name` from `dir`, falling back to the built-in copy (an empty `dir`: the built-in copy only).
/// Names with path separators are refused.
pub fn load(dir: &Path, name: &str) -> Option<String> {
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return None;
    }
    let custom = if dir.as_os_str().is_empty() {
        None
    } else {
        std::fs::read_to_string(dir.join(name)).ok()
    };
    match custom {
        Some(s) => Some(s),
        None => BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.to_string()),
    }
}

/// Formats an RFC 3339 time as Japan time, `2026-11-22 09:05`; anything else is shown as given.
pub fn jst(value: &str) -> String {
    match DateTime::parse_from_rfc3339(value) {
        Ok(t) => crate::jst::to_jst(&t).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => value.to_string(),
    }
}

pub fn environment(dir: PathBuf) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_loader(move |name| Ok(load(&dir, name)));
    env.add_filter("jst", |v: String| jst(&v));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_in_the_directory_overrides_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("error.html"),
            "<p>市独自: {{ message }}</p>",
        )
        .unwrap();
        let env = environment(dir.path().to_path_buf());
        let out = env
            .get_template("error.html")
            .unwrap()
            .render(minijinja::context! { message => "<b>x</b>" })
            .unwrap();
        assert_eq!(out, "<p>市独自: &lt;b&gt;x&lt;&#x2f;b&gt;</p>");
        // Files not in the directory come from the binary.
        assert!(env.get_template("login.html").is_ok());
    }

    #[test]
    fn template_names_cannot_leave_the_directory() {
        assert!(load(Path::new("/etc"), "../passwd").is_none());
        assert!(load(Path::new("/"), "etc/passwd").is_none());
    }

    #[test]
    fn times_are_shown_in_japan_time() {
        assert_eq!(jst("2026-11-22T00:05:00+00:00"), "2026-11-22 09:05");
        assert_eq!(jst("not a time"), "not a time");
    }
}
