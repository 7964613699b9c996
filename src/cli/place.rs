//! CLI commands for places and residents: `sonae shelter …`, `sonae residents …`, `sonae demo-data …`.
//! Exit codes as everywhere: 0 ok, 1 runtime failure (including a rejected data file), 2 usage or config error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::output::{print_json, Format, FormatArg};
use super::{EXIT_RUNTIME, EXIT_USAGE};
use crate::config::Config;
use crate::place::status::{self, ShelterStatus, StatusChange};
use crate::place::{Hazard, PlaceData};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ShelterCommand {
    /// Set a shelter's status (open, closed or full). The change is audited.
    Status {
        /// GSI 共通ID of the shelter, e.g. E0110000241202.
        shelter_id: String,
        /// open | closed | full
        status: String,
        /// Who made the change (written to the audit log). Defaults to `cli:$USER`.
        #[arg(long)]
        actor: Option<String>,
    },
    /// List the configured shelters with their status (a tab-separated table, or JSON).
    List {
        /// Only sites designated for this hazard (flood, landslide, storm_surge, earthquake, tsunami,
        /// large_fire, inland_flood, volcano, or the Japanese name).
        #[arg(long)]
        hazard: Option<String>,
        /// Only sites with this status (open, closed or full).
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResidentsCommand {
    /// Import residents from a CSV with columns user_id,district (header optional; UTF-8 or Shift_JIS; the
    /// district as its id or its name). Every row is checked first; if any row is bad, all bad rows are
    /// listed with their line numbers and nothing is imported.
    Import {
        /// The CSV file.
        csv: PathBuf,
        /// Who imports (written to the audit log). Defaults to `cli:$USER`.
        #[arg(long)]
        actor: Option<String>,
        /// Check every row and report what would be imported, without writing anything.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Write every resident as CSV to standard output (user_id,district,active,opt_level3,registered_at),
    /// UTF-8 with a byte-order mark so Excel opens it.
    Export,
}

#[derive(Debug, Subcommand)]
pub enum DemoDataCommand {
    /// Derive the demo city's files (札幌市 districts from town points and ward outlines; shelters) from the
    /// public data in SHARED/geo and write them to OUT.
    Generate {
        /// The shared materials directory (with geo/districts and geo/shelters).
        #[arg(long, default_value = "../shared")]
        shared: PathBuf,
        /// Where to write the demo city's files.
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
fn open(config: &Path) -> Result<(Config, PlaceData, Store), ExitCode> {
    let cfg = super::load_config(config)?;
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

pub fn shelter(config: &Path, cmd: ShelterCommand) -> ExitCode {
    match cmd {
        ShelterCommand::Status {
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
            let (_, data, store) = match open(config) {
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
            hazard,
            status: only,
            format,
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
            let (_, data, store) = match open(config) {
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
            let rows = data.shelters.all().iter().filter_map(|s| {
                let st = status::status_of(&statuses, &s.id);
                let wanted =
                    only.is_none_or(|o| o == st) && hazard.is_none_or(|h| s.hazards.contains(h));
                wanted.then_some((s, st))
            });
            if format.format == Format::Json {
                let list: Vec<serde_json::Value> = rows
                    .map(|(s, st)| {
                        serde_json::json!({
                            "id": s.id,
                            "status": st.to_string(),
                            "kind": s.kind.label_ja(),
                            "name": s.name,
                            "hazards": s.hazards.iter().map(|h| h.label_ja()).collect::<Vec<_>>(),
                            "lat": s.at.lat,
                            "lon": s.at.lon,
                        })
                    })
                    .collect();
                return match print_json(&list) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => super::runtime_error(e),
                };
            }
            println!("id\tstatus\tkind\tname\thazards\tlat\tlon");
            for (s, st) in rows {
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

pub fn residents(config: &Path, cmd: ResidentsCommand) -> ExitCode {
    match cmd {
        ResidentsCommand::Import {
            csv,
            actor: who,
            dry_run,
            format,
        } => {
            let bytes = match std::fs::read(&csv) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {}: {e}", csv.display());
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let (_, data, store) = match open(config) {
                Ok(x) => x,
                Err(code) => return code,
            };
            let file = csv.display().to_string();
            let rows = match crate::resident::check_import(&bytes, &data.districts) {
                Ok(r) => r,
                Err(errors) => {
                    for (line, m) in &errors {
                        match line {
                            0 => eprintln!("{file}: {m}"),
                            l => eprintln!("{file}:{l}: {m}"),
                        }
                    }
                    eprintln!(
                        "error: {} bad row(s) in {file}; nothing was imported. Fix the rows and run the import again.",
                        errors.len(),
                    );
                    return ExitCode::from(EXIT_RUNTIME);
                }
            };
            eprintln!("{file}: read as {}", rows.encoding.label());
            let n = rows.rows.len();
            let outcome = if dry_run {
                store
                    .read_blocking(|c| crate::resident::count_known(c, &rows))
                    .map(|known| (n - known, known))
            } else {
                let who = actor(who);
                let bar = super::progress::bar(n as u64, format!("importing {file}"));
                let r = store.write_blocking(|tx| {
                    crate::resident::import_tx(tx, &rows, &who, &file, |done| {
                        bar.set_position(done as u64)
                    })
                });
                bar.finish_and_clear();
                r
            };
            let (created, updated) = match outcome {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e:#}; nothing was imported");
                    return ExitCode::from(EXIT_RUNTIME);
                }
            };
            match format.format {
                Format::Json => {
                    if let Err(e) = print_json(&serde_json::json!({
                        "file": file,
                        "encoding": rows.encoding.label(),
                        "dry_run": dry_run,
                        "rows": n,
                        "new": created,
                        "updated": updated,
                    })) {
                        return super::runtime_error(e);
                    }
                }
                Format::Table if dry_run => println!(
                    "dry run: would import {n} resident(s) from {file}: {created} new, {updated} updated; nothing was written"
                ),
                Format::Table => println!(
                    "imported {n} resident(s) from {file}: {created} new, {updated} updated"
                ),
            }
            ExitCode::SUCCESS
        }
        ResidentsCommand::Export => {
            let cfg = match super::load_config(config) {
                Ok(c) => c,
                Err(code) => return code,
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
