//! Per-vehicle checks on parsed positions, without I/O: service area, clock skew, plausible speed, duplicates.
//!
//! Time is an input (`now_ms`), so tests give any clock. Also home of the pure "stale" rule and the
//! rate limiter used for rejection logs.
//!
//! Duplicates: a QoS 1 redelivery (or a fleet server's retry) repeats the same vehicle and timestamp. The
//! validator remembers the last [`RECENT`] timestamps per vehicle and answers [`Verdict::Duplicate`]; the
//! store's primary key `(vehicle, ts_ms)` catches any older repeat (after a restart, say), so a position is
//! applied once either way.

use std::collections::{HashMap, VecDeque};

use super::payload::{Position, Reject};
use super::{Millis, PlowConfig};

/// Timestamps remembered per vehicle for duplicate detection (≈ 1 min of history at 1 Hz).
pub const RECENT: usize = 64;
/// Moves shorter than this are never "too fast": GPS fixes jitter by tens of metres.
pub const JITTER_M: f64 = 50.0;
/// Vehicles tracked at most; beyond that the longest-silent vehicle is forgotten (a fleet is a few hundred).
pub const MAX_VEHICLES: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
}

impl Area {
    /// The configured box grown by `margin_m` metres on every side.
    pub fn with_margin(b: [f64; 4], margin_m: f64) -> Area {
        let mid_lat = (b[1] + b[3]) / 2.0;
        let dlat = margin_m / 111_320.0;
        let dlon = margin_m / (111_320.0 * mid_lat.to_radians().cos().max(0.01));
        Area {
            west: b[0] - dlon,
            south: b[1] - dlat,
            east: b[2] + dlon,
            north: b[3] + dlat,
        }
    }

    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.south..=self.north).contains(&lat) && (self.west..=self.east).contains(&lon)
    }
}

/// Great-circle distance in metres (haversine, mean Earth radius).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * a.sqrt().asin()
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Apply it. `newest` is false for a late (out-of-order) position: it joins the trail but does not move
    /// the vehicle's marker back.
    Accept {
        newest: bool,
    },
    /// Same vehicle and timestamp as one already applied.
    Duplicate,
    Reject(Reject),
}

#[derive(Debug)]
struct Track {
    ts_ms: Millis,
    lat: f64,
    lon: f64,
    recent: VecDeque<Millis>,
}

#[derive(Debug)]
pub struct Validator {
    area: Area,
    max_speed_kmh: f64,
    skew_ms: Millis,
    tracks: HashMap<String, Track>,
}

impl Validator {
    pub fn new(config: &PlowConfig) -> Validator {
        Validator {
            area: Area::with_margin(config.service_area, config.service_area_margin_m),
            max_speed_kmh: config.max_speed_kmh,
            skew_ms: config.clock_skew_secs * 1000,
            tracks: HashMap::new(),
        }
    }

    /// Seeds a vehicle's last known position (from the store at start-up), so speed checks continue.
    pub fn seed(&mut self, vehicle: &str, ts_ms: Millis, lat: f64, lon: f64) {
        let mut recent = VecDeque::with_capacity(RECENT);
        recent.push_back(ts_ms);
        self.tracks.insert(
            vehicle.to_string(),
            Track {
                ts_ms,
                lat,
                lon,
                recent,
            },
        );
    }

    pub fn vehicles(&self) -> usize {
        self.tracks.len()
    }

