//! Cleared roads, without I/O: the road network split into straight segments, an R-tree over them, the time
//! each segment was last plowed, and each district's share of road length plowed since the storm started.
//!
//! # Design constraints
//! * **No full scans per point.** Segments live in an `rstar` R-tree in local metres (an equirectangular
//!   projection around the network's centre: at 43° N one degree of longitude is 81 km, of latitude 111 km;
//!   the distortion over a 30 km city is under 0.5 %). A position queries only segments within
//!   [`super::PlowConfig::match_distance_m`] (25 m by default).
//! * **Heading along the road.** A plow crossing a street plows it only for a few metres; a segment counts as
//!   plowed only if the vehicle's heading is within `match_heading_deg` (30° by default) of the segment's
//!   direction, either way. Without a reported heading, the heading from the vehicle's previous position is
//!   used (if it moved at least [`MIN_MOVE_M`] within [`MAX_HEADING_GAP_MS`]).
//! * **Blade down only.** Positions with the blade up or unknown never mark a segment.
//! * **Per-district sums are incremental.** Each segment belongs to the district containing its midpoint
//!   (decided once at load); a segment's length is added to its district's plowed total the first time it is
//!   plowed in the current storm. Starting a storm recomputes the totals once.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context};
use geo::{BoundingRect, Contains};
use rstar::primitives::{GeomWithData, Line};
use rstar::RTree;

use super::payload::Blade;
use super::Millis;

/// Minimum move to derive a heading from two positions.
pub const MIN_MOVE_M: f64 = 3.0;
/// Longest gap between two positions used to derive a heading.
pub const MAX_HEADING_GAP_MS: Millis = 120_000;

const EARTH_M_PER_DEG: f64 = 111_320.0;

/// Local metres around a reference point.
#[derive(Clone, Copy, Debug)]
pub struct Projection {
    lat0: f64,
    lon0: f64,
    kx: f64,
}

impl Projection {
    pub fn new(lat0: f64, lon0: f64) -> Self {
        Projection {
            lat0,
            lon0,
            kx: EARTH_M_PER_DEG * lat0.to_radians().cos(),
        }
    }

    pub fn to_m(&self, lat: f64, lon: f64) -> [f64; 2] {
        [
            (lon - self.lon0) * self.kx,
            (lat - self.lat0) * EARTH_M_PER_DEG,
        ]
    }
}

#[derive(Clone, Debug)]
pub struct Segment {
    /// The source feature's id (`id` member, else `properties.id`, else its index).
    pub feature: Arc<str>,
    /// Index of this segment within its feature.
    pub index: u32,
    /// `[lon, lat]` ends.
    pub a: [f64; 2],
    pub b: [f64; 2],
    pub length_m: f64,
    /// Direction of the segment's axis, degrees clockwise from north, in `0..180`.
    pub axis_deg: f64,
    pub district: Option<usize>,
}

impl Segment {
    /// Stable key for storage: `"{feature}#{index}"`.
    pub fn key(&self) -> String {
        format!("{}#{}", self.feature, self.index)
    }
}

#[derive(Clone, Debug)]
pub struct District {
    pub id: String,
    pub name: String,
    polygon: geo::MultiPolygon<f64>,
    bbox: Option<geo::Rect<f64>>,
}

impl District {
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        let p = geo::Point::new(lon, lat);
        self.bbox.is_some_and(|b| b.contains(&p)) && self.polygon.contains(&p)
    }
}

