//! CAP `<area>` blocks from the city's district polygons.
//!
//! An alert names districts (a JMA warning reaches every district of a municipality: 5,899 町丁目 in the demo
//! 札幌市). One `<area>` per district would make a city-wide document megabytes long, so areas are merged:
//! * every district of a municipality addressed → one area for the municipality (`札幌市`);
//! * otherwise, per group (ward): all of it → one area (`札幌市中央区`); some of it → one area
//!   `札幌市中央区の一部（…）` naming up to [`NAMED_DISTRICTS`] districts;
//! * districts without a group are grouped per municipality the same way.
//!
//! Each area's polygon is the union of its districts (`geo`'s boolean ops, merged pairwise as a balanced
//! tree), holes dropped (a CAP polygon has none; a hole is a district not addressed, so the area only grows),
//! and each part simplified with Visvalingam–Whyatt keeping topology, the tolerance doubling until the ring
//! has at most [`MAX_POINTS`] points — the limit IPAWS sets for a WEA polygon, which keeps a city-wide
//! document to a few tens of kilobytes and is far more detail than a broadcaster's map needs (the areas
//! move by tens of metres at most at a ward's scale). Parts smaller than [`MIN_PART_M2`] (slivers between
//! cells) are dropped. Unions of whole municipalities and groups are computed once and cached; they are the
//! expensive ones.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use geo::{Area, BooleanOps, MultiPolygon, Polygon, SimplifyVwPreserve};

use crate::place::{District, Districts};

/// Points per polygon ring at most (first = last included), as in the IPAWS WEA profile.
pub const MAX_POINTS: usize = 100;
/// Districts named in the description of a partly addressed group.
pub const NAMED_DISTRICTS: usize = 10;
/// Parts of a merged area smaller than this (m², roughly) are slivers left between cells, not land.
pub const MIN_PART_M2: f64 = 100.0;

/// Closed rings of (lat, lon).
pub type Rings = Vec<Vec<(f64, f64)>>;

/// One CAP `<area>`.
#[derive(Clone, Debug, PartialEq)]
pub struct CapArea {
    pub desc: String,
    /// Rings as (lat, lon), closed, 4..=[`MAX_POINTS`] points each.
    pub polygons: Rings,
    /// (valueName, value) pairs.
    pub geocodes: Vec<(String, String)>,
}

/// Merged polygons of whole municipalities and groups, computed once per daemon.
#[derive(Default)]
pub struct AreaCache {
    merged: Mutex<HashMap<String, Arc<Rings>>>,
}

/// The name of a municipality (JMA 7-digit code): the city's configured name when the data has only one
/// municipality, else JMA's table, else the code.
fn municipality_name(code: &str, city: &str, single: bool) -> String {
    if single && !city.is_empty() {
        return city.to_string();
    }
    crate::jma::area::name(code)
        .map(str::to_string)
        .unwrap_or_else(|| code.to_string())
}

