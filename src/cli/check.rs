//! `sonae check` and `sonae db migrate`.

use std::path::Path;
use std::process::ExitCode;

use super::{config_error, EXIT_RUNTIME, EXIT_USAGE};
use crate::config::{Config, ConfigError};
use crate::store::Schema;

/// `sonae check`: the file, the secrets, then what the daemon's start checks ([`crate::config::preflight`])
/// and the database's schema — without changing anything. Exit 0 when the daemon would start, 2 with every
/// refusal (key and fix) when it would not.
pub fn run(config_path: &Path) -> ExitCode {
    let cfg = match Config::from_file(config_path) {
        Ok(c) => c,
        Err(e) => return config_error(e),
    };
    let mut problems = match cfg.load_secrets() {
        Ok(_) => Vec::new(),
        Err(e) => e.problems,
    };
    let checked = crate::config::preflight::run(&cfg);
    problems.extend(checked.problems);
    let mut notes = Vec::new();
    match crate::store::schema(&cfg.store.path) {
        Ok(Schema::Missing) => notes.push(format!(
            "store.path: no database at {} yet; the daemon creates it at its first start",
            cfg.store.path.display()
        )),
        Ok(Schema::Older { version, pending }) => notes.push(format!(
            "store.path: schema version {version}, {pending} migration(s) to apply; the daemon applies them at start (or `sonae db migrate`); take a backup first"
        )),
        Ok(Schema::Current { .. }) => {}
        Ok(Schema::Newer { version, known }) => problems.push(format!(
            "store.path: the database's schema version {version} is newer than this sonae knows ({known}); run the newer sonae, or restore a backup taken before the upgrade"
        )),
        Err(e) => problems.push(format!(
            "store.path: {e:#}; point it at the SQLite database (or a path where the daemon may create one)"
        )),
    }
    for w in &checked.warnings {
        eprintln!("warning: {w}");
    }
    if !problems.is_empty() {
        return config_error(ConfigError { problems });
    }
    for n in &notes {
        eprintln!("note: {n}");
    }
    if let Some(place) = &checked.place {
        println!(
            "{}: ok ({} districts, {} shelters)",
            config_path.display(),
            place.districts.len(),
            place.shelters.len()
        );
    } else {
        println!("{}: ok", config_path.display());
    }
    ExitCode::SUCCESS
}

/// `sonae db migrate`: applies this binary's pending migrations (creating the database if there is none).
/// Stop the daemon and take a backup first.
pub fn migrate(config_path: &Path, db: Option<&Path>) -> ExitCode {
    let path = match db {
        Some(p) => p.to_path_buf(),
        None => match Config::from_file(config_path) {
            Ok(c) => c.store.path,
            Err(e) => return config_error(e),
        },
    };
    let before = match crate::store::schema(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let what = match before {
        Schema::Newer { version, known } => {
            eprintln!("error: the database's schema version {version} is newer than this sonae knows ({known}); run the newer sonae");
            return ExitCode::from(EXIT_USAGE);
        }
        Schema::Current { .. } => "already current".to_string(),
        Schema::Missing => "created".to_string(),
        Schema::Older { pending, .. } => format!("applied {pending} migration(s)"),
    };
    let store = match crate::store::Store::open(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let version = store.schema_version().unwrap_or_default();
    println!("{}: {what}; schema version {version}", path.display());
    ExitCode::SUCCESS
}
