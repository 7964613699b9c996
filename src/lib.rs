//! Sonae (備え): a city's disaster-alerting and LINE Official Account daemon.
//!
//! # Layout
//! Layers only point down (checked by `tests/it/layers.rs`; ARCHITECTURE.md, "Layers, and where new code
//! goes"):
//!
//! | layer | modules |
//! | --- | --- |
//! | wiring | [`app`] (context, services list, public and admin routers, shutdown), [`demo`], [`cli`] |
//! | configuration | [`config`] (the TOML file, assembled from the features' sections; `preflight`: what the start refuses) |
//! | console | [`console`] (login, dashboard, hold, shelters, audit, problems, plows, `/api/status`) |
//! | features | [`disaster`] (policy, pure engine, composition, cycle), [`plow`] (ingest, coverage, maps, notices), [`cap`] (CAP 1.2 feed of the alerts sent) |
//! | adapters | [`line`] (client, webhook, event routing, rich menus), [`services`] (resident-services registry), [`resident`] (residents, topics, registration), [`delivery`] (the durable outbox and its sender) |
//! | domain | [`mode`], [`jma`] (feeds, state; parser in `jma-xml`), [`place`] (districts, shelters, links) |
//! | foundation | [`infra`], [`scheduler`], [`store`], [`telemetry`], [`metrics`], [`health`], [`secret`], [`ids`], [`systemd`], [`backoff`] (the one retry-wait rule), [`jst`] (Japan time), [`assets`] (embedded Leaflet), [`text`] (Japanese text: CSV encodings, name matching) |
//!
//! See ARCHITECTURE.md for how the parts fit together.

pub mod app;
pub mod assets;
pub mod backoff;
pub mod cap;
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
pub mod jst;
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
pub mod text;
