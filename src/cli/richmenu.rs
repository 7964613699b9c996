//! `sonae richmenu …`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{config_error, runtime, runtime_error, DEFAULT_CONFIG, EXIT_USAGE};
use crate::config::Config;
use crate::line::richmenu::{self, Mode, PollPlan};

#[derive(Debug, Subcommand)]
pub enum RichmenuCommand {
    /// Create the rich menus, images and aliases the templates describe, store LINE's ids, and set the
    /// default of the current mode. Idempotent; deletes nothing.
    Sync {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Switch the whole account to MODE (normal or emergency): default menu and every per-user link.
    Switch {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// normal or emergency
        mode: String,
    },
    /// Write NAME.png for every NAME.json template in DIR (labelled tiles, 2500×1686). Fails naming any label
    /// character the embedded font lacks (run scripts/subset-menu-font) or any tile too low in contrast.
    Images {
        /// The templates directory, e.g. templates/richmenus
        dir: PathBuf,
    },
}

pub fn run(command: RichmenuCommand) -> ExitCode {
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
        RichmenuCommand::Sync { config } => with_line(&config, |cfg, client, store| async move {
            let templates =
                richmenu::configured_templates(&cfg.line.richmenu_dir, &cfg.server.public_url)?;
            let report = richmenu::sync(&client, &store, &templates).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }),
        RichmenuCommand::Switch { config, mode } => {
            let Some(mode) = Mode::from_menu_key(&mode) else {
                eprintln!("error: MODE: \"{mode}\" is not a mode; use normal or emergency");
                return ExitCode::from(EXIT_USAGE);
            };
            with_line(&config, move |_cfg, client, store| async move {
                let report =
                    richmenu::switch_with(&client, &store, mode, &PollPlan::default()).await?;
                println!("{}", serde_json::to_string(&report)?);
                Ok(())
            })
        }
    }
}

fn with_line<F, Fut>(config: &std::path::Path, f: F) -> ExitCode
where
    F: FnOnce(Config, crate::line::client::LineClient, crate::store::Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let cfg = match Config::from_file(config) {
        Ok(c) => c,
        Err(e) => return config_error(e),
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
