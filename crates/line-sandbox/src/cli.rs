//! Flags of `line-sandbox` and `sonae line-sandbox`.

use std::net::SocketAddr;

use clap::Args;

use super::{Faults, SandboxConfig, Settings};

#[derive(Debug, Args)]
pub struct LineSandboxArgs {
    /// Address to listen on; use it as both `line.api_base` and `line.api_data_base`.
    #[arg(long, default_value = "127.0.0.1:8091")]
    pub listen: SocketAddr,
    /// The daemon's webhook URL, where simulated residents' events are sent (e.g.
    /// http://127.0.0.1:8080/webhook). Can also be set later with PUT /v2/bot/channel/webhook/endpoint.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// Channel secret that signs webhook events (the daemon must be configured with the same one).
    #[arg(
        long,
        env = "SONAE_LINE_CHANNEL_SECRET",
        default_value = "sandbox-channel-secret"
    )]
    pub channel_secret: String,
    /// The channel access token the stand-in accepts in `Authorization: Bearer`.
    #[arg(
        long,
        env = "SONAE_LINE_CHANNEL_ACCESS_TOKEN",
        default_value = "sandbox-access-token"
    )]
    pub access_token: String,
    /// Monthly message quota (recipients); 429 "You have reached your monthly limit." once used up.
    /// Unlimited when absent.
    #[arg(long)]
    pub monthly_quota: Option<u64>,
    /// Disable LINE's per-endpoint rate limits.
    #[arg(long)]
    pub no_rate_limits: bool,
    /// Only users who sent a `follow` event receive messages (by default any well-formed user id is
    /// treated as a friend on first contact).
    #[arg(long)]
    pub friends_only: bool,
    /// Share of LINE API requests answered 500 without effect (0.0–1.0).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share of LINE API requests that take effect and then lose their connection (0.0–1.0).
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Latency added to every LINE API request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

impl LineSandboxArgs {
    pub fn into_config(self) -> Result<SandboxConfig, String> {
        for (flag, v) in [
            ("--error-rate", self.error_rate),
            ("--drop-rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!(
                    "{flag}: {v} is not a share; give a number from 0.0 to 1.0"
                ));
            }
        }
        if let Some(u) = &self.webhook_url {
            if url::Url::parse(u).is_err() {
                return Err(format!(
                    "--webhook-url: \"{u}\" is not a URL; e.g. http://127.0.0.1:8080/webhook"
                ));
            }
        }
        Ok(SandboxConfig {
            listen: self.listen,
            webhook_url: self.webhook_url,
            channel_secret: self.channel_secret,
            access_token: self.access_token,
            settings: Settings {
                monthly_quota: self.monthly_quota,
                rate_limits: !self.no_rate_limits,
                auto_friend: !self.friends_only,
                ..Settings::default()
            },
            faults: Faults {
                error_rate: self.error_rate,
                drop_rate: self.drop_rate,
                latency_ms: self.latency_ms,
                ..Faults::default()
            },
            ..SandboxConfig::default()
        })
    }
}
