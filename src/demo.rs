//! `sonae demo`: the daemon on embedded defaults in a temporary data directory.

use std::path::PathBuf;

use base64::Engine;
use rand::RngCore;

use crate::config::{Config, Secrets};
use crate::secret::Secret;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address the demo's web server listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Keep data here instead of a fresh temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

fn random_secret(bytes: usize) -> Secret {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let (data_dir, _guard) = match args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            (d, None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("sonae-demo-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let mut config = Config::default();
    config.server.listen = args.listen;
    config.server.public_url = format!("http://{}", args.listen);
    config.store.path = data_dir.join("sonae.db");
    let secrets = Secrets {
        line_channel_secret: random_secret(16),
        line_channel_access_token: random_secret(32),
        session_key: random_secret(48),
        api_token: None,
    };
    let app = crate::app::Application::build(config, secrets).await?;
    let addr = app.local_addr();
    let (console_user, console_password) =
        crate::console::users::demo_account(&app.context().store)?;
    println!("Sonae demo");
    println!("  data directory : {}", data_dir.display());
    println!("  health         : http://{addr}/healthz");
    println!("  metrics        : http://{addr}/metrics");
    println!("  console        : http://{addr}/console/  (user {console_user}, password {console_password})");
    println!("Press Ctrl-C to stop.");
    app.run_until_stopped(crate::app::stop_signal()).await
}
