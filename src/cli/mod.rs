//! Command-line interface. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
//!
//! * `-c/--config FILE` is one global option (also `SONAE_CONFIG`, default `/etc/sonae/sonae.toml`), accepted
//!   before or after the command (`sonae -c FILE user list`, `sonae user list --config FILE`).
//! * `sonae --help` lists the production commands, then the developer and demo commands
//!   ([`DEVELOPER_COMMANDS`]) in a section of their own.
//! * Commands that print data take `--format table|json` ([`output::Format`]); long work shows a progress bar
//!   on standard error when it is a terminal ([`progress`]).
//! * `sonae completions SHELL` and `sonae man [--out-dir DIR]` are generated from the same definition
//!   (clap_complete, clap_mangen); `--version` carries the git commit (`build.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, ConfigError};

pub mod audit;
mod check;
pub mod output;
pub mod place;
pub mod progress;
pub mod richmenu;
pub mod user;

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

pub const DEFAULT_CONFIG: &str = "/etc/sonae/sonae.toml";

/// `sonae --version`: the crate version and the git commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SONAE_GIT_COMMIT"),
    ")"
);

/// Commands for developers and trials, listed apart from the production commands in `--help`.
pub const DEVELOPER_COMMANDS: [&str; 3] = ["demo", "demo-data", "line-sandbox"];

#[derive(Debug, Parser)]
#[command(
    name = "sonae",
    version = VERSION,
    about = "備え — disaster alerts and city services on a LINE Official Account",
    long_about = None
)]
pub struct Cli {
    /// Configuration file (TOML), read by every command that needs it; the environment variable
    /// SONAE_CONFIG names it too (the option wins).
    #[arg(
        short = 'c',
        long,
        global = true,
        env = "SONAE_CONFIG",
        default_value = DEFAULT_CONFIG,
        value_name = "FILE"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run,
    /// Check the configuration file, its secrets, the place data it names and the database's schema,
    /// changing nothing; exit 0 when the daemon would start, 2 (with each key and fix) when not.
    Check,
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
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
    /// JMA disaster-prevention XML tools.
    Jma {
        #[command(subcommand)]
        command: JmaCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output, or write one page per command into a directory.
    Man {
        /// Write sonae.1 and one page per subcommand (sonae-user-add.1, …) into this directory instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Run a self-contained demonstration and print where to look.
    ///
    /// Embedded defaults: a temporary data directory, the LINE stand-in in process, a recorded JMA
    /// scenario over local HTTP, and snow plows on the embedded MQTT broker (cargo feature
    /// `embedded-broker`) or an installed mosquitto.
    Demo(crate::demo::DemoArgs),
    /// Demo city data: regenerate `deploy/demo` from the public data.
    DemoData {
        #[command(subcommand)]
        command: place::DemoDataCommand,
    },
    /// Run the local LINE stand-in, for tests, demos and benchmarks.
    ///
    /// A fake api.line.me / api-data.line.me with LINE's limits and semantics, which records deliveries
    /// and acts as residents.
    LineSandbox(crate::line::sandbox::cli::LineSandboxArgs),
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
        /// Back up this database file instead of the one named in the configuration.
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
    },
    /// Apply this sonae's pending schema migrations (creating the database if there is none). Only this
    /// and `sonae run` change the schema; stop the daemon and take a backup first.
    Migrate {
        /// Migrate this database file instead of the one named in the configuration.
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
    },
}

/// The full command definition: every command, as completions and manual pages show them.
pub fn command() -> clap::Command {
    Cli::command()
}

/// The definition `--help` shows: the developer commands are listed in a section of their own after the
/// production commands (they still parse as usual).
fn grouped_command() -> clap::Command {
    let mut cmd = command();
    let header = *cmd.get_styles().get_header();
    let literal = *cmd.get_styles().get_literal();
    let width = DEVELOPER_COMMANDS
        .iter()
        .map(|n| n.len())
        .max()
        .unwrap_or(0);
    let mut section = format!("{header}Developer and demo commands:{header:#}\n");
    for name in DEVELOPER_COMMANDS {
        let about = cmd
            .find_subcommand(name)
            .and_then(|s| s.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default();
        section.push_str(&format!(
            "  {literal}{name:<width$}{literal:#}  {}\n",
            about.lines().next().unwrap_or("")
        ));
        cmd = cmd.mut_subcommand(name, |s| s.hide(true));
    }
    cmd.after_help(section.trim_end().to_string())
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

/// Reads the configuration file; on failure prints the problems and returns exit code 2.
pub(crate) fn load_config(path: &Path) -> Result<Config, ExitCode> {
    Config::from_file(path).map_err(config_error)
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let matches = grouped_command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let config = cli.config;
    match cli.command {
        Command::Config {
            command: ConfigCommand::Default,
        } => {
            print!("{}", crate::config::DEFAULT_TOML);
            ExitCode::SUCCESS
        }
        Command::Check => check::run(&config),
        Command::Run => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
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
        Command::Richmenu { command } => richmenu::run(&config, command),
        Command::LineSandbox(args) => {
            let sandbox = match args.into_config() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let _ = crate::telemetry::init(&crate::config::LogConfig::default(), std::io::stderr);
            runtime(crate::line::sandbox::run_cli(sandbox))
        }
        Command::User { command } => user::run(&config, command),
        Command::Audit { command } => audit::run(&config, command),
        Command::Shelter { command } => place::shelter(&config, command),
        Command::Residents { command } => place::residents(&config, command),
        Command::DemoData { command } => place::demo_data(command),
        Command::Db {
            command: DbCommand::Backup { dest, db },
        } => {
            let src = match db {
                Some(p) => p,
                None => match load_config(&config) {
                    Ok(c) => c.store.path,
                    Err(code) => return code,
                },
            };
            let bar = progress::spinner(format!("backing up {}", src.display()));
            let result = crate::store::backup(&src, &dest, |done, total| {
                bar.set_message(format!("copied {done}/{total} pages; checking the copy"))
            });
            bar.finish_and_clear();
            match result {
                Ok(()) => {
                    println!("backup written to {} (integrity_check ok)", dest.display());
                    ExitCode::SUCCESS
                }
                Err(e) => runtime_error(e),
            }
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut command(), "sonae", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man { out_dir } => {
            let result = match out_dir {
                Some(dir) => std::fs::create_dir_all(&dir)
                    .and_then(|()| clap_mangen::generate_to(command(), &dir))
                    .map(|()| println!("manual pages written to {}", dir.display())),
                None => clap_mangen::Man::new(command()).render(&mut std::io::stdout()),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => runtime_error(anyhow::Error::new(e).context("writing the manual")),
            }
        }
        Command::Db {
            command: DbCommand::Migrate { db },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of every command says what it is for (`--help` and the manual page show it).
    #[test]
    fn every_argument_of_every_command_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for s in cmd.get_subcommands() {
                if s.get_about().is_none() {
                    missing.push(format!("{path} {} (no about)", s.get_name()));
                }
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut cmd = command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "sonae", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }

    #[test]
    fn the_definition_is_consistent_and_developer_commands_exist() {
        command().debug_assert();
        let cmd = command();
        for name in DEVELOPER_COMMANDS {
            assert!(cmd.find_subcommand(name).is_some(), "{name}");
        }
    }
}
