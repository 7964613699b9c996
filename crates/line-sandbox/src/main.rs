//! `line-sandbox`: the LINE stand-in as a program of its own; the same as `sonae line-sandbox`.

use std::process::ExitCode;

use clap::Parser;
use line_sandbox::cli::LineSandboxArgs;

/// Run the local LINE stand-in (a fake api.line.me / api-data.line.me with LINE's limits and semantics,
/// which records deliveries and acts as residents). For tests, demos and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "line-sandbox", version)]
struct Cli {
    #[command(flatten)]
    args: LineSandboxArgs,
}

/// Bad flags (clap's own errors use the same code).
const EXIT_USAGE: u8 = 2;
const EXIT_RUNTIME: u8 = 1;

fn main() -> ExitCode {
    let config = match Cli::parse().args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Human-readable logs on stderr, `RUST_LOG` or `info`.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(line_sandbox::run_cli(config)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "line-sandbox failed");
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}
