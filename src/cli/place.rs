//! CLI commands for places and residents: `sonae shelter …`, `sonae residents …`, `sonae demo-data …`.
//! Exit codes as everywhere: 0 ok, 1 runtime failure (including a rejected data file), 2 usage or config error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{DEFAULT_CONFIG, EXIT_RUNTIME, EXIT_USAGE};
use crate::config::Config;
use crate::place::status::{self, ShelterStatus, StatusChange};
use crate::place::{Hazard, PlaceData};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ShelterCommand {
    /// Set a shelter's status (open, closed or full). The change is audited.
    Status {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// GSI 共通ID of the shelter, e.g. E0110000241202.
        shelter_id: String,
        /// open | closed | full
        status: String,
        /// Who made the change (written to the audit log). Defaults to `cli:$USER`.
        #[arg(long)]
        actor: Option<String>,
    },
    /// List the configured shelters with their status (tab-separated).
    List {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Only sites designated for this hazard (flood, landslide, storm_surge, earthquake, tsunami,
        /// large_fire, inland_flood, volcano, or the Japanese name).
        #[arg(long)]
        hazard: Option<String>,
        /// Only sites with this status.
        #[arg(long)]
        status: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResidentsCommand {
    /// Import residents from a CSV with columns user_id,district (header optional). Every row is checked
    /// first; if any row is bad, all bad rows are listed with their line numbers and nothing is imported.
    Import {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The CSV file.
        csv: PathBuf,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Write every resident as CSV to standard output (user_id,district,active,opt_level3,registered_at).
    Export {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoDataCommand {
    /// Derive the demo city's files (札幌市 districts from town points and ward outlines; shelters) from the
    /// public data in SHARED/geo and write them to OUT.
    Generate {
        /// The shared materials directory (with geo/districts and geo/shelters).
        #[arg(long, default_value = "../shared")]
        shared: PathBuf,
        #[arg(long, default_value = "deploy/demo")]
        out: PathBuf,
    },
}

fn actor(given: Option<String>) -> String {
    given.unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    })
}

/// Loads the config, the place files and opens the store; prints errors and returns the exit code on failure.
fn open(config: &std::path::Path) -> Result<(Config, PlaceData, Store), ExitCode> {
    let cfg = Config::from_file(config).map_err(|e| {
        for p in &e.problems {
            eprintln!("error: {p}");
        }
        ExitCode::from(EXIT_USAGE)
    })?;
    let data = PlaceData::load(&cfg.place).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    for p in &data.problems {
        eprintln!("warning: {p}");
    }
    let store = Store::open_current(&cfg.store.path).map_err(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(EXIT_RUNTIME)
    })?;
    Ok((cfg, data, store))
}

pub fn shelter(cmd: ShelterCommand) -> ExitCode {
    match cmd {
        ShelterCommand::Status {
            config,
            shelter_id,
            status: wanted,
            actor: who,
        } => {
            let wanted: ShelterStatus = match wanted.parse() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let (_, data, store) = match open(&config) {
                Ok(x) => x,
                Err(code) => return code,
            };
            let Some(s) = data.shelters.get(&shelter_id) else {
                eprintln!(
                    "error: shelter \"{shelter_id}\" is not in the configured shelter files; `sonae shelter list` shows the ids"
                );
                return ExitCode::from(EXIT_USAGE);
            };
            let who = actor(who);
            match store.write_blocking(|tx| status::set_status_tx(tx, &shelter_id, wanted, &who)) {
                Ok(StatusChange::Changed { from, to }) => {
                    println!("{shelter_id} {}: {from} → {to}", s.name);
                    ExitCode::SUCCESS
                }
                Ok(StatusChange::Unchanged(st)) => {
                    println!("{shelter_id} {}: already {st}", s.name);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(EXIT_RUNTIME)
                }
            }
        }
        ShelterCommand::List {
            config,
            hazard,
            status: only,
        } => {
            let hazard = match hazard.as_deref().map(|h| (h, Hazard::parse(h))) {
                None => None,
                Some((_, Some(h))) => Some(h),
                Some((h, None)) => {
                    eprintln!("error: --hazard \"{h}\" is not a hazard; use one of flood, landslide, storm_surge, earthquake, tsunami, large_fire, inland_flood, volcano");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let only: Option<ShelterStatus> = match only.map(|s| s.parse()) {
                None => None,
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => {
                    eprintln!("error: --status: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let (_, data, store) = match open(&config) {
                Ok(x) => x,
                Err(code) => return code,
            };
            let statuses = match store.read_blocking(status::load_statuses) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(EXIT_RUNTIME);
                }
            };
            println!("id\tstatus\tkind\tname\thazards\tlat\tlon");
            for s in data.shelters.all() {
                let st = status::status_of(&statuses, &s.id);
                if only.is_some_and(|o| o != st) || hazard.is_some_and(|h| !s.hazards.contains(h)) {
                    continue;
                }
                let hz: Vec<&str> = s.hazards.iter().map(|h| h.label_ja()).collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{:.6}\t{:.6}",
                    s.id,
                    st,
                    s.kind.label_ja(),
                    s.name.replace(['\t', '\r', '\n'], " "),
                    hz.join("・"),
                    s.at.lat,
                    s.at.lon
                );
            }
            ExitCode::SUCCESS
        }
    }
}

pub fn residents(cmd: ResidentsCommand) -> ExitCode {
    match cmd {
        ResidentsCommand::Import {
            config,
            csv,
            actor: who,
        } => {
            let bytes = match std::fs::read(&csv) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {}: {e}", csv.display());
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let (_, data, store) = match open(&config) {
                Ok(x) => x,
                Err(code) => return code,
            };
            let rows = match crate::resident::check_import(&bytes, &data.districts) {
                Ok(r) => r,
                Err(errors) => {
                    for (line, m) in &errors {
                        eprintln!("{}:{line}: {m}", csv.display());
                    }
                    eprintln!(
                        "error: {} bad row(s) in {}; nothing was imported. Fix the rows and run the import again.",
                        errors.len(),
                        csv.display()
                    );
                    return ExitCode::from(EXIT_RUNTIME);
                }
            };
            let who = actor(who);
            let file = csv.display().to_string();
            match store.write_blocking(|tx| crate::resident::import_tx(tx, &rows, &who, &file)) {
                Ok((created, updated)) => {
                    println!(
                        "imported {} resident(s) from {file}: {created} new, {updated} updated",
                        rows.rows.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}; nothing was imported");
                    ExitCode::from(EXIT_RUNTIME)
                }
            }
        }
        ResidentsCommand::Export { config } => {
            let cfg = match Config::from_file(&config) {
                Ok(c) => c,
                Err(e) => {
                    for p in &e.problems {
                        eprintln!("error: {p}");
                    }
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let store = match Store::open_current(&cfg.store.path) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(EXIT_RUNTIME);
                }
            };
            let stdout = std::io::stdout();
            match store.read_blocking(|c| crate::resident::export(c, stdout.lock())) {
                Ok(n) => {
                    eprintln!("exported {n} resident(s)");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(EXIT_RUNTIME)
                }
            }
        }
    }
}

pub fn demo_data(cmd: DemoDataCommand) -> ExitCode {
    match cmd {
        DemoDataCommand::Generate { shared, out } => {
            match crate::place::demo_data::generate(&shared, &out) {
                Ok(s) => {
                    for (ward, n) in &s.per_ward {
                        println!("{ward}: {n} districts");
                    }
                    println!(
                        "wrote {} districts ({} bytes) and the shelter CSV to {}",
                        s.districts,
                        s.bytes,
                        out.display()
                    );
                    for e in &s.empty {
                        println!("left out (empty after clipping to the ward outline): {e}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(EXIT_RUNTIME)
                }
            }
        }
    }
}