/// Loads district polygons from GeoJSON: every Polygon or MultiPolygon feature, with its id and name taken from
/// the given properties (the feature's `id` member is the fallback for the id).
pub fn load_districts(
    geojson: &str,
    id_prop: &str,
    name_prop: &str,
) -> anyhow::Result<Vec<District>> {
    let gj: geojson::GeoJson = geojson.parse().context("districts: not GeoJSON")?;
    let geojson::GeoJson::FeatureCollection(fc) = gj else {
        bail!("districts: expected a FeatureCollection");
    };
    let mut out = Vec::new();
    for (i, f) in fc.features.iter().enumerate() {
        let Some(g) = &f.geometry else { continue };
        let polygon = match &g.value {
            geojson::Value::Polygon(p) => geo::MultiPolygon(vec![polygon(p)]),
            geojson::Value::MultiPolygon(mp) => {
                geo::MultiPolygon(mp.iter().map(|p| polygon(p)).collect())
            }
            _ => continue,
        };
        let prop = |k: &str| {
            f.property(k).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let id = prop(id_prop)
            .or_else(|| f.id.as_ref().map(feature_id))
            .unwrap_or_else(|| i.to_string());
        let name = prop(name_prop).unwrap_or_else(|| id.clone());
        let bbox = polygon.bounding_rect();
        out.push(District {
            id,
            name,
            polygon,
            bbox,
        });
    }
    if out.is_empty() {
        bail!("districts: no Polygon or MultiPolygon features");
    }
    Ok(out)
}

fn polygon(rings: &[Vec<Vec<f64>>]) -> geo::Polygon<f64> {
    let ring = |r: &Vec<Vec<f64>>| -> geo::LineString<f64> {
        r.iter()
            .filter(|c| c.len() >= 2)
            .map(|c| geo::Coord { x: c[0], y: c[1] })
            .collect()
    };
    let mut it = rings.iter();
    let exterior = it
        .next()
        .map(ring)
        .unwrap_or_else(|| geo::LineString(vec![]));
    geo::Polygon::new(exterior, it.map(ring).collect())
}

fn feature_id(id: &geojson::feature::Id) -> String {
    match id {
        geojson::feature::Id::String(s) => s.clone(),
        geojson::feature::Id::Number(n) => n.to_string(),
    }
}

type Indexed = GeomWithData<Line<[f64; 2]>, u32>;

/// The road network: segments, their R-tree, and the districts they belong to. Immutable once loaded.
pub struct RoadNetwork {
    pub proj: Projection,
    pub segments: Vec<Segment>,
    tree: RTree<Indexed>,
    pub districts: Vec<District>,
    /// Road length per district, metres.
    pub district_length_m: Vec<f64>,
}

impl std::fmt::Debug for RoadNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoadNetwork")
            .field("segments", &self.segments.len())
            .field("districts", &self.districts.len())
            .finish()
    }
}

