//! Snow plows: MQTT ingest (Sonae JSON and OwnTracks), an optional embedded broker, latest positions and
//! trails in SQLite, cleared-road coverage per district, the resident map and the dispatcher data.
//!
//! # Layout
//! | module | owns | pure? |
//! | --- | --- | --- |
//! | [`payload`] | the two wire formats → [`payload::Message`] | yes |
//! | [`validate`] | per-vehicle checks: range, service area, clock skew, speed, duplicates | yes |
//! | [`coverage`] | road segments, spatial index, "plowed at" per segment, share per district | yes |
//! | [`notice`] | who gets the opt-in "a plow entered your district" notice | yes (+ SQL helpers) |
//! | [`store`] | SQL for positions, trails, segment passes, storms | I/O |
//! | [`ingest`] | the rumqttc loop and the batching pipeline | I/O |
//! | [`broker`] | the embedded rumqttd broker | I/O |
//! | [`replay`] | demo fleet driving real roads over MQTT | I/O |
//! | [`resident`] | LINE webhook handlers for 「除雪通知」 / 「除雪通知停止」 and the notice postbacks | I/O |
//! | [`web`] | `/plows`, `/api/plows/*` | I/O |

pub mod broker;
pub mod coverage;
pub mod ingest;
pub mod notice;
pub mod payload;
pub mod replay;
pub mod resident;
pub mod store;
pub mod validate;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context as _;
use serde::Deserialize;

use crate::secret::SecretSource;

