//! Districts: polygons from GeoJSON, an R-tree of their bounding boxes, and point-in-polygon.

use std::collections::HashMap;
use std::path::Path;

use geo::{BoundingRect, InteriorPoint, Intersects, MultiPolygon, Point};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};
use serde::Serialize;

use super::{LatLon, LoadReport, PlaceError};

/// One district: the unit residents register with and alerts are targeted at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct District {
    /// Stable id (the CSV import's `district` column).
    pub id: String,
    /// Name shown to residents, e.g. `大通西一丁目`.
    pub name: String,
    /// 7-digit JMA 市町村等 code used by warning telegrams (e.g. `0110000` for all of 札幌市).
    pub jma_code: String,
    /// Optional grouping for the registration list (the ward, e.g. `中央区`).
    pub group: Option<String>,
    /// Optional 7-digit code used by seismic telegrams (ward level in 政令指定都市, e.g. `0110100`).
    pub seismic_code: Option<String>,
    #[serde(skip)]
    pub geometry: MultiPolygon<f64>,
    /// A point inside the district (for links and "nearest shelter from my district").
    pub label_point: LatLon,
}

impl District {
    /// The municipality codes (5 digits, as in GSI shelter ids) this district belongs to: from `jma_code`
    /// (`0121400` → `01214`) and, for a ward of a 政令指定都市, also from `seismic_code` (`0110100` → `01101`),
    /// since cities register shelters under the city code or the ward code.
    pub fn municipality_codes(&self) -> Vec<String> {
        let mut out = vec![self.jma_code[..5].to_string()];
        if let Some(c) = &self.seismic_code {
            if c[..5] != out[0] {
                out.push(c[..5].to_string());
            }
        }
        out
    }
}

type BoxEntry = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// All districts of the city with a spatial index.
#[derive(Debug)]
pub struct Districts {
    list: Vec<District>,
    by_id: HashMap<String, usize>,
    /// [`crate::text::name_key`] of each name and of each "group name" → districts, in file order.
    by_name: HashMap<String, Vec<usize>>,
    tree: RTree<BoxEntry>,
}

fn is_jma_code(s: &str) -> bool {
    s.len() == 7 && s.bytes().all(|b| b.is_ascii_digit())
}