impl RoadNetwork {
    /// Loads GeoJSON LineStrings / MultiLineStrings. Without districts, every segment belongs to one district
    /// 「市内全域」 (id `all`).
    pub fn from_geojson(
        roads: &str,
        districts: Option<Vec<District>>,
    ) -> anyhow::Result<RoadNetwork> {
        let gj: geojson::GeoJson = roads.parse().context("roads: not GeoJSON")?;
        let geojson::GeoJson::FeatureCollection(fc) = gj else {
            bail!("roads: expected a FeatureCollection");
        };
        let mut lines: Vec<(Arc<str>, Vec<[f64; 2]>)> = Vec::new();
        for (i, f) in fc.features.iter().enumerate() {
            let Some(g) = &f.geometry else { continue };
            let id: Arc<str> =
                f.id.as_ref()
                    .map(feature_id)
                    .or_else(|| {
                        f.property("id")
                            .map(|v| v.to_string().trim_matches('"').to_string())
                    })
                    .unwrap_or_else(|| i.to_string())
                    .into();
            let to_pts = |ls: &Vec<Vec<f64>>| -> Vec<[f64; 2]> {
                ls.iter()
                    .filter(|c| c.len() >= 2)
                    .map(|c| [c[0], c[1]])
                    .collect()
            };
            match &g.value {
                geojson::Value::LineString(ls) => lines.push((id, to_pts(ls))),
                geojson::Value::MultiLineString(mls) => {
                    for (j, ls) in mls.iter().enumerate() {
                        lines.push((format!("{id}.{j}").into(), to_pts(ls)));
                    }
                }
                _ => {}
            }
        }
        if lines.is_empty() {
            bail!("roads: no LineString features");
        }
        let (mut lat_sum, mut lon_sum, mut n) = (0.0, 0.0, 0.0);
        for (_, pts) in &lines {
            for p in pts {
                lon_sum += p[0];
                lat_sum += p[1];
                n += 1.0;
            }
        }
        let proj = Projection::new(lat_sum / n, lon_sum / n);
        let districts = districts.unwrap_or_default();
        let mut segments = Vec::new();
        let mut indexed = Vec::new();
        for (feature, pts) in lines {
            let mut index = 0u32;
            for w in pts.windows(2) {
                let (a, b) = (w[0], w[1]);
                let (pa, pb) = (proj.to_m(a[1], a[0]), proj.to_m(b[1], b[0]));
                let (dx, dy) = (pb[0] - pa[0], pb[1] - pa[1]);
                let length_m = (dx * dx + dy * dy).sqrt();
                if length_m < 0.01 {
                    continue;
                }
                let axis_deg = dx.atan2(dy).to_degrees().rem_euclid(180.0);
                let (mlat, mlon) = ((a[1] + b[1]) / 2.0, (a[0] + b[0]) / 2.0);
                let district = if districts.is_empty() {
                    Some(0)
                } else {
                    districts.iter().position(|d| d.contains(mlat, mlon))
                };
                let id = segments.len() as u32;
                indexed.push(GeomWithData::new(Line::new(pa, pb), id));
                segments.push(Segment {
                    feature: feature.clone(),
                    index,
                    a,
                    b,
                    length_m,
                    axis_deg,
                    district,
                });
                index += 1;
            }
        }
        let districts = if districts.is_empty() {
            vec![District {
                id: "all".into(),
                name: "市内全域".into(),
                polygon: geo::MultiPolygon(vec![]),
                bbox: None,
            }]
        } else {
            districts
        };
        let mut district_length_m = vec![0.0; districts.len()];
        for s in &segments {
            if let Some(d) = s.district {
                district_length_m[d] += s.length_m;
            }
        }
        Ok(RoadNetwork {
            proj,
            segments,
            tree: RTree::bulk_load(indexed),
            districts,
            district_length_m,
        })
    }

    /// Segments within `radius_m` of a point (R-tree query).
    pub fn near(&self, lat: f64, lon: f64, radius_m: f64) -> impl Iterator<Item = u32> + '_ {
        let p = self.proj.to_m(lat, lon);
        self.tree
            .locate_within_distance(p, radius_m * radius_m)
            .map(|g| g.data)
    }

    /// The district containing a point (first match), if any.
    pub fn district_at(&self, lat: f64, lon: f64) -> Option<usize> {
        if self.districts.len() == 1 && self.districts[0].bbox.is_none() {
            return Some(0);
        }
        self.districts.iter().position(|d| d.contains(lat, lon))
    }
}

/// Smallest angle between a heading (0..360) and a segment axis (0..180), either direction, in degrees.
pub fn axis_difference(heading_deg: f64, axis_deg: f64) -> f64 {
    let d = (heading_deg - axis_deg).rem_euclid(180.0);
    d.min(180.0 - d)
}

/// A run of consecutive segments of one feature in one band: feature, last index, band, newest pass, coordinates.
type Run = (Arc<str>, u32, &'static str, Option<Millis>, Vec<[f64; 2]>);

/// What one position changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// Segments whose "last plowed" moved forward, with the new time.
    pub plowed: Vec<(u32, Millis)>,
    /// A district this position entered for the first time in the current storm (blade down).
    pub entered_district: Option<usize>,
}

/// Mutable coverage state over a [`RoadNetwork`].
#[derive(Debug)]
pub struct Coverage {
    pub net: Arc<RoadNetwork>,
    match_m: f64,
    heading_tol: f64,
    plowed_at: Vec<Option<Millis>>,
    storm_start: Option<Millis>,
    district_plowed_m: Vec<f64>,
    district_entered: Vec<bool>,
    prev: HashMap<String, (Millis, [f64; 2])>,
}