impl AreaCache {
    /// The areas for `ids` (district ids). Ids the place data does not know become areas of their own with
    /// the id as description and no polygon (place data changed since the alert was sent).
    pub fn areas(&self, districts: &Districts, city: &str, ids: &[String]) -> Vec<CapArea> {
        let mut unknown = Vec::new();
        // municipality -> group -> selected districts
        let mut sel: BTreeMap<&str, BTreeMap<Option<&str>, Vec<&District>>> = BTreeMap::new();
        for id in ids {
            match districts.get(id) {
                Some(d) => sel
                    .entry(d.jma_code.as_str())
                    .or_default()
                    .entry(d.group.as_deref())
                    .or_default()
                    .push(d),
                None => unknown.push(id.clone()),
            }
        }
        let mut all: BTreeMap<&str, BTreeMap<Option<&str>, usize>> = BTreeMap::new();
        for d in districts.all() {
            *all.entry(d.jma_code.as_str())
                .or_default()
                .entry(d.group.as_deref())
                .or_default() += 1;
        }
        let single = all.len() == 1;
        let mut out = Vec::new();
        for (muni, groups) in &sel {
            let name = municipality_name(muni, city, single);
            let whole_muni = all.get(muni).is_some_and(|g| {
                g.iter()
                    .all(|(k, n)| groups.get(k).is_some_and(|v| v.len() >= *n))
            });
            let muni_code = ("JMA-市町村等".to_string(), muni.to_string());
            if whole_muni {
                let polys = self.merged_cached(&format!("m:{muni}"), || {
                    districts
                        .all()
                        .iter()
                        .filter(|d| d.jma_code == *muni)
                        .collect()
                });
                out.push(CapArea {
                    desc: name,
                    polygons: polys.as_ref().clone(),
                    geocodes: vec![muni_code],
                });
                continue;
            }
            for (group, list) in groups {
                let total = all[muni][group];
                let label = format!("{name}{}", group.unwrap_or(""));
                let mut geocodes = vec![muni_code.clone()];
                if list.len() >= total {
                    let polys =
                        self.merged_cached(&format!("g:{muni}:{}", group.unwrap_or("")), || {
                            districts
                                .all()
                                .iter()
                                .filter(|d| d.jma_code == *muni && d.group.as_deref() == *group)
                                .collect()
                        });
                    out.push(CapArea {
                        desc: if group.is_some() { label } else { name.clone() },
                        polygons: polys.as_ref().clone(),
                        geocodes,
                    });
                    continue;
                }
                let mut names: Vec<&str> = list
                    .iter()
                    .take(NAMED_DISTRICTS)
                    .map(|d| d.name.as_str())
                    .collect();
                names.dedup();
                let more = list.len().saturating_sub(NAMED_DISTRICTS);
                let desc = if more > 0 {
                    format!("{label}の一部（{} ほか{more}地区）", names.join("、"))
                } else {
                    format!("{label}の一部（{}）", names.join("、"))
                };
                geocodes.extend(
                    list.iter()
                        .map(|d| ("Sonae-地区".to_string(), d.id.clone())),
                );
                out.push(CapArea {
                    desc,
                    polygons: merge(list),
                    geocodes,
                });
            }
        }
        for id in unknown {
            out.push(CapArea {
                desc: id.clone(),
                polygons: Vec::new(),
                geocodes: vec![("Sonae-地区".into(), id)],
            });
        }
        out
    }

    fn merged_cached<'a>(
        &self,
        key: &str,
        members: impl FnOnce() -> Vec<&'a District>,
    ) -> Arc<Rings> {
        if let Some(v) = self.merged.lock().expect("area cache").get(key) {
            return v.clone();
        }
        // Computed outside the lock; two requests racing compute it twice and store the same thing.
        let v = Arc::new(merge(&members()));
        self.merged
            .lock()
            .expect("area cache")
            .insert(key.to_string(), v.clone());
        v
    }
}

/// Union of the districts' polygons as CAP rings.
pub fn merge(list: &[&District]) -> Rings {
    let union = union_all(list.iter().map(|d| d.geometry.clone()).collect());
    let mut rings = Vec::new();
    for p in union {
        // ~ m² per deg² at this latitude, for the sliver threshold.
        let lat = p.exterior().0.first().map_or(35.0, |c| c.y);
        let m2_per_deg2 = 111_320.0 * 111_320.0 * lat.to_radians().cos();
        let outer = Polygon::new(p.exterior().clone(), vec![]);
        if outer.unsigned_area() * m2_per_deg2 < MIN_PART_M2 {
            continue;
        }
        if let Some(r) = simplify_ring(&outer) {
            rings.push(r);
        }
    }
    rings
}

/// Balanced pairwise union: each level halves the list, so every edge takes part in O(log n) unions.
fn union_all(mut parts: Vec<MultiPolygon<f64>>) -> MultiPolygon<f64> {
    if parts.is_empty() {
        return MultiPolygon::new(vec![]);
    }
    while parts.len() > 1 {
        let mut next = Vec::with_capacity(parts.len().div_ceil(2));
        let mut it = parts.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(a.union(&b)),
                None => next.push(a),
            }
        }
        parts = next;
    }
    // A union with nothing also repairs a lone input's orientation and degeneracies.
    let one = parts.pop().unwrap_or_else(|| MultiPolygon::new(vec![]));
    one.union(&MultiPolygon::new(vec![]))
}

