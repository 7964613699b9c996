//! MQTT ingest: a rumqttc connection feeding a batching pipeline (parse → validate → coverage → SQLite).
//!
//! # Design constraints
//! * **Two tasks, one bounded queue.** The MQTT task only polls the event loop and forwards publishes into a
//!   queue of [`QUEUE`] messages; the pipeline task drains up to [`BATCH`] at a time and writes them in one
//!   transaction. When the queue is full the MQTT task waits (it stops reading the socket, the broker holds
//!   the QoS 1 backlog): positions are never dropped for lack of room.
//! * **At-least-once in, exactly-once applied.** Subscriptions are QoS 1 with a persistent session
//!   (`clean_session = false`, stable `client_id`), so the broker queues positions while Sonae is away and
//!   redelivers unacknowledged ones. Redeliveries are caught by the validator (recent timestamps) and by the
//!   `(vehicle, ts_ms)` primary key. rumqttc acknowledges on receipt, so a crash (not a clean stop) can lose
//!   at most the queued, unwritten positions — at most [`QUEUE`] + [`BATCH`], a few seconds of fleet data; a
//!   position is not an alert.
//! * **Resubscribe on every ConnAck.** After a broker restart without persistence the session is gone; the
//!   subscriptions are sent again on each ConnAck, so nothing depends on the broker remembering them.
//! * **Reconnect with backoff** ([`crate::backoff`], full jitter) 0.5 s doubling to 10 s; the `plow` health component is degraded while
//!   disconnected.
//! * **Never crash on garbage.** Every rejection is counted on `sonae_plow_rejected_total{reason}`, logged at
//!   most once a minute per reason and recorded as an operator problem at most once per 10 minutes per reason.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::payload::{self, Message, Reject};
use super::store::{Accepted, Batch};
use super::validate::{RateLimiter, Validator, Verdict};
use super::{Millis, Plow};
use crate::health::{Health, Status};
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::store::Store;

/// Messages waiting between the MQTT task and the pipeline.
pub const QUEUE: usize = 8192;
/// Most messages written in one transaction (one fsync per batch; 4096 rows take ~10 ms).
pub const BATCH: usize = 4096;
const LOG_EVERY_MS: Millis = 60_000;
const PROBLEM_EVERY_MS: Millis = 600_000;

pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// The part that turns raw publishes into stored rows. Public so benchmarks and tests drive it directly.
pub struct Pipeline {
    plow: Arc<Plow>,
    store: Store,
    metrics: Arc<Metrics>,
    validator: Validator,
    log_limit: RateLimiter<Reject>,
    problem_limit: RateLimiter<Reject>,
}

/// A rejection to report after the batch (problems are written outside the batch transaction).
struct Problem {
    reason: Reject,
    topic: String,
    excerpt: String,
}