/// `[plow]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PlowConfig {
    /// Run the MQTT ingest and serve `/plows`.
    pub enabled: bool,
    /// Broker to subscribe to. With `embedded_broker = true` this is normally the embedded listener.
    pub broker_host: String,
    pub broker_port: u16,
    /// MQTT client id. Must be stable: the broker keeps the session (subscriptions and queued QoS 1
    /// messages) under this id while Sonae is disconnected.
    pub client_id: String,
    /// Broker user name; the password comes from `password`.
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub tls: PlowTlsConfig,
    /// Topic filters subscribed with QoS 1.
    pub topics: Vec<String>,
    /// Service area `[west, south, east, north]` in degrees; positions outside it (plus the margin) are rejected.
    pub service_area: [f64; 4],
    /// Metres added around the service area.
    pub service_area_margin_m: f64,
    /// Positions implying a faster move since the vehicle's previous position are rejected.
    pub max_speed_kmh: f64,
    /// Timestamps up to this many seconds in the future are accepted (GPS units with drifting clocks).
    pub clock_skew_secs: i64,
    /// A vehicle with no position for this long is shown as stale.
    pub stale_after_secs: i64,
    /// Trails older than this are deleted by a background task.
    pub trail_retention_days: i64,
    /// OwnTracks has no blade field: treat its positions as blade down (true) or unknown (false).
    pub owntracks_blade_down: bool,
    /// Road network (GeoJSON LineStrings). Empty: no coverage, vehicles only.
    pub roads_file: Option<PathBuf>,
    /// Districts (GeoJSON Polygons/MultiPolygons). Empty: one district for the whole city.
    pub districts_file: Option<PathBuf>,
    /// Property names holding each district's id and name.
    pub district_id_property: String,
    pub district_name_property: String,
    /// A position within this many metres of a segment, heading along it, marks the segment plowed.
    pub match_distance_m: f64,
    /// Allowed difference between the vehicle's heading and the segment's direction (either way), degrees.
    pub match_heading_deg: f64,
    /// Retired: Leaflet is compiled into sonae (`assets`). Still accepted so an old file loads; warned about.
    pub leaflet_dir: Option<serde::de::IgnoredAny>,
    /// Run an MQTT broker (rumqttd) inside the daemon. Only in a build with the cargo feature
    /// `embedded-broker` (the demo's); production runs mosquitto.
    pub embedded_broker: bool,
    /// Where the embedded broker listens.
    pub embedded_broker_listen: SocketAddr,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PlowTlsConfig {
    pub enabled: bool,
    /// PEM bundle of trusted CAs.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for brokers that require mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

impl Default for PlowConfig {
    fn default() -> Self {
        PlowConfig {
            enabled: false,
            broker_host: "127.0.0.1".into(),
            broker_port: 1883,
            client_id: "sonae-plow".into(),
            username: None,
            password: None,
            tls: PlowTlsConfig::default(),
            topics: vec!["sonae/plows/+/position".into(), "owntracks/+/+".into()],
            // 山形市 (N03 06201 outline's bounding box, rounded outwards).
            service_area: [140.17, 38.11, 140.52, 38.37],
            service_area_margin_m: 2000.0,
            max_speed_kmh: 120.0,
            clock_skew_secs: 120,
            stale_after_secs: 300,
            trail_retention_days: 7,
            owntracks_blade_down: true,
            roads_file: None,
            districts_file: None,
            district_id_property: "id".into(),
            district_name_property: "name".into(),
            match_distance_m: 25.0,
            match_heading_deg: 30.0,
            leaflet_dir: None,
            embedded_broker: false,
            embedded_broker_listen: "127.0.0.1:1883".parse().expect("valid address"),
        }
    }
}

impl PlowConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        let [w, s, e, n] = self.service_area;
        if !(-180.0..=180.0).contains(&w)
            || !(-180.0..=180.0).contains(&e)
            || !(-90.0..=90.0).contains(&s)
            || !(-90.0..=90.0).contains(&n)
            || w >= e
            || s >= n
        {
            p.push(format!(
                "plow.service_area: {:?} is not a box; write [west, south, east, north] in degrees, e.g. [140.17, 38.11, 140.52, 38.37]",
                self.service_area
            ));
        }
        if !(0.0..=50_000.0).contains(&self.service_area_margin_m) {
            p.push(format!(
                "plow.service_area_margin_m: {} is out of range; use 0..=50000",
                self.service_area_margin_m
            ));
        }
        if !(5.0..=300.0).contains(&self.max_speed_kmh) {
            p.push(format!(
                "plow.max_speed_kmh: {} is out of range; use 5..=300 (plows rarely exceed 60)",
                self.max_speed_kmh
            ));
        }
        if !(0..=3600).contains(&self.clock_skew_secs) {
            p.push(format!(
                "plow.clock_skew_secs: {} is out of range; use 0..=3600",
                self.clock_skew_secs
            ));
        }
        if !(10..=86_400).contains(&self.stale_after_secs) {
            p.push(format!(
                "plow.stale_after_secs: {} is out of range; use 10..=86400 (default 300)",
                self.stale_after_secs
            ));
        }
        if !(1..=366).contains(&self.trail_retention_days) {
            p.push(format!(
                "plow.trail_retention_days: {} is out of range; use 1..=366 (default 7)",
                self.trail_retention_days
            ));
        }
        if self.topics.is_empty() {
            p.push("plow.topics: is empty; subscribe at least \"sonae/plows/+/position\"".into());
        }
        for (i, t) in self.topics.iter().enumerate() {
            if t.is_empty() || t.contains('#') && !t.ends_with('#') {
                p.push(format!(
                    "plow.topics[{i}]: \"{t}\" is not a valid MQTT topic filter; e.g. \"sonae/plows/+/position\""
                ));
            }
        }
        if self.client_id.is_empty() || self.client_id.len() > 23 {
            p.push(format!(
                "plow.client_id: \"{}\" must be 1 to 23 characters (MQTT 3.1.1)",
                self.client_id
            ));
        }
        if self.embedded_broker && !broker::EMBEDDED {
            p.push(
                "plow.embedded_broker: this sonae is built without the embedded MQTT broker (cargo feature \
                 `embedded-broker`); run mosquitto (`apt install mosquitto`, see README \"Snow plows\") and point \
                 plow.broker_host/broker_port at it, or set embedded_broker = false"
                    .into(),
            );
        }
        if self.username.is_some() != self.password.is_some() {
            p.push("plow.username / plow.password: set both or neither".into());
        }
        if !(5.0..=200.0).contains(&self.match_distance_m) {
            p.push(format!(
                "plow.match_distance_m: {} is out of range; use 5..=200 (default 25)",
                self.match_distance_m
            ));
        }
        if !(1.0..=90.0).contains(&self.match_heading_deg) {
            p.push(format!(
                "plow.match_heading_deg: {} is out of range; use 1..=90 (default 30)",
                self.match_heading_deg
            ));
        }
        if self.tls.client_cert_file.is_some() != self.tls.client_key_file.is_some() {
            p.push(
                "plow.tls.client_cert_file / plow.tls.client_key_file: set both or neither".into(),
            );
        }
        p
    }
}

