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
//! | [`disaster`] | policy, pure engine (mode + alert steps), alert composition | mostly |
//! | [`delivery`] | the durable outbox: batches, retry keys, sender task, progress | I/O |
//! | [`jma`] | JMA XML feeds, parser, warning codes, active-warning state | mixed |
//! | [`line`] | LINE client, sending rules, webhook, rich menus, local stand-in | mixed |
//! | [`console`] | operator console (login, dashboard, hold, shelters, audit, problems), `/api/status`, `sonae user` | I/O |
//! | [`mode`] | 平常時/災害モード and the manual hold, in SQLite | I/O |
//! | [`place`] | districts, shelters (GSI data), nearest shelter, hazard links, shelter status, demo city data | mostly |
//! | [`resident`] | residents, registration conversation, audience query, CSV import/export | mixed |
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
pub mod console;
pub mod delivery;
pub mod demo;
pub mod disaster;
pub mod health;
pub mod ids;
pub mod infra;
pub mod jma;
pub mod line;
pub mod metrics;
pub mod mode;
pub mod place;
pub mod plow;
pub mod resident;
pub mod scheduler;
pub mod secret;
pub mod services;
pub mod store;
pub mod systemd;
pub mod telemetry;