fn excerpt(payload: &[u8]) -> String {
    let s = String::from_utf8_lossy(&payload[..payload.len().min(200)]);
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Pipeline {
    /// Seeds the validator with every vehicle's last position, restores segment passes and the open storm.
    pub async fn new(
        plow: Arc<Plow>,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Pipeline> {
        let mut validator = Validator::new(&plow.config);
        let (vehicles, passes, storm) = store
            .read(|c| {
                Ok((
                    super::store::vehicles(c)?,
                    super::store::passes(c)?,
                    super::store::current_storm(c)?,
                ))
            })
            .await?;
        for v in &vehicles {
            validator.seed(&v.vehicle, v.ts_ms, v.lat, v.lon);
        }
        if let Some(cov) = &plow.coverage {
            let entered = match &storm {
                Some(s) => {
                    let id = s.id;
                    store
                        .read(move |c| super::store::entered_districts(c, id))
                        .await?
                }
                None => vec![],
            };
            let mut cov = cov.lock().unwrap_or_else(|p| p.into_inner());
            let restored = cov.restore(passes);
            let idx: Vec<usize> = entered
                .iter()
                .filter_map(|d| cov.net.districts.iter().position(|x| &x.id == d))
                .collect();
            cov.set_storm(storm.as_ref().map(|s| s.started_ms), &idx);
            tracing::info!(
                segments = cov.net.segments.len(),
                restored,
                "plow coverage loaded"
            );
        }
        *plow.storm.lock().unwrap_or_else(|p| p.into_inner()) = storm;
        for r in Reject::ALL {
            metrics.add(REJECTED, REJECTED_HELP, &[("reason", r.label())], 0.0);
        }
        metrics.add(DUPLICATES, DUPLICATES_HELP, &[], 0.0);
        Ok(Pipeline {
            plow,
            store,
            metrics,
            validator,
            log_limit: RateLimiter::new(LOG_EVERY_MS),
            problem_limit: RateLimiter::new(PROBLEM_EVERY_MS),
        })
    }

    /// Parses, validates and applies a batch of publishes, then writes it in one transaction.
    pub async fn handle(&mut self, msgs: &[(String, Bytes)], now: Millis) -> anyhow::Result<()> {
        let (batch, problems, entered, storm) = self.prepare(msgs, now);
        self.write(batch, entered, storm, now).await?;
        for p in problems {
            self.reject(p, now).await;
        }
        Ok(())
    }

    /// The synchronous part: parse, validate, apply to coverage (one lock for the whole batch).
    #[allow(clippy::type_complexity)]
    fn prepare(
        &mut self,
        msgs: &[(String, Bytes)],
        now: Millis,
    ) -> (
        Batch,
        Vec<Problem>,
        Vec<(String, String)>,
        Option<super::store::Storm>,
    ) {
        let mut batch = Batch::default();
        let mut problems = Vec::new();
        let storm = self
            .plow
            .storm
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut cov = self
            .plow
            .coverage
            .as_ref()
            .map(|c| c.lock().unwrap_or_else(|p| p.into_inner()));
        let mut entered = Vec::new();
        // One row per segment per batch: a plow passing a segment re-marks it with every fix.
        let mut passes: HashMap<u32, Millis> = HashMap::new();
        for (topic, payload) in msgs {
            let msg = match payload::parse(topic, payload, self.plow.config.owntracks_blade_down) {
                Ok(m) => m,
                Err(r) => {
                    problems.push(Problem {
                        reason: r,
                        topic: topic.clone(),
                        excerpt: excerpt(payload),
                    });
                    continue;
                }
            };
            match msg {
                Message::Position(p) => match self.validator.check(&p, now) {
                    Verdict::Accept { newest } => {
                        if let Some(cov) = cov.as_mut() {
                            let applied =
                                cov.apply(&p.vehicle, p.ts_ms, p.lat, p.lon, p.heading, p.blade);
                            for (seg, at) in applied.plowed {
                                let e = passes.entry(seg).or_insert(at);
                                *e = (*e).max(at);
                            }
                            if let Some(d) = applied.entered_district {
                                let district = &cov.net.districts[d];
                                entered.push((district.id.clone(), district.name.clone()));
                                batch.entries.push((
                                    district.id.clone(),
                                    p.ts_ms,
                                    p.vehicle.clone(),
                                ));
                            }
                        }
                        batch.positions.push(Accepted {
                            position: p,
                            newest,
                        });
                    }
                    Verdict::Duplicate => self.metrics.inc(DUPLICATES, DUPLICATES_HELP, &[]),
                    Verdict::Reject(r) => problems.push(Problem {
                        reason: r,
                        topic: topic.clone(),
                        excerpt: excerpt(payload),
                    }),
                },
                Message::Offline { vehicle, ts_ms } => {
                    batch.offline.push((vehicle, ts_ms.unwrap_or(now)))
                }
                Message::Ignored(what) => self.metrics.inc(
                    "sonae_plow_ignored_total",
                    "Well-formed MQTT messages Sonae has no use for (other OwnTracks types).",
                    &[("what", what)],
                ),
            }
        }
        if let Some(cov) = cov.as_ref() {
            batch.passes = passes
                .into_iter()
                .map(|(seg, at)| (cov.net.segments[seg as usize].key(), at))
                .collect();
        }
        // Only the newest accepted position per vehicle in this batch updates its latest row.
        let mut newest: HashMap<&str, usize> = HashMap::new();
        for (i, a) in batch.positions.iter().enumerate() {
            if a.newest {
                newest.insert(&a.position.vehicle, i);
            }
        }
        let keep: Vec<usize> = newest.into_values().collect();
        for a in batch.positions.iter_mut() {
            a.newest = false;
        }
        for i in keep {
            batch.positions[i].newest = true;
        }
        (batch, problems, entered, storm)
    }

    async fn write(
        &mut self,
        batch: Batch,
        entered: Vec<(String, String)>,
        storm: Option<super::store::Storm>,
        now: Millis,
    ) -> anyhow::Result<()> {
        if !batch.is_empty() {
            let storm_id = storm.as_ref().map(|s| s.id);
            let passes = batch.passes.len();
            let entered_ids: Vec<String> = entered.iter().map(|(id, _)| id.clone()).collect();
            let written = self
                .store
                .write(move |tx| {
                    let out = super::store::write_batch(tx, &batch, storm_id, now)?;
                    // The claim (plow_notice_claims), the outbox rows and the district entry commit
                    // together with the positions, or none of them does (then `forget_entered` below lets
                    // the next fix in that district claim the notice).
                    let mut notices = 0usize;
                    if let Some(storm_id) = storm_id {
                        for (id, name) in &entered {
                            notices +=
                                super::notice::claim_and_enqueue(tx, storm_id, id, name, now)?;
                        }
                    }
                    Ok((out, batch, notices))
                })
                .await;
            let (outcome, batch, notices) = match written {
                Ok(w) => w,
                Err(e) => {
                    // Nothing of the batch was recorded, its district entries included: give them back to
                    // coverage so the next fix there claims the notices this batch would have.
                    if let Some(cov) = &self.plow.coverage {
                        let mut cov = cov.lock().unwrap_or_else(|p| p.into_inner());
                        for id in &entered_ids {
                            if let Some(d) = cov.net.districts.iter().position(|x| &x.id == id) {
                                cov.forget_entered(d);
                            }
                        }
                    }
                    return Err(e.context("writing plow positions"));
                }
            };
            if notices > 0 {
                if let Some(wake) = self.plow.outbox_wake.get() {
                    wake.notify_one();
                }
                self.metrics.add(
                    "sonae_plow_notices_total",
                    "Opt-in plow notices queued in the outbox (one per resident, district and storm).",
                    &[],
                    notices as f64,
                );
            }
            let owntracks = batch
                .positions
                .iter()
                .filter(|a| a.position.format == payload::Format::OwnTracks)
                .count();
            for (format, k) in [
                ("sonae", batch.positions.len() - owntracks),
                ("owntracks", owntracks),
            ] {
                self.metrics.add(
                    "sonae_plow_messages_total",
                    "Accepted plow positions by format (before the store's duplicate check).",
                    &[("format", format)],
                    k as f64,
                );
            }
            self.metrics.add(
                "sonae_plow_positions_total",
                "Plow positions stored.",
                &[],
                outcome.stored as f64,
            );
            self.metrics
                .add(DUPLICATES, DUPLICATES_HELP, &[], outcome.duplicates as f64);
            self.metrics.add(
                "sonae_plow_segment_passes_total",
                "Road segments marked plowed.",
                &[],
                passes as f64,
            );
        }
        Ok(())
    }

    async fn reject(&mut self, p: Problem, now: Millis) {
        self.metrics
            .inc(REJECTED, REJECTED_HELP, &[("reason", p.reason.label())]);
        if let Some(suppressed) = self.log_limit.allow(&p.reason, now) {
            tracing::warn!(
                reason = p.reason.label(),
                topic = %p.topic,
                suppressed_since_last = suppressed,
                "plow position rejected"
            );
        }
        if self.problem_limit.allow(&p.reason, now).is_some() {
            self.store
                .record_problem(
                    "plow.ingest",
                    format!("{}（理由: {}）", p.reason.describe_ja(), p.reason.label()),
                    Some(format!("topic: {}\npayload: {}", p.topic, p.excerpt)),
                )
                .await;
        }
    }
}

const REJECTED: &str = "sonae_plow_rejected_total";
const REJECTED_HELP: &str = "Plow MQTT messages rejected, by reason.";
const DUPLICATES: &str = "sonae_plow_duplicates_total";
const DUPLICATES_HELP: &str =
    "Plow positions received again (same vehicle and time) and applied once.";

/// Builds the rumqttc options from `[plow]`.
pub fn mqtt_options(plow: &Plow, password: Option<&Secret>) -> anyhow::Result<MqttOptions> {
    let c = &plow.config;
    let mut o = MqttOptions::new(&c.client_id, &c.broker_host, c.broker_port);
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(64 * 1024, 64 * 1024);
    o.set_request_channel_capacity(64);
    o.set_inflight(100);
    if let (Some(u), Some(p)) = (&c.username, password) {
        o.set_credentials(u, p.expose());
    }
    if c.tls.enabled {
        let ca_path = c
            .tls
            .ca_file
            .clone()
            .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
        let ca = std::fs::read(&ca_path)
            .with_context(|| format!("plow.tls.ca_file: cannot read {}", ca_path.display()))?;
        let client_auth = match (&c.tls.client_cert_file, &c.tls.client_key_file) {
            (Some(cert), Some(key)) => Some((
                std::fs::read(cert).with_context(|| {
                    format!("plow.tls.client_cert_file: cannot read {}", cert.display())
                })?,
                std::fs::read(key).with_context(|| {
                    format!("plow.tls.client_key_file: cannot read {}", key.display())
                })?,
            )),
            _ => None,
        };
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth,
        }));
    }
    Ok(o)
}