    /// Checks `p` against the area, the clock and the vehicle's history; on acceptance, records it.
    pub fn check(&mut self, p: &Position, now_ms: Millis) -> Verdict {
        if !self.area.contains(p.lat, p.lon) {
            return Verdict::Reject(Reject::OutsideArea);
        }
        if p.ts_ms > now_ms + self.skew_ms {
            return Verdict::Reject(Reject::FutureTimestamp);
        }
        let Some(t) = self.tracks.get_mut(&p.vehicle) else {
            if self.tracks.len() >= MAX_VEHICLES {
                self.evict_oldest();
            }
            self.seed(&p.vehicle, p.ts_ms, p.lat, p.lon);
            return Verdict::Accept { newest: true };
        };
        if t.recent.contains(&p.ts_ms) {
            return Verdict::Duplicate;
        }
        let dist = distance_m(t.lat, t.lon, p.lat, p.lon);
        let dt_s = ((p.ts_ms - t.ts_ms).abs() as f64 / 1000.0).max(1.0);
        if dist > JITTER_M && dist / dt_s * 3.6 > self.max_speed_kmh {
            return Verdict::Reject(Reject::ImplausibleSpeed);
        }
        if t.recent.len() == RECENT {
            t.recent.pop_front();
        }
        t.recent.push_back(p.ts_ms);
        let newest = p.ts_ms > t.ts_ms;
        if newest {
            t.ts_ms = p.ts_ms;
            t.lat = p.lat;
            t.lon = p.lon;
        }
        Verdict::Accept { newest }
    }

