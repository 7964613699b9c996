//! Sonae (備え): a city's disaster-alerting and LINE Official Account daemon.
//!
//! # Layout
//! | module | owns | pure? |
//! | --- | --- | --- |
//! | [`cli`] | command line, exit codes | — |
//! | [`config`] | the TOML file, validation, secrets sources | yes |
//! | [`app`] | wiring, task spawning, graceful shutdown | — |
//! | [`store`] | SQLite: WAL, migrations, async access, backup | I/O |
//! | [`web`] | axum router: `/healthz`, `/metrics`, webhook, console, resident pages | I/O |
//! | [`jma`] | JMA XML feeds, parser, warning codes, active-warning state | mixed |
//! | [`line`] | LINE client, sending rules, webhook, rich menus, local stand-in | mixed |
//! | [`plow`] | snow plows: MQTT ingest, embedded broker, trails, road coverage, map and dispatcher data | mixed |
//! | [`telemetry`], [`metrics`], [`health`] | logs, Prometheus metrics, component states | — |
//! | [`secret`], [`ids`] | values that must not be printed: secrets, LINE user ids | yes |
//! | [`systemd`] | `sd_notify` readiness and watchdog | I/O |
//! | [`demo`] | `sonae demo` on embedded defaults | — |
//!
//! See ARCHITECTURE.md for how the parts fit together.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod health;
pub mod ids;
pub mod jma;
pub mod line;
pub mod metrics;
pub mod plow;
pub mod secret;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod web;