/// Runs the MQTT connection and the pipeline until `shutdown`.
pub async fn run(
    plow: Arc<Plow>,
    store: Store,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    password: Option<Secret>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut pipeline = Pipeline::new(plow.clone(), store, metrics.clone()).await?;
    let options = mqtt_options(&plow, password.as_ref())?;
    let (tx, mut rx) = mpsc::channel::<(String, Bytes)>(QUEUE);
    let mqtt = tokio::spawn(mqtt_loop(
        plow.clone(),
        options,
        tx,
        metrics,
        health,
        shutdown.clone(),
    ));
    let mut buf = Vec::with_capacity(BATCH);
    loop {
        // Cancel-safety: `recv_many` loses nothing when dropped; on shutdown the MQTT task drops the sender,
        // so this drains what is queued and ends with 0.
        let n = rx.recv_many(&mut buf, BATCH).await;
        if n == 0 {
            break;
        }
        if let Err(e) = pipeline.handle(&buf, now_ms()).await {
            // The store failed (disk full, I/O error): keep the daemon up, say so, and carry on with the next batch.
            tracing::error!(error = %format!("{e:#}"), lost = buf.len(), "plow batch not written");
            pipeline
                .store
                .record_problem(
                    "plow.ingest",
                    "除雪車の位置データをデータベースに保存できませんでした".into(),
                    Some(format!("{e:#}")),
                )
                .await;
        }
        buf.clear();
    }
    let _ = mqtt.await;
    Ok(())
}