/// The plow state shared by the ingest tasks and the HTTP handlers.
pub struct Plow {
    pub config: PlowConfig,
    /// `None` without a road network: vehicles and trails only.
    pub coverage: Option<Mutex<coverage::Coverage>>,
    pub storm: Mutex<Option<store::Storm>>,
    pub connected: AtomicBool,
    /// The outbox sender's wake-up, woken after a batch enqueued notices (set by `app`; without it the
    /// sender still finds them at its next idle poll, 250 ms).
    pub outbox_wake: OnceLock<Arc<tokio::sync::Notify>>,
}

impl std::fmt::Debug for Plow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plow")
            .field("enabled", &self.config.enabled)
            .finish()
    }
}

impl Plow {
    /// Loads the road network and districts named in the config (when enabled).
    pub fn load(config: &PlowConfig) -> anyhow::Result<Plow> {
        let network = match (&config.roads_file, config.enabled) {
            (Some(roads), true) => {
                let text = std::fs::read_to_string(roads)
                    .with_context(|| format!("plow.roads_file: cannot read {}", roads.display()))?;
                let districts = match &config.districts_file {
                    Some(d) => {
                        let dt = std::fs::read_to_string(d).with_context(|| {
                            format!("plow.districts_file: cannot read {}", d.display())
                        })?;
                        Some(
                            coverage::load_districts(
                                &dt,
                                &config.district_id_property,
                                &config.district_name_property,
                            )
                            .with_context(|| format!("plow.districts_file: {}", d.display()))?,
                        )
                    }
                    None => None,
                };
                Some(Arc::new(
                    coverage::RoadNetwork::from_geojson(&text, districts)
                        .with_context(|| format!("plow.roads_file: {}", roads.display()))?,
                ))
            }
            _ => None,
        };
        Ok(Plow::new(config.clone(), network))
    }

    pub fn new(config: PlowConfig, network: Option<Arc<coverage::RoadNetwork>>) -> Plow {
        let coverage = network.map(|n| {
            Mutex::new(coverage::Coverage::new(
                n,
                config.match_distance_m,
                config.match_heading_deg,
            ))
        });
        Plow {
            config,
            coverage,
            storm: Mutex::new(None),
            connected: AtomicBool::new(false),
            outbox_wake: OnceLock::new(),
        }
    }

    /// Starts or ends a storm (audited as `actor`) and updates coverage. Reusable by the console's handlers.
    pub async fn change_storm(
        &self,
        store: &crate::store::Store,
        start: bool,
        actor: &str,
        note: &str,
    ) -> anyhow::Result<store::StormChange> {
        let now = ingest::now_ms();
        let (actor, note) = (actor.to_string(), note.to_string());
        let change = store
            .write(move |tx| {
                if start {
                    store::start_storm(tx, now, &actor, &note)
                } else {
                    store::end_storm(tx, now, &actor)
                }
            })
            .await?;
        let current = match &change {
            store::StormChange::Started(s) => Some(Some(s.clone())),
            store::StormChange::Ended(_) => Some(None),
            _ => None,
        };
        if let Some(current) = current {
            if let Some(c) = &self.coverage {
                c.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set_storm(current.as_ref().map(|s| s.started_ms), &[]);
            }
            *self.storm.lock().unwrap_or_else(|p| p.into_inner()) = current;
        }
        Ok(change)
    }
}

