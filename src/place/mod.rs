//! Place data: districts, shelters, hazards and hazard links — pure, no I/O except reading the files given.
//!
//! # Design constraints
//! * **Districts** come from one GeoJSON file: a Polygon or MultiPolygon per district with the properties
//!   `id`, `name` and `jma_code` (the 7-digit JMA 市町村等 code the district belongs to; JMA warnings are issued
//!   per 市町村等, so this is the join key between a warning and the residents of a district). Optional:
//!   `group` (e.g. the ward, used to page the registration list) and `seismic_code` (the code used by
//!   earthquake telegrams, which for 政令指定都市 is the ward, not the city — see `deploy/demo/README.md`).
//!   Point-in-polygon goes through an R-tree of bounding boxes, then an exact test on the few candidates.
//! * **Shelters** come from GSI's 指定緊急避難場所 CSV (national or per-municipality column set, CRLF, quoted
//!   newlines), GSI's GeoJSON of the same, and GSI's 指定避難所 GeoJSON. Every bad row is returned in a
//!   [`LoadReport`] with its line number (CSV) or feature number (GeoJSON) — never dropped silently.
//! * **Distances** are great-circle (haversine, mean Earth radius 6,371,008.8 m). The R-tree works in a local
//!   equirectangular plane (longitude scaled by cos of the data's mean latitude), whose error over a city
//!   (< 1° across) is below 2 %; nearest-neighbour candidates are re-ranked by haversine, and the search only
//!   stops once the planar distance exceeds the N-th haversine distance by a 5 % margin, so the result is the
//!   exact great-circle order.
//! * Shelter **status** (open/closed/full) is operator state and lives in SQLite ([`status`]); the queries
//!   here take it as a function so they stay pure.

pub mod demo_data;
pub mod district;
pub mod links;
pub mod shelter;
pub mod status;
pub mod web;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use district::{District, Districts};
pub use links::{HazardLinks, KikikuruLayer, LinkTemplates};
pub use shelter::{Limits, Need, Shelter, ShelterKind, Shelters, Suggestion};

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres between two (lat, lon) points in degrees.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// The eight hazards for which a 指定緊急避難場所 is designated, in GSI's column order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hazard {
    /// 洪水
    Flood,
    /// 崖崩れ、土石流及び地滑り
    Landslide,
    /// 高潮
    StormSurge,
    /// 地震
    Earthquake,
    /// 津波
    Tsunami,
    /// 大規模な火事
    LargeFire,
    /// 内水氾濫
    InlandFlood,
    /// 火山現象
    Volcano,
}

impl Hazard {
    pub const ALL: [Hazard; 8] = [
        Hazard::Flood,
        Hazard::Landslide,
        Hazard::StormSurge,
        Hazard::Earthquake,
        Hazard::Tsunami,
        Hazard::LargeFire,
        Hazard::InlandFlood,
        Hazard::Volcano,
    ];

    /// The GSI column header for this hazard.
    pub fn gsi_column(self) -> &'static str {
        match self {
            Hazard::Flood => "洪水",
            Hazard::Landslide => "崖崩れ、土石流及び地滑り",
            Hazard::StormSurge => "高潮",
            Hazard::Earthquake => "地震",
            Hazard::Tsunami => "津波",
            Hazard::LargeFire => "大規模な火事",
            Hazard::InlandFlood => "内水氾濫",
            Hazard::Volcano => "火山現象",
        }
    }

    /// The name shown to residents and operators.
    pub fn label_ja(self) -> &'static str {
        match self {
            Hazard::Landslide => "崖崩れ・土石流・地滑り",
            other => other.gsi_column(),
        }
    }

    /// Stable ASCII name (config, URLs, CLI).
    pub fn slug(self) -> &'static str {
        match self {
            Hazard::Flood => "flood",
            Hazard::Landslide => "landslide",
            Hazard::StormSurge => "storm_surge",
            Hazard::Earthquake => "earthquake",
            Hazard::Tsunami => "tsunami",
            Hazard::LargeFire => "large_fire",
            Hazard::InlandFlood => "inland_flood",
            Hazard::Volcano => "volcano",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Accepts the slug, the GSI column name or the Japanese label.
    pub fn parse(s: &str) -> Option<Hazard> {
        let s = s.trim();
        Hazard::ALL
            .into_iter()
            .find(|h| h.slug() == s || h.gsi_column() == s || h.label_ja() == s)
    }
}

impl fmt::Display for Hazard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label_ja())
    }
}

/// A set of hazards (one bit each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HazardSet(u8);