impl Coverage {
    pub fn new(net: Arc<RoadNetwork>, match_distance_m: f64, match_heading_deg: f64) -> Coverage {
        let n = net.segments.len();
        let d = net.districts.len();
        Coverage {
            net,
            match_m: match_distance_m,
            heading_tol: match_heading_deg,
            plowed_at: vec![None; n],
            storm_start: None,
            district_plowed_m: vec![0.0; d],
            district_entered: vec![false; d],
            prev: HashMap::new(),
        }
    }

    /// Restores a stored "last plowed" time (start-up). Unknown keys (a changed road file) are skipped.
    pub fn restore(&mut self, stored: impl IntoIterator<Item = (String, Millis)>) -> usize {
        let index: HashMap<String, usize> = self
            .net
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key(), i))
            .collect();
        let mut n = 0;
        for (k, t) in stored {
            if let Some(&i) = index.get(&k) {
                self.plowed_at[i] = Some(self.plowed_at[i].map_or(t, |o| o.max(t)));
                n += 1;
            }
        }
        self.recompute();
        n
    }

    /// Sets the current storm's start (None: no storm) and recomputes the per-district totals. `entered` lists
    /// districts already notified in this storm.
    pub fn set_storm(&mut self, start: Option<Millis>, entered: &[usize]) {
        self.storm_start = start;
        self.district_entered = vec![false; self.net.districts.len()];
        for &d in entered {
            if let Some(e) = self.district_entered.get_mut(d) {
                *e = true;
            }
        }
        self.recompute();
    }

    /// Forgets that a plow entered `district` in this storm, so the next blade-down fix there enters it again.
    /// For a batch whose transaction failed: its entry (and the notices it would have claimed) was never
    /// recorded, and must not be lost for the rest of the storm.
    pub fn forget_entered(&mut self, district: usize) {
        if let Some(e) = self.district_entered.get_mut(district) {
            *e = false;
        }
    }

    pub fn storm_start(&self) -> Option<Millis> {
        self.storm_start
    }

    fn recompute(&mut self) {
        self.district_plowed_m = vec![0.0; self.net.districts.len()];
        let Some(start) = self.storm_start else {
            return;
        };
        for (s, t) in self.net.segments.iter().zip(&self.plowed_at) {
            if let (Some(d), Some(t)) = (s.district, t) {
                if *t >= start {
                    self.district_plowed_m[d] += s.length_m;
                }
            }
        }
    }

    pub fn plowed_at(&self, segment: u32) -> Option<Millis> {
        self.plowed_at.get(segment as usize).copied().flatten()
    }

    /// `(plowed metres, total metres)` per district in the current storm (0 plowed when no storm).
    pub fn district_shares(&self) -> Vec<(f64, f64)> {
        self.district_plowed_m
            .iter()
            .zip(&self.net.district_length_m)
            .map(|(p, t)| (*p, *t))
            .collect()
    }

    /// Applies one accepted position.
    pub fn apply(
        &mut self,
        vehicle: &str,
        ts_ms: Millis,
        lat: f64,
        lon: f64,
        heading: Option<f64>,
        blade: Blade,
    ) -> Applied {
        let here = self.net.proj.to_m(lat, lon);
        let derived = match self.prev.get(vehicle) {
            Some((t, p)) if ts_ms > *t && ts_ms - *t <= MAX_HEADING_GAP_MS => {
                let (dx, dy) = (here[0] - p[0], here[1] - p[1]);
                ((dx * dx + dy * dy).sqrt() >= MIN_MOVE_M)
                    .then(|| dx.atan2(dy).to_degrees().rem_euclid(360.0))
            }
            _ => None,
        };
        // Keep the reference point until the vehicle has moved far enough to give a heading, so slow driving
        // with frequent fixes still yields one (and GPS jitter while standing still does not).
        let replace = match self.prev.get(vehicle) {
            None => true,
            Some((t, _)) if ts_ms <= *t => false,
            Some((t, p)) => {
                let (dx, dy) = (here[0] - p[0], here[1] - p[1]);
                ts_ms - *t > MAX_HEADING_GAP_MS || (dx * dx + dy * dy).sqrt() >= MIN_MOVE_M
            }
        };
        if replace {
            self.prev.insert(vehicle.to_string(), (ts_ms, here));
        }
        let mut out = Applied::default();
        if blade != Blade::Down {
            return out;
        }
        if let Some(start) = self.storm_start {
            if ts_ms >= start {
                if let Some(d) = self.net.district_at(lat, lon) {
                    if !self.district_entered[d] {
                        self.district_entered[d] = true;
                        out.entered_district = Some(d);
                    }
                }
            }
        }
        let Some(h) = heading.or(derived) else {
            return out;
        };
        let net = Arc::clone(&self.net);
        for id in net.near(lat, lon, self.match_m) {
            let s = &net.segments[id as usize];
            if axis_difference(h, s.axis_deg) > self.heading_tol {
                continue;
            }
            let slot = &mut self.plowed_at[id as usize];
            if slot.is_some_and(|t| t >= ts_ms) {
                continue;
            }
            let was_in_storm = match (self.storm_start, *slot) {
                (Some(start), Some(t)) => t >= start,
                _ => false,
            };
            *slot = Some(ts_ms);
            if let (Some(start), Some(d)) = (self.storm_start, s.district) {
                if !was_in_storm && ts_ms >= start {
                    self.district_plowed_m[d] += s.length_m;
                }
            }
            out.plowed.push((id, ts_ms));
        }
        out
    }

    /// Roads as a GeoJSON FeatureCollection coloured by time since last plowed at `now_ms`. Consecutive
    /// segments of one feature in the same band are merged into one LineString to keep the answer small.
    /// Bands: `lt1h`, `lt3h`, `lt6h`, `gt6h`, `never`.
    /// `bbox` (`[west, south, east, north]`) keeps only segments whose extent overlaps it, so a map showing
    /// part of a whole-city network (170 000 segments for 札幌市) gets only what it shows.
    pub fn roads_geojson(&self, now_ms: Millis, bbox: Option<[f64; 4]>) -> serde_json::Value {
        let band = |t: Option<Millis>| -> &'static str {
            match t.map(|t| now_ms - t) {
                None => "never",
                Some(a) if a < 3_600_000 => "lt1h",
                Some(a) if a < 3 * 3_600_000 => "lt3h",
                Some(a) if a < 6 * 3_600_000 => "lt6h",
                Some(_) => "gt6h",
            }
        };
        let mut features = Vec::new();
        let mut run: Option<Run> = None;
        let flush = |run: &mut Option<Run>, features: &mut Vec<serde_json::Value>| {
            if let Some((f, _, b, last, coords)) = run.take() {
                features.push(serde_json::json!({
                    "type": "Feature",
                    "properties": {
                        "road": &*f,
                        "band": b,
                        "last_plowed": last.map(super::rfc3339),
                    },
                    "geometry": {"type": "LineString", "coordinates": coords},
                }));
            }
        };
        for (i, s) in self.net.segments.iter().enumerate() {
            if let Some([w, so, e, n]) = bbox {
                let outside = s.a[0].max(s.b[0]) < w
                    || s.a[0].min(s.b[0]) > e
                    || s.a[1].max(s.b[1]) < so
                    || s.a[1].min(s.b[1]) > n;
                if outside {
                    continue;
                }
            }
            let t = self.plowed_at[i];
            let b = band(t);
            let continues = matches!(&run, Some((f, idx, rb, _, coords))
                if Arc::ptr_eq(f, &s.feature) && *idx + 1 == s.index && *rb == b && coords.last() == Some(&s.a));
            if continues {
                if let Some((_, idx, _, last, coords)) = run.as_mut() {
                    *idx = s.index;
                    *last = (*last).max(t);
                    coords.push(s.b);
                }
            } else {
                flush(&mut run, &mut features);
                run = Some((s.feature.clone(), s.index, b, t, vec![s.a, s.b]));
            }
        }
        flush(&mut run, &mut features);
        serde_json::json!({"type": "FeatureCollection", "features": features})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 200 m east–west street crossed by a 200 m north–south street at its middle, at 43.06 N.
    fn cross() -> Arc<RoadNetwork> {
        let roads = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","id":"ew","properties":{},"geometry":{"type":"LineString","coordinates":[[141.350,43.060],[141.3512,43.060],[141.3524,43.060]]}},
          {"type":"Feature","id":"ns","properties":{},"geometry":{"type":"LineString","coordinates":[[141.3512,43.0591],[141.3512,43.0609]]}}
        ]}"#;
        Arc::new(RoadNetwork::from_geojson(roads, None).unwrap())
    }

    fn keys(c: &Coverage, a: &Applied) -> Vec<String> {
        let mut k: Vec<String> = a
            .plowed
            .iter()
            .map(|(i, _)| c.net.segments[*i as usize].key())
            .collect();
        k.sort();
        k
    }

    #[test]
    fn segments_are_split_per_vertex_pair_with_their_axis() {
        let net = cross();
        assert_eq!(net.segments.len(), 3);
        let ew = &net.segments[0];
        assert_eq!(ew.key(), "ew#0");
        assert!((ew.axis_deg - 90.0).abs() < 0.01, "{}", ew.axis_deg);
        assert!((ew.length_m - 97.7).abs() < 1.0, "{}", ew.length_m);
        assert!(net.segments[2].axis_deg.abs() < 0.01);
    }

    #[test]
    fn a_blade_down_pass_along_the_street_marks_it_but_not_the_crossing_street() {
        let mut c = Coverage::new(cross(), 25.0, 30.0);
        // At the crossing, heading west (270°): the east–west segments on both sides of the crossing match.
        let a = c.apply("P1", 1000, 43.06005, 141.3512, Some(270.0), Blade::Down);
        assert_eq!(keys(&c, &a), vec!["ew#0", "ew#1"]);
        assert_eq!(
            c.plowed_at(2),
            None,
            "the north–south street was only crossed"
        );
    }

    #[test]
    fn blade_up_or_far_away_positions_mark_nothing() {
        let mut c = Coverage::new(cross(), 25.0, 30.0);
        assert!(c
            .apply("P1", 1, 43.06, 141.3506, Some(90.0), Blade::Up)
            .plowed
            .is_empty());
        assert!(c
            .apply("P1", 2, 43.06, 141.3506, Some(90.0), Blade::Unknown)
            .plowed
            .is_empty());
        // 40 m north of the east–west street, away from the north–south one.
        assert!(c
            .apply("P2", 3, 43.06036, 141.3503, Some(90.0), Blade::Down)
            .plowed
            .is_empty());
    }

    #[test]
    fn heading_is_derived_from_the_previous_position_when_not_reported() {
        let mut c = Coverage::new(cross(), 25.0, 30.0);
        assert!(c
            .apply("P1", 0, 43.0595, 141.3512, None, Blade::Down)
            .plowed
            .is_empty());
        // 33 m north 5 s later: heading 0°, along the north–south street.
        let a = c.apply("P1", 5000, 43.0598, 141.3512, None, Blade::Down);
        assert_eq!(keys(&c, &a), vec!["ns#0"]);
    }

    #[test]
    fn district_shares_count_only_passes_since_the_storm_start() {
        let mut c = Coverage::new(cross(), 25.0, 30.0);
        c.apply("P1", 500, 43.06, 141.3506, Some(90.0), Blade::Down); // before the storm
        c.set_storm(Some(1000), &[]);
        assert_eq!(c.district_shares()[0].0, 0.0);
        let a = c.apply("P1", 2000, 43.0595, 141.3512, Some(180.0), Blade::Down);
        assert_eq!(a.entered_district, Some(0));
        let (plowed, total) = c.district_shares()[0];
        assert!((plowed - 200.2).abs() < 1.0, "{plowed}");
        assert!((total - 395.6).abs() < 2.0, "{total}");
        // Passing again adds nothing and does not enter again.
        let a = c.apply("P1", 3000, 43.0597, 141.3512, Some(180.0), Blade::Down);
        assert_eq!(a.entered_district, None);
        assert!((c.district_shares()[0].0 - plowed).abs() < 1e-9);
        // A batch whose write failed gives the entry back: the next fix enters again.
        c.forget_entered(0);
        let a = c.apply("P1", 3100, 43.0597, 141.3512, Some(180.0), Blade::Down);
        assert_eq!(a.entered_district, Some(0));
        // Restoring the old pass and restarting the storm counts only the storm's pass.
        c.set_storm(Some(2500), &[0]);
        assert!((c.district_shares()[0].0 - plowed).abs() < 1e-9);
    }

    #[test]
    fn roads_are_banded_by_time_since_last_plowed_and_merged_per_run() {
        let mut c = Coverage::new(cross(), 25.0, 30.0);
        c.apply("P1", 0, 43.06, 141.3503, Some(90.0), Blade::Down);
        let gj = c.roads_geojson(2 * 3_600_000, None);
        let east_only = c.roads_geojson(0, Some([141.3513, 43.0, 141.36, 43.1]));
        assert_eq!(
            east_only["features"].as_array().unwrap().len(),
            1,
            "only ew#1 lies east of the crossing"
        );
        let bands: Vec<(&str, &str, usize)> = gj["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["properties"]["road"].as_str().unwrap(),
                    f["properties"]["band"].as_str().unwrap(),
                    f["geometry"]["coordinates"].as_array().unwrap().len(),
                )
            })
            .collect();
        assert_eq!(
            bands,
            vec![("ew", "lt3h", 2), ("ew", "never", 2), ("ns", "never", 2)]
        );
    }

    #[test]
    fn axis_difference_treats_both_directions_alike() {
        assert_eq!(axis_difference(270.0, 90.0), 0.0);
        assert_eq!(axis_difference(10.0, 170.0), 20.0);
        assert_eq!(axis_difference(45.0, 135.0), 90.0);
    }
}

