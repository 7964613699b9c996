//! Command-line interface. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

pub mod audit;
mod check;
pub mod place;
pub mod richmenu;
pub mod user;

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

pub const DEFAULT_CONFIG: &str = "/etc/sonae/sonae.toml";

#[derive(Debug, Parser)]
#[command(name = "sonae", version, about = "備え — disaster alerts and city services on a LINE Official Account", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Check a configuration file, its secrets, the place data and Leaflet it names, and the database's
    /// schema, changing nothing; exit 0 when the daemon would start, 2 (with each key and fix) when not.
    Check {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run a self-contained demonstration on embedded defaults (temporary data directory, in-process
    /// LINE stand-in, recorded JMA feeds) and print where to look.
    Demo(crate::demo::DemoArgs),
    /// JMA disaster-prevention XML tools.
    Jma {
        #[command(subcommand)]
        command: JmaCommand,
    },
    /// Run the local LINE stand-in (a fake api.line.me / api-data.line.me with LINE's limits and
    /// semantics, which records deliveries and acts as residents). For tests, demos and benchmarks.
    LineSandbox(crate::line::sandbox::cli::LineSandboxArgs),
    /// Operator-console accounts.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Audit log: verify its tamper-evident hash chain.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// LINE rich menus: create what the templates describe, switch the account, generate images.
    Richmenu {
        #[command(subcommand)]
        command: richmenu::RichmenuCommand,
    },
    /// Shelters: set status (open/closed/full), list.
    Shelter {
        #[command(subcommand)]
        command: place::ShelterCommand,
    },
    /// Residents: import from / export to CSV.
    Residents {
        #[command(subcommand)]
        command: place::ResidentsCommand,
    },
    /// Demo city data: regenerate `deploy/demo` from the public data.
    DemoData {
        #[command(subcommand)]
        command: place::DemoDataCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the complete, commented default configuration.
    Default,
}

#[derive(Debug, Subcommand)]
pub enum JmaCommand {
    /// Parse JMA XML telegrams and print one JSON object per file (one per line). Files that are not JMA
    /// reports or are malformed print {"file", "error"}; the command goes on and exits 1 at the end.
    Inspect {
        /// Telegram files (XML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy the database to DEST with SQLite's online backup API (safe while the daemon runs).
    Backup {
        /// The backup file to create (must not exist).
        dest: PathBuf,
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Back up this database file instead of the one named in the configuration.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Apply this sonae's pending schema migrations (creating the database if there is none). Only this
    /// and `sonae run` change the schema; stop the daemon and take a backup first.
    Migrate {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Migrate this database file instead of the one named in the configuration.
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

pub(crate) fn config_error(e: ConfigError) -> ExitCode {
    for p in &e.problems {
        eprintln!("error: {p}");
    }
    ExitCode::from(EXIT_USAGE)
}

pub(crate) fn runtime_error(e: anyhow::Error) -> ExitCode {
    // The daemon's start refusing the configuration (`config::preflight`) is a configuration error.
    if let Some(c) = e.downcast_ref::<ConfigError>() {
        for p in &c.problems {
            tracing::error!(problem = %p, "configuration refused");
        }
        return config_error(ConfigError {
            problems: c.problems.clone(),
        });
    }
    tracing::error!(error = %format!("{e:#}"), "sonae failed");
    eprintln!("error: {e:#}");
    ExitCode::from(EXIT_RUNTIME)
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config {
            command: ConfigCommand::Default,
        } => {
            print!("{}", crate::config::DEFAULT_TOML);
            ExitCode::SUCCESS
        }
        Command::Check { config } => check::run(&config),
        Command::Run { config } => {
            let cfg = match Config::from_file(&config) {
                Ok(c) => c,
                Err(e) => return config_error(e),
            };
            let secrets = match cfg.load_secrets() {
                Ok(s) => s,
                Err(e) => return config_error(e),
            };
            if let Err(e) = crate::telemetry::init(&cfg.log, std::io::stderr) {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
            runtime(async move {
                let app = crate::app::Application::build(cfg, secrets).await?;
                app.run_until_stopped(crate::app::stop_signal()).await
            })
        }
        Command::Demo(args) => runtime(crate::demo::run(args)),
        Command::Jma {
            command: JmaCommand::Inspect { files },
        } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match crate::jma::inspect::run(&files, &mut out) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(EXIT_RUNTIME),
                Err(e) => runtime_error(anyhow::Error::new(e).context("writing to stdout")),
            }
        }
        Command::Richmenu { command } => richmenu::run(command),
        Command::LineSandbox(args) => {
            let config = match args.into_config() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let _ = crate::telemetry::init(&crate::config::LogConfig::default(), std::io::stderr);
            runtime(crate::line::sandbox::run_cli(config))
        }
        Command::User { command } => user::run(command),
        Command::Audit { command } => audit::run(command),
        Command::Shelter { command } => place::shelter(command),
        Command::Residents { command } => place::residents(command),
        Command::DemoData { command } => place::demo_data(command),
        Command::Db {
            command: DbCommand::Backup { dest, config, db },
        } => {
            let src = match db {
                Some(p) => p,
                None => match Config::from_file(&config) {
                    Ok(c) => c.store.path,
                    Err(e) => return config_error(e),
                },
            };
            match crate::store::backup(&src, &dest, |done, total| {
                eprintln!("copied {done}/{total} pages")
            }) {
                Ok(()) => {
                    println!("backup written to {} (integrity_check ok)", dest.display());
                    ExitCode::SUCCESS
                }
                Err(e) => runtime_error(e),
            }
        }
        Command::Db {
            command: DbCommand::Migrate { config, db },
        } => check::migrate(&config, db.as_deref()),
    }
}

pub(crate) fn runtime(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return runtime_error(e.into()),
    };
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => runtime_error(e),
    }
}
