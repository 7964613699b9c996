//! `sonae richmenu …`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::output::{print_json, Format, FormatArg};
use super::{config_error, load_config, runtime, runtime_error, EXIT_USAGE};
use crate::config::Config;
use crate::line::richmenu::{self, Mode, PollPlan, SwitchMethod};

#[derive(Debug, Subcommand)]
pub enum RichmenuCommand {
    /// Create the rich menus, images and aliases the templates describe, store LINE's ids, and set the
    /// default of the current mode. Idempotent; deletes nothing.
    Sync {
        #[command(flatten)]
        format: FormatArg,
    },
    /// Switch the whole account to MODE (normal or emergency): default menu and every per-user link.
    Switch {
        /// normal or emergency
        mode: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Write NAME.png for every NAME.json template in DIR (labelled tiles, 2500×1686). Fails naming any label
    /// character the embedded font lacks (run scripts/subset-menu-font) or any tile too low in contrast.
    Images {
        /// The templates directory, e.g. templates/richmenus
        dir: PathBuf,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "-".into()
    } else {
        names.join(", ")
    }
}

pub fn run(config: &Path, command: RichmenuCommand) -> ExitCode {
    match command {
        RichmenuCommand::Images { dir } => match richmenu::write_images(&dir) {
            Ok(files) => {
                for f in files {
                    println!("{f}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => runtime_error(e),
        },
        RichmenuCommand::Sync { format } => {
            with_line(config, move |cfg, client, store| async move {
                let templates =
                    richmenu::configured_templates(&cfg.line.richmenu_dir, &cfg.server.public_url)?;
                let bar = super::progress::spinner("creating the rich menus at LINE");
                let report = richmenu::sync(&client, &store, &templates).await;
                bar.finish_and_clear();
                let report = report?;
                match format.format {
                    Format::Json => print_json(&report)?,
                    Format::Table => {
                        println!("created\t{}", list(&report.created));
                        println!("adopted\t{}", list(&report.adopted));
                        println!("images_uploaded\t{}", list(&report.images_uploaded));
                        println!("aliases_created\t{}", list(&report.aliases_created));
                        println!("aliases_updated\t{}", list(&report.aliases_updated));
                        println!(
                            "default_set\t{}",
                            report.default_set.as_deref().unwrap_or("-")
                        );
                        println!("unchanged\t{}", list(&report.unchanged));
                    }
                }
                Ok(())
            })
        }
        RichmenuCommand::Switch { mode, format } => {
            let Some(mode) = Mode::from_menu_key(&mode) else {
                eprintln!("error: MODE: \"{mode}\" is not a mode; use normal or emergency");
                return ExitCode::from(EXIT_USAGE);
            };
            with_line(config, move |_cfg, client, store| async move {
                let bar = super::progress::spinner(format!(
                    "switching the account to {} (waiting for LINE to move every per-user link)",
                    mode.menu_key()
                ));
                let report =
                    richmenu::switch_with(&client, &store, mode, &PollPlan::default()).await;
                bar.finish_and_clear();
                let report = report?;
                match format.format {
                    Format::Json => print_json(&report)?,
                    Format::Table => {
                        println!("mode\t{}", report.mode.menu_key());
                        println!("default_menu\t{}", report.default_menu);
                        match &report.method {
                            SwitchMethod::Batch { request_id, phase } => {
                                println!("method\tbatch (request {request_id}, {phase})")
                            }
                            SwitchMethod::BulkLink {
                                users,
                                requests,
                                reason,
                            } => println!(
                                "method\tbulk link of {users} user(s) in {requests} request(s): {reason}"
                            ),
                        }
                    }
                }
                Ok(())
            })
        }
    }
}

fn with_line<F, Fut>(config: &Path, f: F) -> ExitCode
where
    F: FnOnce(Config, crate::line::client::LineClient, crate::store::Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let secrets = match cfg.load_secrets() {
        Ok(s) => s,
        Err(e) => return config_error(e),
    };
    let _ = crate::telemetry::init(&cfg.log, std::io::stderr);
    runtime(async move {
        let store = crate::store::Store::open_current(&cfg.store.path)?;
        let health = std::sync::Arc::new(crate::health::Health::new());
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
        let rt = crate::line::LineRuntime::build(
            &cfg.line,
            secrets.line_channel_secret,
            secrets.line_channel_access_token,
            &health,
            &metrics,
            &store,
        )?;
        f(cfg, rt.client, store).await
    })
}