/// Starts the plow parts: the embedded broker (if configured), the MQTT ingest task, and two scheduled jobs
/// (vehicle-state gauges every minute, trail pruning every 10 minutes). Does nothing when
/// `[plow] enabled = false`.
pub async fn spawn(infra: &crate::infra::Infra, plow: Arc<Plow>) -> anyhow::Result<()> {
    if !plow.config.enabled {
        return Ok(());
    }
    let password = match &plow.config.password {
        Some(src) => Some(src.load("plow.password").map_err(anyhow::Error::msg)?),
        None => None,
    };
    if plow.config.embedded_broker {
        let creds = plow
            .config
            .username
            .clone()
            .zip(password.as_ref().map(|p| p.expose().to_string()));
        let listen = plow.config.embedded_broker_listen;
        tokio::task::spawn_blocking(move || broker::start_embedded(listen, creds))
            .await
            .context("embedded broker start-up panicked")??;
    }
    let (p, store, metrics, health, shutdown) = (
        plow.clone(),
        infra.store.clone(),
        infra.metrics.clone(),
        infra.health.clone(),
        infra.shutdown.clone(),
    );
    infra.tasks.spawn(async move {
        if let Err(e) = ingest::run(
            p,
            store.clone(),
            metrics,
            health.clone(),
            password,
            shutdown,
        )
        .await
        {
            tracing::error!(error = %format!("{e:#}"), "plow ingest stopped");
            health.set(
                "plow",
                crate::health::Status::Down,
                "除雪車の位置受信が停止しました",
            );
            store
                .record_problem(
                    "plow.ingest",
                    "除雪車の位置受信が停止しました".into(),
                    Some(format!("{e:#}")),
                )
                .await;
        }
    });
    use crate::scheduler::Job;
    let (p, store, metrics) = (plow.clone(), infra.store.clone(), infra.metrics.clone());
    infra.scheduler.add(Job::every(
        "plow.vehicle_gauges",
        std::time::Duration::from_secs(60),
        move || vehicle_gauges(p.clone(), store.clone(), metrics.clone()),
    ));
    let (store, metrics, shutdown) = (
        infra.store.clone(),
        infra.metrics.clone(),
        infra.shutdown.clone(),
    );
    infra.scheduler.add(Job::every(
        "plow.prune_trails",
        std::time::Duration::from_secs(600),
        move || {
            prune_trails(
                plow.config.trail_retention_days,
                store.clone(),
                metrics.clone(),
                shutdown.clone(),
            )
        },
    ));
    Ok(())
}

/// Vehicle-state gauges (`sonae_plow_vehicles{state}`).
async fn vehicle_gauges(
    plow: Arc<Plow>,
    store: crate::store::Store,
    metrics: Arc<crate::metrics::Metrics>,
) -> anyhow::Result<()> {
    let now = ingest::now_ms();
    let vs = store.read(store::vehicles).await?;
    let mut counts = [0usize; 3];
    for v in &vs {
        let st = validate::vehicle_state(v.ts_ms, v.offline_ms, now, plow.config.stale_after_secs);
        counts[st as usize] += 1;
    }
    for (label, c) in ["active", "stale", "offline"].iter().zip(counts) {
        metrics.set(
            "sonae_plow_vehicles",
            "Plow vehicles by state.",
            &[("state", label)],
            c as f64,
        );
    }
    Ok(())
}

/// Deletes trail points older than the retention period, in chunks of 10 000 rows so the writer is never
/// held long; stops between chunks when the daemon stops.
async fn prune_trails(
    retention_days: i64,
    store: crate::store::Store,
    metrics: Arc<crate::metrics::Metrics>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let before = ingest::now_ms() - retention_days * 86_400_000;
    loop {
        let k = store
            .write(move |tx| store::prune(tx, before, 10_000))
            .await
            .context("pruning plow trails")?;
        if k == 0 || shutdown.is_cancelled() {
            return Ok(());
        }
        metrics.add(
            "sonae_plow_trail_pruned_total",
            "Trail points deleted after the retention period.",
            &[],
            k as f64,
        );
    }
}

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// RFC 3339 text (UTC, seconds) for a millisecond timestamp.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_plow_config_is_valid() {
        assert!(PlowConfig::default().validate().is_empty());
    }

    #[test]
    fn an_inverted_service_area_is_reported_with_an_example() {
        let c = PlowConfig {
            service_area: [140.5, 38.1, 140.1, 38.3],
            ..PlowConfig::default()
        };
        let p = c.validate();
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("plow.service_area:"), "{p:?}");
    }
}
