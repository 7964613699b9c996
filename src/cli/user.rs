//! `sonae user add|list|disable`: console accounts from the command line.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Utc;

use super::output::{print_json, Format, FormatArg};
use super::{EXIT_RUNTIME, EXIT_USAGE};
use crate::console::users::{
    add_user, disable_user, hash_password, list_users, AddUserError, Role, UserName,
    MIN_PASSWORD_CHARS,
};
use crate::store::Store;

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a console account. The password is read from standard input (one line) or, on a terminal,
    /// prompted twice without echo.
    Add {
        /// Login name (letters, digits, '.', '_', '-').
        name: String,
        /// operator: 閲覧・避難所・問題対応; approver: also manual hold/release of disaster mode; admin: everything.
        #[arg(long, value_enum, default_value = "operator")]
        role: Role,
    },
    /// List console accounts.
    List {
        #[command(flatten)]
        format: FormatArg,
    },
    /// Disable an account and end its sessions.
    Disable {
        /// Login name of the account to disable.
        name: String,
    },
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("パスワード: ").context("reading password")?;
        let b = rpassword::prompt_password("パスワード（確認）: ").context("reading password")?;
        if a != b {
            anyhow::bail!("the two passwords differ; nothing was changed");
        }
        Ok(a)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading password from standard input")?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

fn open_store(config: &std::path::Path) -> Result<Store, ExitCode> {
    let cfg = super::load_config(config)?;
    Store::open_current(&cfg.store.path).map_err(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(EXIT_RUNTIME)
    })
}

/// Runs a `sonae user` command. Exit codes: 0 ok, 1 runtime failure, 2 usage (bad name, short password).
pub fn run(config: &std::path::Path, cmd: UserCommand) -> ExitCode {
    let usage = |m: String| {
        eprintln!("error: {m}");
        ExitCode::from(EXIT_USAGE)
    };
    let runtime = |e: anyhow::Error| {
        eprintln!("error: {e:#}");
        ExitCode::from(EXIT_RUNTIME)
    };
    let cli_actor = || {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    };
    match cmd {
        UserCommand::Add { name, role } => {
            let name = match UserName::parse(&name) {
                Ok(n) => n,
                Err(m) => return usage(m),
            };
            let store = match open_store(config) {
                Ok(s) => s,
                Err(c) => return c,
            };
            let password = match read_password() {
                Ok(p) => p,
                Err(e) => return usage(format!("{e:#}")),
            };
            if password.chars().count() < MIN_PASSWORD_CHARS {
                return usage(format!(
                    "the password is shorter than {MIN_PASSWORD_CHARS} characters; choose a longer one"
                ));
            }
            let hash = match hash_password(&password) {
                Ok(h) => h,
                Err(e) => return runtime(e),
            };
            let actor = cli_actor();
            let res =
                store.write_blocking(|tx| Ok(add_user(tx, &name, role, &hash, &actor, Utc::now())));
            match res {
                Ok(Ok(_)) => {
                    println!("user {} added ({})", name.as_str(), role.as_str());
                    ExitCode::SUCCESS
                }
                Ok(Err(AddUserError::Exists(n))) => usage(format!(
                    "user {n:?} already exists; choose another name or disable the old account"
                )),
                Ok(Err(AddUserError::Other(e))) | Err(e) => runtime(e),
            }
        }
        UserCommand::List { format } => {
            let store = match open_store(config) {
                Ok(s) => s,
                Err(c) => return c,
            };
            match store.read_blocking(list_users) {
                Ok(users) if format.format == Format::Json => {
                    let list: Vec<serde_json::Value> = users
                        .iter()
                        .map(|u| {
                            serde_json::json!({
                                "name": u.name,
                                "role": u.role.as_str(),
                                "disabled": u.disabled,
                                "created_at": u.created_at,
                                "last_login_at": u.last_login_at,
                            })
                        })
                        .collect();
                    match print_json(&list) {
                        Ok(()) => ExitCode::SUCCESS,
                        Err(e) => runtime(e),
                    }
                }
                Ok(users) => {
                    println!("{:<24} {:<9} {:<9} last login", "name", "role", "state");
                    for u in users {
                        println!(
                            "{:<24} {:<9} {:<9} {}",
                            u.name,
                            u.role.as_str(),
                            if u.disabled { "disabled" } else { "active" },
                            u.last_login_at.as_deref().unwrap_or("-")
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => runtime(e),
            }
        }
        UserCommand::Disable { name } => {
            let store = match open_store(config) {
                Ok(s) => s,
                Err(c) => return c,
            };
            let actor = cli_actor();
            match store.write_blocking(|tx| disable_user(tx, &name, &actor)) {
                Ok(true) => {
                    println!("user {name} disabled; their sessions were ended");
                    ExitCode::SUCCESS
                }
                Ok(false) => usage(format!("no user named {name:?}; see `sonae user list`")),
                Err(e) => runtime(e),
            }
        }
    }
}