impl HazardSet {
    pub fn insert(&mut self, h: Hazard) {
        self.0 |= h.bit();
    }
    pub fn contains(self, h: Hazard) -> bool {
        self.0 & h.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Hazard> {
        Hazard::ALL.into_iter().filter(move |h| self.contains(*h))
    }
}

impl FromIterator<Hazard> for HazardSet {
    fn from_iter<T: IntoIterator<Item = Hazard>>(iter: T) -> Self {
        let mut s = HazardSet::default();
        for h in iter {
            s.insert(h);
        }
        s
    }
}

/// What happened while loading a file: how many items were loaded and every item that was not, with where it
/// is in the file (the CSV line on which the record starts, or the 1-based GeoJSON feature number) and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub loaded: usize,
    pub errors: Vec<(u64, String)>,
    /// The encoding a CSV file was read in (UTF-8 or Shift_JIS, [`crate::text::decode_csv`]).
    pub encoding: Option<crate::text::CsvEncoding>,
}

impl LoadReport {
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// One line per error, e.g. `shelters.csv:12: 緯度 "abc" is not a number`.
    pub fn lines(&self, file: &str) -> Vec<String> {
        self.errors
            .iter()
            .map(|(l, m)| format!("{file}:{l}: {m}"))
            .collect()
    }
}

/// Maps byte offsets of CSV records to 1-based line numbers. The `csv` crate's own line count lags by one
/// on CRLF files (the `\n` of a record's terminator is consumed with the next record), so line numbers are
/// computed from the record's byte offset instead: skip the leftover `\r`/`\n`, count the `\n` before it.
pub(crate) struct LineIndex<'a> {
    bytes: &'a [u8],
    newlines: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        LineIndex {
            bytes,
            newlines: bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i)
                .collect(),
        }
    }

    pub(crate) fn line_of(&self, record: &csv::StringRecord) -> Option<u64> {
        let mut off = record.position()?.byte() as usize;
        while off < self.bytes.len() && matches!(self.bytes[off], b'\r' | b'\n') {
            off += 1;
        }
        Some(self.newlines.partition_point(|&n| n < off) as u64 + 1)
    }

    pub(crate) fn line_of_error(&self, e: &csv::Error) -> Option<u64> {
        let mut off = e.position()?.byte() as usize;
        while off < self.bytes.len() && matches!(self.bytes[off], b'\r' | b'\n') {
            off += 1;
        }
        Some(self.newlines.partition_point(|&n| n < off) as u64 + 1)
    }
}

/// A file that could not be read at all (missing, not UTF-8, not GeoJSON). Bad rows are not errors: they go
/// into the [`LoadReport`].
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
}

/// A latitude/longitude pair in degrees (WGS84; JGD2011 differs by well under a metre).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

impl LatLon {
    /// Rejects NaN and out-of-range values.
    pub fn new(lat: f64, lon: f64) -> Option<LatLon> {
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
            .then_some(LatLon { lat, lon })
    }

    pub fn distance_m(self, other: LatLon) -> f64 {
        haversine_m(self.lat, self.lon, other.lat, other.lon)
    }
}

/// `[place]`: where the city's districts and shelters are, and the hazard-link templates.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PlaceConfig {
    /// Load the districts and shelters (the default). `false` runs without them — no disaster alerts, no
    /// registration by district, no shelter map — for trials and tests; `sonae check` warns about it.
    pub enabled: bool,
    /// Name of the municipality as residents know it (used in messages), e.g. "山形市".
    pub city_name: String,
    /// GeoJSON FeatureCollection of districts (properties `id`, `name`, `jma_code`; optional `group`).
    pub districts: PathBuf,
    /// GSI shelter files: 指定緊急避難場所 CSV (`.csv`) or GeoJSON, and 指定避難所 GeoJSON.
    pub shelters: Vec<PathBuf>,
    /// URL templates of the hazard links.
    pub links: LinkTemplates,
}

impl Default for PlaceConfig {
    fn default() -> Self {
        PlaceConfig {
            enabled: true,
            city_name: "札幌市".into(),
            districts: "/etc/sonae/districts.geojson".into(),
            shelters: vec!["/etc/sonae/shelters.csv".into()],
            links: LinkTemplates::default(),
        }
    }
}