async fn mqtt_loop(
    plow: Arc<Plow>,
    options: MqttOptions,
    tx: mpsc::Sender<(String, Bytes)>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let filters: Vec<SubscribeFilter> = plow
        .config
        .topics
        .iter()
        .map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce))
        .collect();
    let broker = format!("{}:{}", plow.config.broker_host, plow.config.broker_port);
    let mut failures = 0u32;
    let mut log_limit: RateLimiter<&'static str> = RateLimiter::new(LOG_EVERY_MS);
    health.set("plow", Status::Degraded, "MQTTブローカーに接続中");
    loop {
        // Cancel-safety: `poll` may be dropped mid-read on shutdown; the broker redelivers unacknowledged QoS 1
        // messages to the persistent session at the next start.
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                failures = 0;
                plow.connected
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                metrics.set(
                    "sonae_plow_mqtt_connected",
                    "1 while connected to the MQTT broker.",
                    &[],
                    1.0,
                );
                health.set("plow", Status::Ok, "");
                tracing::info!(%broker, session_present = ack.session_present, "connected to MQTT broker; subscribing");
                if let Err(e) = client.try_subscribe_many(filters.clone()) {
                    tracing::error!(error = %crate::telemetry::chain(&e), "could not queue the MQTT subscription");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let topic = p.topic.clone();
                // Cancel-safety: if shutdown wins, this one message is dropped unacknowledged-to-us but already
                // acknowledged to the broker; it is one position during a stop.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = tx.send((topic, p.payload)) => if r.is_err() { break },
                }
            }
            Ok(_) => {}
            Err(e) => {
                plow.connected
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                metrics.set(
                    "sonae_plow_mqtt_connected",
                    "1 while connected to the MQTT broker.",
                    &[],
                    0.0,
                );
                metrics.inc(
                    "sonae_plow_mqtt_disconnects_total",
                    "MQTT connection errors.",
                    &[],
                );
                health.set("plow", Status::Degraded, "MQTTブローカーに接続できません");
                failures = failures.saturating_add(1);
                let backoff = crate::backoff::full_jitter(
                    failures,
                    Duration::from_millis(500),
                    Duration::from_secs(10),
                );
                if let Some(suppressed) = log_limit.allow(&"conn", now_ms()) {
                    tracing::warn!(%broker, error = %crate::telemetry::chain(&e), retry_in_ms = backoff.as_millis() as u64, suppressed_since_last = suppressed, "MQTT connection lost; reconnecting");
                }
                // Cancel-safety: sleeping holds no state.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    let _ = client.try_disconnect();
    plow.connected
        .store(false, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::LineUserId;
    use crate::plow::coverage::RoadNetwork;
    use crate::plow::PlowConfig;

    const EXCERPT: &str = include_str!("../../tests/fixtures/plow/sapporo-odori-excerpt.geojson");
    const T0: Millis = 1_768_000_000_000;

    fn plow() -> Arc<Plow> {
        let config = PlowConfig {
            enabled: true,
            service_area: [141.33, 43.045, 141.38, 43.075],
            ..PlowConfig::default()
        };
        let net = RoadNetwork::from_geojson(EXCERPT, None).unwrap();
        Arc::new(Plow::new(config, Some(Arc::new(net))))
    }

    fn msg(vehicle: &str, ts_ms: Millis, lon: f64) -> (String, Bytes) {
        let ts = chrono::DateTime::from_timestamp_millis(ts_ms)
            .unwrap()
            .to_rfc3339();
        (
            format!("sonae/plows/{vehicle}/position"),
            Bytes::from(format!(
                r#"{{"vehicle":"{vehicle}","lat":43.06057,"lon":{lon},"ts":"{ts}","heading":259,"blade":"down"}}"#
            )),
        )
    }

    fn count(store: &Store) -> i64 {
        store
            .read_blocking(|c| {
                Ok(c.query_row("SELECT count(*) FROM plow_positions", [], |r| r.get(0))?)
            })
            .unwrap()
    }

    #[test]
    fn tls_options_name_the_unreadable_file() {
        let mut config = PlowConfig::default();
        config.tls.enabled = true;
        config.tls.ca_file = Some("/nonexistent/ca.pem".into());
        let p = Plow::new(config, None);
        let e = mqtt_options(&p, None).unwrap_err().to_string();
        assert_eq!(e, "plow.tls.ca_file: cannot read /nonexistent/ca.pem");
    }

    #[test]
    fn tls_options_accept_a_ca_and_a_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let w = |n: &str| {
            let p = dir.path().join(n);
            std::fs::write(
                &p,
                "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
            )
            .unwrap();
            Some(p)
        };
        let mut config = PlowConfig::default();
        config.tls.enabled = true;
        config.tls.ca_file = w("ca.pem");
        config.tls.client_cert_file = w("c.pem");
        config.tls.client_key_file = w("k.pem");
        config.username = Some("sonae".into());
        let p = Plow::new(config, None);
        let o = mqtt_options(&p, Some(&Secret::new("pw"))).unwrap();
        assert!(
            !o.clean_session(),
            "a persistent session keeps queued positions"
        );
        assert_eq!(o.credentials(), Some(("sonae".into(), "pw".into())));
        assert!(matches!(o.transport(), Transport::Tls(_)));
    }

    #[cfg(feature = "embedded-broker")]
    #[test]
    fn the_embedded_broker_reports_a_taken_port_by_its_config_key() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let e = crate::plow::broker::start_embedded(addr, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("plow.embedded_broker_listen: cannot listen on"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_redelivery_after_a_restart_is_applied_once_thanks_to_the_stored_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let batch = vec![msg("P1", T0, 141.3553), msg("P1", T0 + 2000, 141.3550)];
        let metrics = Arc::new(Metrics::new());
        let mut first = Pipeline::new(plow(), store.clone(), metrics.clone())
            .await
            .unwrap();
        first.handle(&batch, T0 + 5000).await.unwrap();
        assert_eq!(count(&store), 2);
        // A new process: the validator is seeded with the newest position only, so the older one is caught by the key.
        let metrics = Arc::new(Metrics::new());
        let mut second = Pipeline::new(plow(), store.clone(), metrics.clone())
            .await
            .unwrap();
        second.handle(&batch, T0 + 6000).await.unwrap();
        assert_eq!(count(&store), 2);
        assert_eq!(metrics.get(DUPLICATES, &[]), Some(2.0));
        assert_eq!(
            metrics.get("sonae_plow_positions_total", &[]),
            Some(0.0),
            "nothing new stored"
        );
    }

    /// (step key, recipients) of every plow notice in the outbox.
    fn outbox(store: &Store) -> Vec<(String, String)> {
        store
            .read_blocking(|c| {
                let mut st = c.prepare(
                    "SELECT a.step_key, b.recipients FROM delivery_alerts a
                     JOIN delivery_batches b ON b.alert_id = a.id WHERE a.source = 'plow' ORDER BY a.id",
                )?;
                let v = st
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(v)
            })
            .unwrap()
    }

    #[tokio::test]
    async fn entering_a_district_in_a_storm_queues_one_notice_per_subscriber_in_the_outbox_and_wakes_the_sender(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let p = plow();
        let wake = Arc::new(tokio::sync::Notify::new());
        assert!(p.outbox_wake.set(wake.clone()).is_ok());
        let resident = LineUserId::new(format!("U{:032x}", 7));
        let r = resident.clone();
        store
            .write(move |tx| {
                crate::resident::follow_tx(tx, &r)?;
                crate::plow::notice::subscribe(tx, &r, "all")
            })
            .await
            .unwrap();
        let metrics = Arc::new(Metrics::new());
        let mut pipe = Pipeline::new(p.clone(), store.clone(), metrics.clone())
            .await
            .unwrap();
        // Before any storm: no notice.
        pipe.handle(&[msg("P1", T0, 141.3553)], T0).await.unwrap();
        assert!(outbox(&store).is_empty());
        let storm = match p.change_storm(&store, true, "test", "").await.unwrap() {
            crate::plow::store::StormChange::Started(s) => s.id,
            other => panic!("{other:?}"),
        };
        let now = now_ms();
        pipe.handle(
            &[
                msg("P1", now - 2000, 141.3550),
                msg("P2", now - 1000, 141.3540),
            ],
            now,
        )
        .await
        .unwrap();
        // Fixes from before the storm's start do not count as entering.
        assert!(outbox(&store).is_empty());
        pipe.handle(&[msg("P1", now, 141.3547)], now).await.unwrap();
        // The sender was woken (a stored permit: `notified` completes at once).
        tokio::time::timeout(std::time::Duration::from_secs(5), wake.notified())
            .await
            .expect("the outbox sender is woken after the commit");
        pipe.handle(&[msg("P1", now + 1000, 141.3545)], now + 1000)
            .await
            .unwrap();
        let sent = outbox(&store);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(
            sent[0].0.starts_with(&format!("plow-notice/{storm}/all/")),
            "{sent:?}"
        );
        assert_eq!(sent[0].1, resident.as_str());
        assert_eq!(metrics.get("sonae_plow_notices_total", &[]), Some(1.0));
        // The resident opts out; a new storm notifies nobody.
        store
            .write(move |tx| crate::plow::notice::unsubscribe(tx, &resident, None))
            .await
            .unwrap();
        p.change_storm(&store, false, "test", "").await.unwrap();
        p.change_storm(&store, true, "test", "").await.unwrap();
        let now = now_ms() + 1000;
        pipe.handle(&[msg("P1", now, 141.3544)], now).await.unwrap();
        assert_eq!(outbox(&store).len(), 1);
    }

    #[tokio::test]
    async fn a_batch_whose_write_fails_does_not_lose_the_district_entry_or_its_notice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let p = plow();
        let resident = LineUserId::new(format!("U{:032x}", 9));
        store
            .write(move |tx| {
                crate::resident::follow_tx(tx, &resident)?;
                crate::plow::notice::subscribe(tx, &resident, "all")
            })
            .await
            .unwrap();
        let mut pipe = Pipeline::new(p.clone(), store.clone(), Arc::new(Metrics::new()))
            .await
            .unwrap();
        p.change_storm(&store, true, "test", "").await.unwrap();
        // The disk "fills up" for one batch.
        store
            .write(|tx| {
                tx.execute_batch(
                    "CREATE TRIGGER fail BEFORE INSERT ON plow_positions BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let now = now_ms() + 1000;
        assert!(pipe.handle(&[msg("P1", now, 141.3550)], now).await.is_err());
        assert!(outbox(&store).is_empty());
        store
            .write(|tx| {
                tx.execute_batch("DROP TRIGGER fail")?;
                Ok(())
            })
            .await
            .unwrap();
        pipe.handle(&[msg("P1", now + 2000, 141.3547)], now + 2000)
            .await
            .unwrap();
        assert_eq!(outbox(&store).len(), 1, "the next fix claims the notice");
    }
}
