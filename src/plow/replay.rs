//! Demo fleet: a few vehicles driving the real road network, publishing Sonae JSON positions over MQTT once a
//! second, so the map in `sonae demo` moves.
//!
//! Each vehicle walks the road graph: segments whose ends coincide (to 1e-6°, ≈ 10 cm) are joined; at each
//! node the vehicle takes a pseudo-random next segment, avoiding a U-turn where it can. It drives at
//! [`SPEED_KMH`] with the blade down, so the roads it passes turn green on the map.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;

use super::coverage::RoadNetwork;

/// Demo plows drive at this speed.
pub const SPEED_KMH: f64 = 25.0;
/// Vehicles in the demo fleet.
pub const FLEET: usize = 4;

type NodeKey = (i64, i64);
/// An edge leaving a node: segment id, this end, the far end.
type Edge = (u32, [f64; 2], [f64; 2]);

fn node(p: [f64; 2]) -> NodeKey {
    ((p[0] * 1e6).round() as i64, (p[1] * 1e6).round() as i64)
}

/// The road graph: for each node, the segments touching it (with the far end).
pub struct Graph {
    adj: HashMap<NodeKey, Vec<Edge>>,
}

impl Graph {
    pub fn new(net: &RoadNetwork) -> Graph {
        let mut adj: HashMap<NodeKey, Vec<Edge>> = HashMap::new();
        for (i, s) in net.segments.iter().enumerate() {
            adj.entry(node(s.a)).or_default().push((i as u32, s.a, s.b));
            adj.entry(node(s.b)).or_default().push((i as u32, s.b, s.a));
        }
        Graph { adj }
    }

    /// Next edge from `at`, not `came_by` unless it is the only one. `r` picks among the choices.
    fn next(&self, at: [f64; 2], came_by: Option<u32>, r: u64) -> Option<Edge> {
        let edges = self.adj.get(&node(at))?;
        let choices: Vec<_> = edges.iter().filter(|e| Some(e.0) != came_by).collect();
        if choices.is_empty() {
            return edges.first().copied();
        }
        Some(*choices[(r % choices.len() as u64) as usize])
    }
}

/// A vehicle's position along its walk, advanced by time.
pub struct Walker {
    pub vehicle: String,
    from: [f64; 2],
    to: [f64; 2],
    edge: u32,
    along_m: f64,
    rng: u64,
}

fn seg_len_m(a: [f64; 2], b: [f64; 2]) -> f64 {
    super::validate::distance_m(a[1], a[0], b[1], b[0])
}

impl Walker {
    pub fn new(
        vehicle: String,
        net: &RoadNetwork,
        start_segment: usize,
        seed: u64,
    ) -> Option<Walker> {
        let s = net.segments.get(start_segment)?;
        Some(Walker {
            vehicle,
            from: s.a,
            to: s.b,
            edge: start_segment as u32,
            along_m: 0.0,
            rng: seed | 1,
        })
    }

    fn rand(&mut self) -> u64 {
        // xorshift64: deterministic, good enough to pick a street.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Moves `metres` along the graph; returns `(lat, lon, heading)`.
    pub fn advance(&mut self, graph: &Graph, metres: f64) -> (f64, f64, f64) {
        self.along_m += metres;
        for _ in 0..1000 {
            let len = seg_len_m(self.from, self.to);
            if self.along_m <= len {
                break;
            }
            self.along_m -= len;
            let r = self.rand();
            match graph.next(self.to, Some(self.edge), r) {
                Some((e, from, to)) => {
                    self.edge = e;
                    self.from = from;
                    self.to = to;
                }
                None => {
                    // Dead end without edges (cannot happen for a node we arrived at); turn around.
                    std::mem::swap(&mut self.from, &mut self.to);
                }
            }
        }
        let len = seg_len_m(self.from, self.to).max(0.01);
        let f = (self.along_m / len).clamp(0.0, 1.0);
        let lon = self.from[0] + (self.to[0] - self.from[0]) * f;
        let lat = self.from[1] + (self.to[1] - self.from[1]) * f;
        let dx = (self.to[0] - self.from[0]) * lat.to_radians().cos();
        let dy = self.to[1] - self.from[1];
        let heading = dx.atan2(dy).to_degrees().rem_euclid(360.0);
        (lat, lon, heading)
    }
}

/// Publishes a demo fleet of [`FLEET`] vehicles to the broker at `broker_addr` until `shutdown`.
pub fn spawn_demo_fleet(
    broker_addr: SocketAddr,
    roads: Arc<RoadNetwork>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut opts = MqttOptions::new(
            "sonae-demo-fleet",
            broker_addr.ip().to_string(),
            broker_addr.port(),
        );
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let driver = shutdown.clone();
        let poller = tokio::spawn(async move {
            loop {
                // Cancel-safety: dropping `poll` on shutdown loses only demo positions.
                tokio::select! {
                    _ = driver.cancelled() => return,
                    ev = eventloop.poll() => if ev.is_err() {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    },
                }
            }
        });
        let graph = Graph::new(&roads);
        let n = roads.segments.len().max(1);
        let mut walkers: Vec<Walker> = (0..FLEET)
            .filter_map(|i| {
                Walker::new(
                    format!("demo-{}", i + 1),
                    &roads,
                    (i * n / FLEET + n / 7) % n,
                    0x9e37_79b9 + i as u64,
                )
            })
            .collect();
        let step_m = SPEED_KMH / 3.6;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            // Cancel-safety: nothing is held across the tick.
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            for w in &mut walkers {
                let (lat, lon, heading) = w.advance(&graph, step_m);
                let payload = serde_json::json!({
                    "vehicle": w.vehicle, "lat": lat, "lon": lon, "ts": ts,
                    "speed_kmh": SPEED_KMH, "heading": (heading * 10.0).round() / 10.0, "blade": "down",
                });
                let topic = format!("sonae/plows/{}/position", w.vehicle);
                if client
                    .try_publish(topic, QoS::AtLeastOnce, false, payload.to_string())
                    .is_err()
                {
                    tracing::debug!("demo fleet: publish queue full; skipping a tick");
                }
            }
        }
        let _ = client.try_disconnect();
        let _ = poller.await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walker_stays_on_the_road_network_and_keeps_moving() {
        let roads = include_str!("../../tests/fixtures/plow/sapporo-odori-excerpt.geojson");
        let net = RoadNetwork::from_geojson(roads, None).unwrap();
        let graph = Graph::new(&net);
        let mut w = Walker::new("demo-1".into(), &net, 0, 42).unwrap();
        let mut last = (0.0, 0.0);
        for _ in 0..600 {
            let (lat, lon, _) = w.advance(&graph, 7.0);
            let on_road = net.near(lat, lon, 1.0).next().is_some();
            assert!(on_road, "walker left the road at {lat},{lon}");
            assert!((lat, lon) != last, "walker is stuck");
            last = (lat, lon);
        }
    }
}