/// The exterior as closed (lat, lon) with at most [`MAX_POINTS`] points, or `None` when it degenerates.
fn simplify_ring(p: &Polygon<f64>) -> Option<Vec<(f64, f64)>> {
    let mut cur = p.clone();
    // Start around (5 m)² and double; VW's epsilon is a triangle area in deg².
    let mut eps = 2.0e-9;
    while cur.exterior().0.len() > MAX_POINTS {
        cur = p.simplify_vw_preserve(&eps);
        eps *= 2.0;
        if eps > 1.0 {
            break;
        }
    }
    let coords = &cur.exterior().0;
    if coords.len() < 4 || coords.len() > MAX_POINTS {
        return None;
    }
    let mut ring: Vec<(f64, f64)> = coords.iter().map(|c| (c.y, c.x)).collect();
    if ring.first() != ring.last() {
        let first = ring[0];
        ring.push(first);
    }
    Some(ring)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::place::PlaceConfig;

    fn sapporo() -> crate::place::PlaceData {
        let mut cfg = PlaceConfig::default();
        let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/demo");
        cfg.districts = format!("{demo}/sapporo-districts.geojson").into();
        cfg.shelters = vec![];
        crate::place::PlaceData::load(&cfg).unwrap()
    }

    fn contains(rings: &[Vec<(f64, f64)>], lat: f64, lon: f64) -> bool {
        use geo::Contains;
        rings.iter().any(|r| {
            let ls: Vec<(f64, f64)> = r.iter().map(|&(la, lo)| (lo, la)).collect();
            Polygon::new(ls.into(), vec![]).contains(&geo::Point::new(lon, lat))
        })
    }

    #[test]
    fn a_whole_city_is_one_area_with_few_points_that_covers_every_district() {
        let place = sapporo();
        let ids: Vec<String> = place.districts.all().iter().map(|d| d.id.clone()).collect();
        let cache = AreaCache::default();
        let started = std::time::Instant::now();
        let areas = cache.areas(&place.districts, "札幌市", &ids);
        eprintln!(
            "city-wide union of {} districts: {:?}",
            ids.len(),
            started.elapsed()
        );
        assert_eq!(
            areas.len(),
            1,
            "{:?}",
            areas.iter().map(|a| &a.desc).collect::<Vec<_>>()
        );
        let a = &areas[0];
        assert_eq!(a.desc, "札幌市");
        assert_eq!(
            a.geocodes,
            [("JMA-市町村等".to_string(), "0110000".to_string())]
        );
        assert!(
            !a.polygons.is_empty() && a.polygons.len() <= 3,
            "{}",
            a.polygons.len()
        );
        for r in &a.polygons {
            assert!((4..=MAX_POINTS).contains(&r.len()), "{}", r.len());
            assert_eq!(r.first(), r.last());
        }
        // Simplified, yet every district's label point is inside (or within a few hundred metres of the edge
        // for the outermost towns): count the misses.
        let missed = place
            .districts
            .all()
            .iter()
            .filter(|d| !contains(&a.polygons, d.label_point.lat, d.label_point.lon))
            .count();
        assert!(
            missed * 100 <= ids.len(),
            "{missed} of {} label points outside",
            ids.len()
        );
        // Cached: the second call is the same and cheap.
        assert_eq!(cache.areas(&place.districts, "札幌市", &ids), areas);
    }

    #[test]
    fn part_of_a_ward_names_its_districts_and_a_whole_ward_is_one_area() {
        let place = sapporo();
        let chuo: Vec<String> = place
            .districts
            .in_group(Some("中央区"))
            .map(|d| d.id.clone())
            .collect();
        assert!(chuo.len() > NAMED_DISTRICTS);
        let cache = AreaCache::default();
        let whole = cache.areas(&place.districts, "札幌市", &chuo);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].desc, "札幌市中央区");
        let part = cache.areas(&place.districts, "札幌市", &chuo[..3]);
        assert_eq!(part.len(), 1);
        assert!(
            part[0].desc.starts_with("札幌市中央区の一部（"),
            "{}",
            part[0].desc
        );
        assert_eq!(part[0].geocodes.len(), 4);
        let d = place.districts.get(&chuo[0]).unwrap();
        assert!(contains(
            &part[0].polygons,
            d.label_point.lat,
            d.label_point.lon
        ));
        let many = cache.areas(&place.districts, "札幌市", &chuo[..NAMED_DISTRICTS + 5]);
        assert!(many[0].desc.contains("ほか5地区"), "{}", many[0].desc);
        let unknown = cache.areas(&place.districts, "札幌市", &["no-such".to_string()]);
        assert_eq!(unknown[0].desc, "no-such");
        assert!(unknown[0].polygons.is_empty());
    }
}