fn prop_str(props: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<String> {
    match props.get(key) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

impl Districts {
    /// Reads a GeoJSON FeatureCollection. A file that is not GeoJSON is an error; a bad feature is reported
    /// in the [`LoadReport`] with its 1-based feature number and skipped.
    pub fn load(path: &Path) -> Result<(Districts, LoadReport), PlaceError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlaceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Districts::from_geojson_str(&text).map_err(|message| PlaceError::Format {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses GeoJSON text; `Err` only when the text as a whole is not a FeatureCollection.
    pub fn from_geojson_str(text: &str) -> Result<(Districts, LoadReport), String> {
        let gj: geojson::GeoJson = text.parse().map_err(|e| format!("not GeoJSON: {e}"))?;
        let geojson::GeoJson::FeatureCollection(fc) = gj else {
            return Err("expected a GeoJSON FeatureCollection of district polygons".into());
        };
        let mut report = LoadReport::default();
        let mut list = Vec::new();
        let mut seen: HashMap<String, u64> = HashMap::new();
        for (i, f) in fc.features.into_iter().enumerate() {
            let n = i as u64 + 1;
            match district_from_feature(f) {
                Ok(d) => {
                    if let Some(first) = seen.get(&d.id) {
                        report.errors.push((
                            n,
                            format!("feature {n}: id \"{}\" repeats feature {first}; ids must be unique", d.id),
                        ));
                        continue;
                    }
                    seen.insert(d.id.clone(), n);
                    list.push(d);
                }
                Err(m) => report.errors.push((n, format!("feature {n}: {m}"))),
            }
        }
        report.loaded = list.len();
        Ok((Districts::new(list), report))
    }

    /// Builds the index over already-made districts (ids must be unique; later duplicates are unreachable
    /// by id).
    pub fn new(list: Vec<District>) -> Districts {
        let mut by_id = HashMap::with_capacity(list.len());
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::with_capacity(list.len() * 2);
        let mut boxes = Vec::with_capacity(list.len());
        for (i, d) in list.iter().enumerate() {
            by_id.entry(d.id.clone()).or_insert(i);
            let mut keys = vec![crate::text::name_key(&d.name)];
            if let Some(g) = &d.group {
                keys.push(crate::text::name_key(&format!("{g}{}", d.name)));
            }
            for k in keys {
                let v = by_name.entry(k).or_default();
                if v.last() != Some(&i) {
                    v.push(i);
                }
            }
            if let Some(r) = d.geometry.bounding_rect() {
                boxes.push(GeomWithData::new(
                    Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                    i,
                ));
            }
        }
        Districts {
            list,
            by_id,
            by_name,
            tree: RTree::bulk_load(boxes),
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn all(&self) -> &[District] {
        &self.list
    }

    pub fn get(&self, id: &str) -> Option<&District> {
        self.by_id.get(id).map(|&i| &self.list[i])
    }

    /// Districts whose name, or group and name (`中央区 大通西一丁目`), is `name` as people write it
    /// ([`crate::text::name_key`]: 大通西1丁目 = 大通西一丁目, 霞が関 = 霞ヶ関, ｶﾀｶﾅ = かたかな), in file order.
    pub fn named(&self, name: &str) -> Vec<&District> {
        self.by_name
            .get(&crate::text::name_key(name))
            .map(|v| v.iter().map(|&i| &self.list[i]).collect())
            .unwrap_or_default()
    }

    /// The district containing the point. A point exactly on a shared border belongs to the district that
    /// comes first in the file, so the answer is deterministic.
    pub fn locate(&self, at: LatLon) -> Option<&District> {
        let p = Point::new(at.lon, at.lat);
        let env = AABB::from_point([at.lon, at.lat]);
        self.tree
            .locate_in_envelope_intersecting(&env)
            .map(|e| e.data)
            .filter(|&i| self.list[i].geometry.intersects(&p))
            .min()
            .map(|i| &self.list[i])
    }

    /// Distinct groups in file order (e.g. the wards), for the first page of the registration list.
    pub fn groups(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for d in &self.list {
            if let Some(g) = d.group.as_deref() {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
        }
        out
    }

    /// Districts of one group (or all districts without a group when `group` is `None`), in file order.
    pub fn in_group<'a>(
        &'a self,
        group: Option<&'a str>,
    ) -> impl Iterator<Item = &'a District> + 'a {
        self.list
            .iter()
            .filter(move |d| d.group.as_deref() == group)
    }

    /// The centre of a municipality for links that name no district: the mean of its districts' label points.
    pub fn centre_of(&self, jma_code: &str) -> Option<LatLon> {
        mean(self.list.iter().filter(|d| d.jma_code == jma_code))
    }

    /// The centre of every district (the shelter map opened without a district or a position).
    pub fn centre(&self) -> Option<LatLon> {
        mean(self.list.iter())
    }

    /// Ids of every district whose JMA code is `jma_code` (a warning for a municipality reaches all of them).
    pub fn ids_for_jma_code(&self, jma_code: &str) -> Vec<String> {
        self.list
            .iter()
            .filter(|d| d.jma_code == jma_code || d.seismic_code.as_deref() == Some(jma_code))
            .map(|d| d.id.clone())
            .collect()
    }
}

fn mean<'a>(ds: impl Iterator<Item = &'a District>) -> Option<LatLon> {
    let (mut lat, mut lon, mut n) = (0.0, 0.0, 0.0);
    for d in ds {
        lat += d.label_point.lat;
        lon += d.label_point.lon;
        n += 1.0;
    }
    (n > 0.0).then(|| LatLon {
        lat: lat / n,
        lon: lon / n,
    })
}

fn district_from_feature(f: geojson::Feature) -> Result<District, String> {
    let props = f.properties.unwrap_or_default();
    let id = prop_str(&props, "id")
        .or_else(|| {
            f.id.as_ref().map(|i| match i {
                geojson::feature::Id::String(s) => s.clone(),
                geojson::feature::Id::Number(n) => n.to_string(),
            })
        })
        .ok_or("property \"id\" is missing; give every district a unique id")?;
    let name = prop_str(&props, "name")
        .ok_or_else(|| format!("district \"{id}\": property \"name\" is missing"))?;
    let jma_code = prop_str(&props, "jma_code").ok_or_else(|| {
        format!("district \"{id}\": property \"jma_code\" is missing; give the 7-digit JMA 市町村等 code, e.g. \"0620100\"")
    })?;
    if !is_jma_code(&jma_code) {
        return Err(format!(
            "district \"{id}\": jma_code \"{jma_code}\" is not a 7-digit JMA 市町村等 code (e.g. \"0620100\" for 山形市)"
        ));
    }
    let seismic_code = prop_str(&props, "seismic_code");
    if let Some(c) = &seismic_code {
        if !is_jma_code(c) {
            return Err(format!(
                "district \"{id}\": seismic_code \"{c}\" is not a 7-digit JMA code"
            ));
        }
    }
    let geom = f
        .geometry
        .ok_or_else(|| format!("district \"{id}\": no geometry"))?;
    let geometry: geo::Geometry<f64> = geom
        .try_into()
        .map_err(|e| format!("district \"{id}\": bad geometry: {e}"))?;
    let geometry = match geometry {
        geo::Geometry::Polygon(p) => MultiPolygon::new(vec![p]),
        geo::Geometry::MultiPolygon(mp) => mp,
        other => {
            return Err(format!(
                "district \"{id}\": geometry must be a Polygon or MultiPolygon, not {}",
                geometry_name(&other)
            ))
        }
    };
    let label = geometry
        .interior_point()
        .ok_or_else(|| format!("district \"{id}\": the polygon is empty"))?;
    let label_point = LatLon::new(label.y(), label.x()).ok_or_else(|| {
        format!("district \"{id}\": coordinates are not longitude/latitude degrees")
    })?;
    Ok(District {
        id,
        name,
        jma_code,
        group: prop_str(&props, "group"),
        seismic_code,
        geometry,
        label_point,
    })
}

fn geometry_name(g: &geo::Geometry<f64>) -> &'static str {
    match g {
        geo::Geometry::Point(_) => "a Point",
        geo::Geometry::Line(_) | geo::Geometry::LineString(_) => "a LineString",
        geo::Geometry::MultiPoint(_) => "a MultiPoint",
        geo::Geometry::MultiLineString(_) => "a MultiLineString",
        geo::Geometry::GeometryCollection(_) => "a GeometryCollection",
        _ => "another geometry type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_SQUARES: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"id":"a","name":"A町","jma_code":"0620100"},
       "geometry":{"type":"Polygon","coordinates":[[[140.0,38.0],[140.1,38.0],[140.1,38.1],[140.0,38.1],[140.0,38.0]]]}},
      {"type":"Feature","properties":{"id":"b","name":"B町","jma_code":"0620100","group":"北"},
       "geometry":{"type":"MultiPolygon","coordinates":[[[[140.1,38.0],[140.2,38.0],[140.2,38.1],[140.1,38.1],[140.1,38.0]]]]}},
      {"type":"Feature","properties":{"id":"c","name":"C町","jma_code":"620100"},
       "geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},
      {"type":"Feature","properties":{"id":"a","name":"A町again","jma_code":"0620100"},
       "geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},
      {"type":"Feature","properties":{"id":"p","name":"P","jma_code":"0620100"},
       "geometry":{"type":"Point","coordinates":[140.0,38.0]}}
    ]}"#;

    #[test]
    fn bad_features_are_reported_by_number_and_good_ones_load() {
        let (d, report) = Districts::from_geojson_str(TWO_SQUARES).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(report.loaded, 2);
        let nums: Vec<u64> = report.errors.iter().map(|e| e.0).collect();
        assert_eq!(nums, vec![3, 4, 5], "{:?}", report.errors);
        assert!(report.errors[0]
            .1
            .contains("jma_code \"620100\" is not a 7-digit"));
        assert!(report.errors[1].1.contains("repeats feature 1"));
        assert!(report.errors[2].1.contains("not a Point"));
    }

    #[test]
    fn a_point_is_located_in_the_polygon_that_contains_it() {
        let (d, _) = Districts::from_geojson_str(TWO_SQUARES).unwrap();
        assert_eq!(
            d.locate(LatLon::new(38.05, 140.05).unwrap()).unwrap().id,
            "a"
        );
        assert_eq!(
            d.locate(LatLon::new(38.05, 140.15).unwrap()).unwrap().id,
            "b"
        );
        assert!(d.locate(LatLon::new(38.05, 140.25).unwrap()).is_none());
        // On the shared border: the first district in the file.
        assert_eq!(
            d.locate(LatLon::new(38.05, 140.1).unwrap()).unwrap().id,
            "a"
        );
    }

    #[test]
    fn text_that_is_not_a_feature_collection_is_an_error() {
        assert!(Districts::from_geojson_str("{\"type\":\"Point\",\"coordinates\":[1,2]}").is_err());
        assert!(Districts::from_geojson_str("<xml/>").is_err());
    }
}