#[cfg(test)]
mod real_roads {
    use super::*;

    const EXCERPT: &str = include_str!("../../tests/fixtures/plow/sapporo-odori-excerpt.geojson");

    /// Drives west along 札幌 route record 11971 (大通) from its vertex 21 to vertex 28, ten positions per
    /// segment (2–13 m apart), heading derived from the previous position, blade down. Expected segments were computed
    /// independently (planar metres, same 25 m / 30° rule): 11971-0#20..=#28; the crossing north–south routes
    /// within 25 m must stay unplowed.
    #[test]
    fn a_pass_along_odori_marks_exactly_its_segments_on_the_real_sapporo_network() {
        let net = Arc::new(RoadNetwork::from_geojson(EXCERPT, None).unwrap());
        assert_eq!(
            net.segments.len(),
            483,
            "one segment per consecutive vertex pair"
        );
        let mut c = Coverage::new(net.clone(), 25.0, 30.0);
        let odori: Vec<[f64; 2]> = net
            .segments
            .iter()
            .filter(|s| &*s.feature == "11971-0")
            .map(|s| s.a)
            .collect();
        let mut t = 0;
        let mut plowed = std::collections::BTreeSet::new();
        for w in odori[21..=28].windows(2) {
            for k in 0..10 {
                let f = k as f64 / 10.0;
                let (lon, lat) = (
                    w[0][0] + (w[1][0] - w[0][0]) * f,
                    w[0][1] + (w[1][1] - w[0][1]) * f,
                );
                t += 2000;
                for (seg, _) in c.apply("P1", t, lat, lon, None, Blade::Down).plowed {
                    plowed.insert(net.segments[seg as usize].key());
                }
            }
        }
        let expected: std::collections::BTreeSet<String> =
            (20..=28).map(|i| format!("11971-0#{i}")).collect();
        assert_eq!(plowed, expected);
        for crossing in [
            "12091-0#10",
            "13375-0#27",
            "13393-0#15",
            "13394-0#29",
            "17761-0#38",
        ] {
            let i = net
                .segments
                .iter()
                .position(|s| s.key() == crossing)
                .unwrap();
            assert_eq!(c.plowed_at(i as u32), None, "{crossing} was only crossed");
        }
    }
}