    fn evict_oldest(&mut self) {
        if let Some(k) = self
            .tracks
            .iter()
            .min_by_key(|(_, t)| t.ts_ms)
            .map(|(k, _)| k.clone())
        {
            self.tracks.remove(&k);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VehicleState {
    Active,
    /// No position for `stale_after_secs`.
    Stale,
    /// The device's last will arrived after its last position.
    Offline,
}

/// A vehicle's state at `now_ms`: offline if its last will came after its last position, stale if silent for
/// at least `stale_after_secs`, active otherwise.
pub fn vehicle_state(
    last_ts_ms: Millis,
    offline_at_ms: Option<Millis>,
    now_ms: Millis,
    stale_after_secs: i64,
) -> VehicleState {
    if offline_at_ms.is_some_and(|o| o >= last_ts_ms) {
        VehicleState::Offline
    } else if now_ms - last_ts_ms >= stale_after_secs * 1000 {
        VehicleState::Stale
    } else {
        VehicleState::Active
    }
}

/// At most one event per key per `interval_ms`; counts what it suppressed in between.
#[derive(Debug)]
pub struct RateLimiter<K> {
    interval_ms: Millis,
    last: HashMap<K, (Millis, u64)>,
}

impl<K: std::hash::Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(interval_ms: Millis) -> Self {
        RateLimiter {
            interval_ms,
            last: HashMap::new(),
        }
    }

    /// `Some(suppressed since the last allowed event)` when the event may go out now, `None` to suppress it.
    pub fn allow(&mut self, key: &K, now_ms: Millis) -> Option<u64> {
        match self.last.get_mut(key) {
            Some((at, suppressed)) if now_ms - *at < self.interval_ms => {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                let n = *suppressed;
                *at = now_ms;
                *suppressed = 0;
                Some(n)
            }
            None => {
                self.last.insert(key.clone(), (now_ms, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plow::payload::{Blade, Format};

    const T0: Millis = 1_768_000_000_000;

    fn validator() -> Validator {
        Validator::new(&PlowConfig::default())
    }

    fn p(vehicle: &str, ts_ms: Millis, lat: f64, lon: f64) -> Position {
        Position {
            vehicle: vehicle.into(),
            ts_ms,
            lat,
            lon,
            speed_kmh: None,
            heading: None,
            blade: Blade::Down,
            format: Format::Sonae,
        }
    }

    #[test]
    fn a_position_outside_the_service_area_is_rejected_but_the_margin_is_allowed() {
        let mut v = validator();
        // 山形市 box is 140.17..140.52 E; Tokyo is far outside.
        assert_eq!(
            v.check(&p("a", T0, 35.68, 139.76), T0),
            Verdict::Reject(Reject::OutsideArea)
        );
        // 1 km east of the east edge, inside the 2 km margin.
        assert_eq!(
            v.check(&p("a", T0, 38.25, 140.531), T0),
            Verdict::Accept { newest: true }
        );
        // 5 km east: outside.
        assert_eq!(
            v.check(&p("b", T0, 38.25, 140.58), T0),
            Verdict::Reject(Reject::OutsideArea)
        );
    }

    #[test]
    fn a_timestamp_beyond_the_skew_allowance_is_rejected() {
        let mut v = validator();
        assert_eq!(
            v.check(&p("a", T0 + 119_000, 38.25, 140.33), T0),
            Verdict::Accept { newest: true }
        );
        assert_eq!(
            v.check(&p("b", T0 + 121_000, 38.25, 140.33), T0),
            Verdict::Reject(Reject::FutureTimestamp)
        );
    }

    #[test]
    fn a_jump_faster_than_a_plow_can_drive_is_rejected_and_does_not_move_the_vehicle() {
        let mut v = validator();
        assert_eq!(
            v.check(&p("a", T0, 38.25, 140.33), T0),
            Verdict::Accept { newest: true }
        );
        // 1.1 km north 10 s later = ~400 km/h.
        assert_eq!(
            v.check(&p("a", T0 + 10_000, 38.26, 140.33), T0 + 10_000),
            Verdict::Reject(Reject::ImplausibleSpeed)
        );
        // 1.1 km in 60 s = ~67 km/h from the *accepted* position: fine.
        assert_eq!(
            v.check(&p("a", T0 + 60_000, 38.26, 140.33), T0 + 60_000),
            Verdict::Accept { newest: true }
        );
    }

    #[test]
    fn gps_jitter_within_a_second_is_not_called_too_fast() {
        let mut v = validator();
        v.check(&p("a", T0, 38.25, 140.33), T0);
        // 30 m in 1 s would be 108 km/h, but it is within the jitter allowance.
        assert_eq!(
            v.check(&p("a", T0 + 1000, 38.25027, 140.33), T0 + 1000),
            Verdict::Accept { newest: true }
        );
    }

    #[test]
    fn the_same_vehicle_and_time_is_a_duplicate_even_after_later_positions() {
        let mut v = validator();
        let first = p("a", T0, 38.25, 140.33);
        assert_eq!(v.check(&first, T0), Verdict::Accept { newest: true });
        assert_eq!(v.check(&first, T0), Verdict::Duplicate);
        assert_eq!(
            v.check(&p("a", T0 + 5000, 38.2501, 140.33), T0),
            Verdict::Accept { newest: true }
        );
        assert_eq!(v.check(&first, T0 + 6000), Verdict::Duplicate);
        // Another vehicle at the same time is not a duplicate.
        assert_eq!(
            v.check(&p("b", T0, 38.25, 140.33), T0),
            Verdict::Accept { newest: true }
        );
    }

    #[test]
    fn a_late_position_is_accepted_without_becoming_the_newest() {
        let mut v = validator();
        v.check(&p("a", T0 + 10_000, 38.25, 140.33), T0 + 10_000);
        assert_eq!(
            v.check(&p("a", T0, 38.2501, 140.33), T0 + 10_000),
            Verdict::Accept { newest: false }
        );
    }

    #[test]
    fn a_vehicle_is_stale_after_five_minutes_of_silence_and_offline_after_its_last_will() {
        let stale = 300;
        assert_eq!(
            vehicle_state(T0, None, T0 + 299_999, stale),
            VehicleState::Active
        );
        assert_eq!(
            vehicle_state(T0, None, T0 + 300_000, stale),
            VehicleState::Stale
        );
        assert_eq!(
            vehicle_state(T0, Some(T0 + 1), T0 + 2, stale),
            VehicleState::Offline
        );
        // A position after the last will brings it back.
        assert_eq!(
            vehicle_state(T0 + 10, Some(T0 + 1), T0 + 20, stale),
            VehicleState::Active
        );
    }

    #[test]
    fn the_rate_limiter_lets_one_event_per_interval_through_and_counts_the_rest() {
        let mut r = RateLimiter::new(60_000);
        assert_eq!(r.allow(&"x", T0), Some(0));
        assert_eq!(r.allow(&"x", T0 + 1), None);
        assert_eq!(r.allow(&"x", T0 + 2), None);
        assert_eq!(r.allow(&"y", T0 + 3), Some(0));
        assert_eq!(r.allow(&"x", T0 + 60_000), Some(2));
    }
}