impl PlaceConfig {
    /// Checks values that do not need the files (the files are read by [`PlaceData::load`]).
    pub fn validate(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.city_name.trim().is_empty() {
            out.push(
                "place.city_name: is empty; give the municipality's name, e.g. \"山形市\"".into(),
            );
        }
        if self.enabled && self.districts.as_os_str().is_empty() {
            out.push("place.districts: is empty; give the districts GeoJSON file, e.g. \"/etc/sonae/districts.geojson\"".into());
        }
        if self.enabled && self.shelters.is_empty() {
            out.push(
                "place.shelters: is empty; give at least GSI's 指定緊急避難場所 CSV of the city"
                    .into(),
            );
        }
        out.extend(self.links.validate("place.links"));
        out
    }
}

/// Districts and shelters loaded from the configured files, with what went wrong in them.
#[derive(Debug)]
pub struct PlaceData {
    pub districts: Districts,
    pub shelters: Shelters,
    /// One line per bad feature or row, `FILE:LINE: message`.
    pub problems: Vec<String>,
}

impl PlaceData {
    /// Reads every configured file. A missing or unreadable file is an error; bad rows are `problems`.
    pub fn load(cfg: &PlaceConfig) -> Result<PlaceData, PlaceError> {
        let (districts, dreport) = Districts::load(&cfg.districts)?;
        let (shelters, sreports) = Shelters::load_files(&cfg.shelters)?;
        let mut problems = dreport.lines(&cfg.districts.display().to_string());
        for (path, r) in &sreports {
            problems.extend(r.lines(&path.display().to_string()));
        }
        Ok(PlaceData::new(districts, shelters, problems))
    }

    /// Puts loaded districts and shelters together. A site whose id is not a GSI 共通ID belongs to the
    /// municipality of the district it lies in.
    pub fn new(districts: Districts, mut shelters: Shelters, problems: Vec<String>) -> PlaceData {
        shelters
            .fill_municipalities(|s| districts.locate(s.at).map(|d| d.jma_code[..5].to_string()));
        PlaceData {
            districts,
            shelters,
            problems,
        }
    }

    /// Whether any indoor 指定避難所 is loaded (alerts for 大雪・暴風雪・暴風 name only those).
    pub fn has_indoor_shelters(&self) -> bool {
        self.shelters
            .all()
            .iter()
            .any(|s| s.kind == ShelterKind::Evacuation)
    }

    /// Which shelters a district's alert may name (see [`Shelters::suggest`]): within `max_km` of the
    /// district, and only the district's own municipality when `same_municipality`.
    pub fn limits_for(&self, district: &District, max_km: f64, same_municipality: bool) -> Limits {
        Limits {
            max_m: Some(max_km * 1000.0),
            municipalities: same_municipality.then(|| district.municipality_codes()),
        }
    }

    /// [`PlaceData::load`] for the daemon: every bad row becomes an operator-visible problem
    /// (`source = "place.load"`), and an unreadable file is recorded before the error is returned.
    pub async fn load_and_record(
        cfg: &PlaceConfig,
        store: &crate::store::Store,
    ) -> Result<PlaceData, PlaceError> {
        match PlaceData::load(cfg) {
            Ok(data) => {
                for p in &data.problems {
                    store
                        .record_problem(
                            "place.load",
                            format!("地区・避難所データの不正な行: {p}"),
                            None,
                        )
                        .await;
                }
                Ok(data)
            }
            Err(e) => {
                store
                    .record_problem(
                        "place.load",
                        format!("地区・避難所データを読めません: {e}"),
                        None,
                    )
                    .await;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_a_known_distance() {
        // 札幌駅 → 大通 (about 770 m north-south at the same longitude): 0.0069° of latitude.
        let d = haversine_m(43.0687, 141.3508, 43.0618, 141.3508);
        assert!((d - 767.3).abs() < 1.0, "{d}");
    }

    #[test]
    fn hazards_parse_from_slug_gsi_column_and_label() {
        assert_eq!(Hazard::parse("flood"), Some(Hazard::Flood));
        assert_eq!(
            Hazard::parse("崖崩れ、土石流及び地滑り"),
            Some(Hazard::Landslide)
        );
        assert_eq!(
            Hazard::parse("崖崩れ・土石流・地滑り"),
            Some(Hazard::Landslide)
        );
        assert_eq!(Hazard::parse("大規模な火事"), Some(Hazard::LargeFire));
        assert_eq!(Hazard::parse("台風"), None);
    }

    #[test]
    fn a_hazard_set_holds_exactly_what_was_inserted() {
        let s: HazardSet = [Hazard::Flood, Hazard::Volcano].into_iter().collect();
        assert!(s.contains(Hazard::Flood) && s.contains(Hazard::Volcano));
        assert!(!s.contains(Hazard::Earthquake));
        assert_eq!(s.iter().count(), 2);
    }
}
