//! Shelters from GSI's open data (指定緊急避難場所 CSV/GeoJSON, 指定避難所 GeoJSON) and the nearest-shelter query.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rstar::primitives::GeomWithData;
use rstar::RTree;
use serde::Serialize;

use super::status::ShelterStatus;
use super::{Hazard, HazardSet, LatLon, LoadReport, PlaceError};

/// The two legal categories (災害対策基本法, 2013 revision).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShelterKind {
    /// 指定緊急避難場所: where to flee now; designated per hazard.
    Emergency,
    /// 指定避難所: where to stay until the danger is over; not hazard-specific.
    Evacuation,
}

impl ShelterKind {
    pub fn label_ja(self) -> &'static str {
        match self {
            ShelterKind::Emergency => "指定緊急避難場所",
            ShelterKind::Evacuation => "指定避難所",
        }
    }
}

/// One site. `id` is GSI's 共通ID (`E` + 5-digit municipality code + 8 digits; emergency sites end in 2xx,
/// stay-type shelters in 1xx), unique across both lists.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shelter {
    pub id: String,
    pub kind: ShelterKind,
    pub name: String,
    pub address: String,
    pub at: LatLon,
    /// Hazards the site is designated for (always empty for 指定避難所).
    #[serde(skip)]
    pub hazards: HazardSet,
    /// 指定避難所との住所同一 / 指定緊急避難場所との住所同一.
    pub same_address_as_other_kind: bool,
    /// 受入対象者 = 要配慮者 (welfare shelter).
    pub welfare: bool,
    pub note: String,
    /// The municipality (5-digit 全国地方公共団体コード without check digit, e.g. `01214` 稚内市) the site
    /// belongs to: from its GSI 共通ID (`E` + this code + 8 digits), else the municipality of the district it
    /// lies in ([`super::PlaceData::load`]); `None` when neither tells.
    pub municipality: Option<String>,
}

/// The municipality code in a GSI 共通ID (`E0121400001201` → `01214`).
pub fn municipality_of_gsi_id(id: &str) -> Option<String> {
    let code = id.strip_prefix('E')?.get(..5)?;
    (id.len() >= 14 && code.bytes().all(|b| b.is_ascii_digit())).then(|| code.to_string())
}

/// What the resident needs a site for. Which need a hazard calls for is decided in one place,
/// `disaster::engine::Phenomenon::shelter_need` (see ARCHITECTURE.md, "Which shelters an alert names").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Need {
    /// Flee from this hazard now: a 指定緊急避難場所 designated for it (may be outdoors: parks, grounds).
    Flee(Hazard),
    /// Shelter indoors: a 指定避難所 (a building), not a 福祉避難所 (those take 要配慮者 only).
    Stay,
}

impl Need {
    /// Every need, in the order the console lists them.
    pub fn all() -> impl Iterator<Item = Need> {
        Hazard::ALL
            .into_iter()
            .map(Need::Flee)
            .chain(std::iter::once(Need::Stay))
    }

    /// Stable ASCII name (`/shelters?hazard=…`, console forms): the hazard's slug, or `stay`.
    pub fn slug(self) -> &'static str {
        match self {
            Need::Flee(h) => h.slug(),
            Need::Stay => "stay",
        }
    }

    /// Reads [`Need::slug`], a hazard's GSI column or label, or `stay` / `指定避難所`.
    pub fn parse(s: &str) -> Option<Need> {
        match s.trim() {
            "stay" | "指定避難所" => Some(Need::Stay),
            other => Hazard::parse(other).map(Need::Flee),
        }
    }

    /// What residents and operators read, e.g. 「洪水」 or 「屋内の指定避難所」.
    pub fn label_ja(self) -> &'static str {
        match self {
            Need::Flee(h) => h.label_ja(),
            Need::Stay => "屋内の指定避難所",
        }
    }
}

impl Shelter {
    pub fn suits(&self, need: Need) -> bool {
        match need {
            Need::Flee(h) => self.kind == ShelterKind::Emergency && self.hazards.contains(h),
            Need::Stay => self.kind == ShelterKind::Evacuation && !self.welfare,
        }
    }
}

/// Where an alert may look for shelters: no farther than `max_m` from the district, and, when
/// `municipalities` is given, only sites of those municipalities (5-digit codes; a site whose municipality is
/// unknown is left out).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    pub max_m: Option<f64>,
    pub municipalities: Option<Vec<String>>,
}

impl Limits {
    /// No limit (the resident map).
    pub fn none() -> Limits {
        Limits::default()
    }

    fn admits(&self, s: &Shelter) -> bool {
        match &self.municipalities {
            None => true,
            Some(list) => s
                .municipality
                .as_ref()
                .is_some_and(|m| list.iter().any(|x| x == m)),
        }
    }
}

/// One shelter an alert or the map names: the site, its great-circle distance and its status.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Suggestion<'a> {
    pub shelter: &'a Shelter,
    pub distance_m: f64,
    /// [`ShelterStatus::Open`] (the city opened it) or [`ShelterStatus::Unknown`] (designated, not announced).
    pub status: ShelterStatus,
}

type PointEntry = GeomWithData<[f64; 2], usize>;

/// All shelters with a spatial index in a local equirectangular plane (see the module constraints).
#[derive(Debug)]
pub struct Shelters {
    list: Vec<Shelter>,
    by_id: HashMap<String, usize>,
    tree: RTree<PointEntry>,
    cos_lat0: f64,
}

/// Metres per degree of latitude on the mean-radius sphere.
const M_PER_DEG: f64 = super::EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

impl Shelters {
    /// Builds the index. Ids must be unique (the loaders guarantee it).
    pub fn new(list: Vec<Shelter>) -> Shelters {
        let cos_lat0 = if list.is_empty() {
            1.0
        } else {
            (list.iter().map(|s| s.at.lat).sum::<f64>() / list.len() as f64)
                .to_radians()
                .cos()
        };
        let by_id = list
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let tree = RTree::bulk_load(
            list.iter()
                .enumerate()
                .map(|(i, s)| GeomWithData::new([s.at.lon * cos_lat0, s.at.lat], i))
                .collect(),
        );
        Shelters {
            list,
            by_id,
            tree,
            cos_lat0,
        }
    }

    /// Loads every file (`.csv` = GSI 指定緊急避難場所 CSV; `.geojson`/`.json` = GSI GeoJSON of either kind).
    /// A file that cannot be read is an error; bad rows and ids repeated across files go to the report of the
    /// file they are in.
    pub fn load_files(
        paths: &[PathBuf],
    ) -> Result<(Shelters, Vec<(PathBuf, LoadReport)>), PlaceError> {
        let mut all = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut reports = Vec::new();
        for path in paths {
            let (list, mut report) = load_file(path)?;
            if let Some(enc) = report.encoding {
                tracing::info!(file = %path.display(), encoding = enc.label(), "read shelter CSV");
            }
            for (line, s) in list {
                if let Some(prev) = seen.get(&s.id) {
                    report.loaded -= 1;
                    report.errors.push((
                        line,
                        format!(
                            "共通ID \"{}\" was already loaded from {prev}; ids must be unique",
                            s.id
                        ),
                    ));
                    continue;
                }
                seen.insert(s.id.clone(), path.display().to_string());
                all.push(s);
            }
            report.errors.sort_by_key(|e| e.0);
            reports.push((path.clone(), report));
        }
        Ok((Shelters::new(all), reports))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn all(&self) -> &[Shelter] {
        &self.list
    }

    pub fn get(&self, id: &str) -> Option<&Shelter> {
        self.by_id.get(id).map(|&i| &self.list[i])
    }

    /// Sets the municipality of every site that has none from `f` (the index is unaffected).
    pub fn fill_municipalities(&mut self, f: impl Fn(&Shelter) -> Option<String>) {
        for s in &mut self.list {
            if s.municipality.is_none() {
                s.municipality = f(s);
            }
        }
    }

    /// The shelters to name for `need` from `from` (the one rule for alerts and the resident map): at most
    /// `n`, within `limits`, never closed or full. Those the city **opened** come first, nearest first; the
    /// remaining places go to designated sites whose status the city has not set ([`ShelterStatus::Unknown`]),
    /// nearest first — the caller says 「開設中」 only for the first kind.
    pub fn suggest(
        &self,
        from: LatLon,
        need: Need,
        n: usize,
        limits: &Limits,
        status: impl Fn(&str) -> ShelterStatus,
    ) -> Vec<Suggestion<'_>> {
        let max_m = limits.max_m.unwrap_or(f64::INFINITY);
        let pick = |want: ShelterStatus, n: usize| {
            self.nearest_within(from, n, max_m, |s| {
                s.suits(need) && limits.admits(s) && status(&s.id) == want
            })
            .into_iter()
            .map(move |(shelter, distance_m)| Suggestion {
                shelter,
                distance_m,
                status: want,
            })
        };
        let mut out: Vec<Suggestion<'_>> = pick(ShelterStatus::Open, n).collect();
        let rest = n - out.len();
        out.extend(pick(ShelterStatus::Unknown, rest));
        out
    }

    /// The `n` nearest sites accepted by `keep`, nearest first (great-circle metres).
    pub fn nearest_matching(
        &self,
        from: LatLon,
        n: usize,
        keep: impl Fn(&Shelter) -> bool,
    ) -> Vec<(&Shelter, f64)> {
        self.nearest_within(from, n, f64::INFINITY, keep)
    }

    /// The `n` nearest sites accepted by `keep` no farther than `max_m`, nearest first (great-circle
    /// metres). The walk stops once the planar distance passes the limit by the 5 % margin, so a limit
    /// keeps the query local however many shelters are loaded.
    pub fn nearest_within(
        &self,
        from: LatLon,
        n: usize,
        max_m: f64,
        keep: impl Fn(&Shelter) -> bool,
    ) -> Vec<(&Shelter, f64)> {
        if n == 0 {
            return Vec::new();
        }
        let q = [from.lon * self.cos_lat0, from.lat];
        let mut found: Vec<(&Shelter, f64)> = Vec::new();
        for (entry, d2) in self.tree.nearest_neighbor_iter_with_distance_2(&q) {
            let planar_m = d2.sqrt() * M_PER_DEG;
            if planar_m > max_m * 1.05 {
                break;
            }
            if found.len() >= n && planar_m > found[n - 1].1 * 1.05 {
                break;
            }
            let s = &self.list[entry.data];
            if !keep(s) {
                continue;
            }
            let d = from.distance_m(s.at);
            if d > max_m {
                continue;
            }
            found.push((s, d));
            found.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.id.cmp(&b.0.id)));
        }
        found.truncate(n);
        found
    }
}

fn load_file(path: &Path) -> Result<(Vec<(u64, Shelter)>, LoadReport), PlaceError> {
    let bytes = std::fs::read(path).map_err(|source| PlaceError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let res = if ext == "csv" {
        parse_gsi_csv(&bytes)
    } else {
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            "not UTF-8 (convert Shift_JIS files with `iconv -f CP932 -t UTF-8`)".to_string()
        });
        text.and_then(parse_gsi_geojson)
    };
    res.map_err(|message| PlaceError::Format {
        path: path.display().to_string(),
        message,
    })
}

struct Columns {
    id: usize,
    name: usize,
    address: usize,
    hazards: [usize; 8],
    same_address: Option<usize>,
    lat: usize,
    lon: usize,
    note: Option<usize>,
}

/// Parses GSI's 指定緊急避難場所 CSV (national file with 都道府県名及び市町村名, or per-municipality without it),
/// in UTF-8 or Shift_JIS (CP932). Returns the sites with the line each record starts on. `Err` when the file
/// is in neither encoding or the header is not GSI's.
pub fn parse_gsi_csv(bytes: &[u8]) -> Result<(Vec<(u64, Shelter)>, LoadReport), String> {
    let decoded = crate::text::decode_csv(bytes)?;
    let bytes = decoded.text.as_bytes();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let lines = crate::place::LineIndex::new(bytes);
    let headers = rdr
        .headers()
        .map_err(|e| format!("cannot read the header line: {e}"))?
        .clone();
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let need = |name: &str| {
        find(name).ok_or_else(|| {
            format!("column \"{name}\" is missing from the header; expected GSI's 指定緊急避難場所 columns (共通ID, 施設・場所名, 住所, 洪水 … 火山現象, 緯度, 経度)")
        })
    };
    let mut hazards = [0usize; 8];
    for (i, h) in Hazard::ALL.iter().enumerate() {
        hazards[i] = need(h.gsi_column())?;
    }
    let cols = Columns {
        id: need("共通ID")?,
        name: need("施設・場所名")?,
        address: need("住所")?,
        hazards,
        same_address: find("指定避難所との住所同一"),
        lat: need("緯度")?,
        lon: need("経度")?,
        note: find("備考"),
    };
    let mut report = LoadReport {
        encoding: Some(decoded.encoding),
        ..LoadReport::default()
    };
    let mut out = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut rec = csv::StringRecord::new();
    loop {
        let line_before = rdr.position().line();
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let line = lines.line_of(&rec).unwrap_or(line_before);
                if rec.iter().all(|f| f.trim().is_empty()) {
                    continue; // blank line (e.g. a trailing empty line)
                }
                match shelter_from_csv(&rec, &cols) {
                    Ok(s) => {
                        if let Some(first) = seen.get(&s.id) {
                            report.errors.push((
                                line,
                                format!(
                                    "共通ID \"{}\" repeats line {first}; ids must be unique",
                                    s.id
                                ),
                            ));
                        } else {
                            seen.insert(s.id.clone(), line);
                            out.push((line, s));
                        }
                    }
                    Err(m) => report.errors.push((line, m)),
                }
            }
            Err(e) => {
                let line = lines.line_of_error(&e).unwrap_or(line_before + 1);
                // The text is decoded already, so this is the CSV structure (an unclosed quote).
                report
                    .errors
                    .push((line, format!("unreadable CSV row: {e}")));
                break;
            }
        }
    }
    report.loaded = out.len();
    Ok((out, report))
}

fn flag(value: &str, column: &str) -> Result<bool, String> {
    match value.trim() {
        "" | "0" => Ok(false),
        "1" => Ok(true),
        other => Err(format!("{column} is \"{other}\"; expected 1 or empty")),
    }
}

fn coord(value: &str, column: &str) -> Result<f64, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(format!("{column} is empty"));
    }
    v.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| format!("{column} \"{v}\" is not a number"))
}

fn lat_lon(lat: f64, lon: f64) -> Result<LatLon, String> {
    LatLon::new(lat, lon).ok_or_else(|| {
        format!("緯度/経度 ({lat}, {lon}) is out of range (latitude −90…90, longitude −180…180; are the columns swapped?)")
    })
}

fn shelter_from_csv(rec: &csv::StringRecord, c: &Columns) -> Result<Shelter, String> {
    let get = |i: usize| rec.get(i).unwrap_or("");
    let max = [c.id, c.name, c.address, c.lat, c.lon]
        .into_iter()
        .chain(c.hazards)
        .max()
        .unwrap_or(0);
    if rec.len() <= max {
        return Err(format!(
            "the row has {} fields; the header has at least {}",
            rec.len(),
            max + 1
        ));
    }
    let id = get(c.id).trim().to_string();
    if id.is_empty() {
        return Err("共通ID is empty".into());
    }
    let name = get(c.name).trim().to_string();
    if name.is_empty() {
        return Err(format!("共通ID {id}: 施設・場所名 is empty"));
    }
    let mut hazards = HazardSet::default();
    for (i, h) in Hazard::ALL.iter().enumerate() {
        if flag(get(c.hazards[i]), h.gsi_column()).map_err(|m| format!("共通ID {id}: {m}"))? {
            hazards.insert(*h);
        }
    }
    if hazards.is_empty() {
        return Err(format!(
            "共通ID {id}: no hazard column is 1; a 指定緊急避難場所 is designated for at least one hazard"
        ));
    }
    let lat = coord(get(c.lat), "緯度").map_err(|m| format!("共通ID {id}: {m}"))?;
    let lon = coord(get(c.lon), "経度").map_err(|m| format!("共通ID {id}: {m}"))?;
    let at = lat_lon(lat, lon).map_err(|m| format!("共通ID {id}: {m}"))?;
    Ok(Shelter {
        id: id.clone(),
        kind: ShelterKind::Emergency,
        name,
        address: get(c.address).trim().to_string(),
        at,
        hazards,
        same_address_as_other_kind: match c.same_address {
            Some(i) => {
                flag(get(i), "指定避難所との住所同一").map_err(|m| format!("共通ID {id}: {m}"))?
            }
            None => false,
        },
        welfare: false,
        note: c
            .note
            .map(|i| get(i).trim().to_string())
            .unwrap_or_default(),
        municipality: municipality_of_gsi_id(&id),
    })
}

/// Parses GSI's GeoJSON (指定緊急避難場所 when the hazard properties are present, otherwise 指定避難所).
/// The "line" of each item is its 1-based feature number. Values may be `null` or `""`.
pub fn parse_gsi_geojson(text: &str) -> Result<(Vec<(u64, Shelter)>, LoadReport), String> {
    let gj: geojson::GeoJson = text.parse().map_err(|e| format!("not GeoJSON: {e}"))?;
    let geojson::GeoJson::FeatureCollection(fc) = gj else {
        return Err("expected a GeoJSON FeatureCollection of shelter points".into());
    };
    let mut report = LoadReport::default();
    let mut out = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (i, f) in fc.features.into_iter().enumerate() {
        let n = i as u64 + 1;
        match shelter_from_feature(f) {
            Ok(s) => {
                if let Some(first) = seen.get(&s.id) {
                    report.errors.push((
                        n,
                        format!("feature {n}: 共通ID \"{}\" repeats feature {first}", s.id),
                    ));
                } else {
                    seen.insert(s.id.clone(), n);
                    out.push((n, s));
                }
            }
            Err(m) => report.errors.push((n, format!("feature {n}: {m}"))),
        }
    }
    report.loaded = out.len();
    Ok((out, report))
}

fn shelter_from_feature(f: geojson::Feature) -> Result<Shelter, String> {
    let props = f.properties.unwrap_or_default();
    let s = |k: &str| -> String {
        match props.get(k) {
            Some(serde_json::Value::String(v)) => v.trim().to_string(),
            Some(serde_json::Value::Number(v)) => v.to_string(),
            _ => String::new(),
        }
    };
    let id = s("共通ID");
    if id.is_empty() {
        return Err("共通ID is missing".into());
    }
    let name = s("施設・場所名");
    if name.is_empty() {
        return Err(format!("共通ID {id}: 施設・場所名 is missing"));
    }
    let point = match f.geometry.map(|g| g.value) {
        Some(geojson::Value::Point(p)) if p.len() >= 2 => lat_lon(p[1], p[0]),
        _ => Err("geometry must be a Point [lon, lat]".to_string()),
    }
    .map_err(|m| format!("共通ID {id}: {m}"))?;
    let emergency = props.contains_key(Hazard::Flood.gsi_column());
    let mut hazards = HazardSet::default();
    if emergency {
        for h in Hazard::ALL {
            if flag(&s(h.gsi_column()), h.gsi_column()).map_err(|m| format!("共通ID {id}: {m}"))?
            {
                hazards.insert(h);
            }
        }
        if hazards.is_empty() {
            return Err(format!(
                "共通ID {id}: no hazard property is 1; a 指定緊急避難場所 is designated for at least one hazard"
            ));
        }
    }
    let same_key = if emergency {
        "指定避難所との住所同一"
    } else {
        "指定緊急避難場所との住所同一"
    };
    Ok(Shelter {
        id: id.clone(),
        kind: if emergency {
            ShelterKind::Emergency
        } else {
            ShelterKind::Evacuation
        },
        name,
        address: s("住所"),
        at: point,
        hazards,
        same_address_as_other_kind: flag(&s(same_key), same_key)
            .map_err(|m| format!("共通ID {id}: {m}"))?,
        welfare: s("受入対象者").contains("要配慮者"),
        note: s("備考"),
        municipality: municipality_of_gsi_id(&id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "NO,共通ID,都道府県名及び市町村名,施設・場所名,住所,洪水,崖崩れ、土石流及び地滑り,高潮,地震,津波,大規模な火事,内水氾濫,火山現象,指定避難所との住所同一,緯度,経度,備考\r\n";

    #[test]
    fn quoted_newlines_and_crlf_keep_line_numbers_right() {
        let csv = format!(
            "{HEADER}1,E0000000001201,X市,\"公園\r\n(北側)\",住所,1,,,1,,,,,,38.1,140.1,\r\n2,E0000000002201,X市,学校,住所,,,,,,,,,,38.2,140.2,\r\n3,E0000000003201,X市,体育館,住所,1,,,,,,,,,abc,140.3,\r\n4,E0000000004201,X市,広場,住所,2,,,,,,,,,38.4,140.4,\r\n5,E0000000001201,X市,重複,住所,1,,,,,,,,,38.5,140.5,\r\n6,E0000000006201,X市,ホール,住所,,,,1,,,,,,140.6,38.6,\r\n7,E0000000007201,X市,ok,住所,,,,1,,,,,1,38.7,140.7,メモ\r\n"
        );
        let (list, report) = parse_gsi_csv(csv.as_bytes()).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].1.name, "公園\r\n(北側)");
        assert_eq!(
            list[1].0, 9,
            "record 7 starts on line 9 after the quoted newline"
        );
        let lines: Vec<u64> = report.errors.iter().map(|e| e.0).collect();
        assert_eq!(lines, vec![4, 5, 6, 7, 8], "{:?}", report.errors);
        assert!(report.errors[0].1.contains("no hazard column is 1"));
        assert!(report.errors[1].1.contains("緯度 \"abc\" is not a number"));
        assert!(report.errors[2].1.contains("洪水 is \"2\""));
        assert!(report.errors[3].1.contains("repeats line 2"));
        assert!(report.errors[4].1.contains("out of range"));
        assert!(list[1].1.same_address_as_other_kind);
        assert_eq!(list[1].1.note, "メモ");
    }

    #[test]
    fn per_municipality_files_without_the_prefecture_column_load() {
        let csv = "\u{feff}NO,共通ID,施設・場所名,住所,洪水,崖崩れ、土石流及び地滑り,高潮,地震,津波,大規模な火事,内水氾濫,火山現象,指定避難所との住所同一,緯度,経度,備考\r\n1,E1310100002201,公園,千代田区,,,,1,,,,,,35.68,139.75,\r\n";
        let (list, report) = parse_gsi_csv(csv.as_bytes()).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(list[0].1.id, "E1310100002201");
        assert!(list[0].1.hazards.contains(Hazard::Earthquake));
    }

    #[test]
    fn a_file_without_gsi_columns_is_refused_as_a_whole() {
        let err = parse_gsi_csv(b"a,b,c\r\n1,2,3\r\n").unwrap_err();
        assert!(err.contains("column \"洪水\" is missing"), "{err}");
    }

    fn site(id: &str, lat: f64, lon: f64, hazards: &[Hazard]) -> Shelter {
        Shelter {
            id: id.into(),
            kind: ShelterKind::Emergency,
            name: id.into(),
            address: String::new(),
            at: LatLon { lat, lon },
            hazards: hazards.iter().copied().collect(),
            same_address_as_other_kind: false,
            welfare: false,
            note: String::new(),
            municipality: municipality_of_gsi_id(id),
        }
    }

    #[test]
    fn suggestions_skip_unsuited_closed_and_full_sites_put_opened_ones_first_and_order_by_great_circle_distance(
    ) {
        let s = Shelters::new(vec![
            site("near-quake-only", 43.0601, 141.3501, &[Hazard::Earthquake]),
            site("near-flood-closed", 43.0602, 141.3502, &[Hazard::Flood]),
            site("mid-flood", 43.0650, 141.3500, &[Hazard::Flood]),
            site("far-flood-opened", 43.0800, 141.3500, &[Hazard::Flood]),
            site("east-flood", 43.0600, 141.3560, &[Hazard::Flood]),
        ]);
        let from = LatLon::new(43.06, 141.35).unwrap();
        let status = |id: &str| match id {
            "near-flood-closed" => ShelterStatus::Closed,
            "far-flood-opened" => ShelterStatus::Open,
            _ => ShelterStatus::Unknown,
        };
        let got: Vec<(&str, ShelterStatus)> = s
            .suggest(from, Need::Flee(Hazard::Flood), 3, &Limits::none(), status)
            .iter()
            .map(|x| (x.shelter.id.as_str(), x.status))
            .collect();
        // east-flood is 0.006° of longitude away (488 m at 43°N), mid-flood 0.005° of latitude (556 m):
        // in raw degrees mid-flood would look nearer, on the globe east-flood is. The opened site leads.
        assert_eq!(
            got,
            vec![
                ("far-flood-opened", ShelterStatus::Open),
                ("east-flood", ShelterStatus::Unknown),
                ("mid-flood", ShelterStatus::Unknown)
            ]
        );
        // 1 km: the opened site 2.2 km away is out of reach.
        let near = Limits {
            max_m: Some(1000.0),
            municipalities: None,
        };
        let got: Vec<&str> = s
            .suggest(from, Need::Flee(Hazard::Flood), 3, &near, status)
            .iter()
            .map(|x| x.shelter.id.as_str())
            .collect();
        assert_eq!(got, vec!["east-flood", "mid-flood"]);
        assert!(s
            .suggest(
                from,
                Need::Flee(Hazard::Tsunami),
                3,
                &Limits::none(),
                status
            )
            .is_empty());
    }

    #[test]
    fn the_municipality_comes_from_the_gsi_id_and_limits_keep_to_it() {
        assert_eq!(
            municipality_of_gsi_id("E0121400001201").as_deref(),
            Some("01214")
        );
        assert_eq!(municipality_of_gsi_id("shelter-7"), None);
        let s = Shelters::new(vec![
            site("E0151100001201", 45.33, 142.17, &[Hazard::Earthquake]),
            site("E0121400001201", 45.331, 142.171, &[Hazard::Earthquake]),
        ]);
        let from = LatLon::new(45.3311, 142.1711).unwrap();
        let only = Limits {
            max_m: None,
            municipalities: Some(vec!["01511".into()]),
        };
        let got = s.suggest(from, Need::Flee(Hazard::Earthquake), 3, &only, |_| {
            ShelterStatus::Unknown
        });
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].shelter.id, "E0151100001201");
    }

    #[test]
    fn staying_indoors_means_a_designated_evacuation_shelter_but_not_a_welfare_one() {
        let mut gym = site("E0620100003111", 38.25, 140.31, &[]);
        gym.kind = ShelterKind::Evacuation;
        let mut welfare = gym.clone();
        welfare.id = "E0620100004111".into();
        welfare.welfare = true;
        let park = site("E0620100001201", 38.25, 140.31, &[Hazard::Earthquake]);
        assert!(gym.suits(Need::Stay));
        assert!(!welfare.suits(Need::Stay));
        assert!(!park.suits(Need::Stay));
        for n in Need::all() {
            assert_eq!(Need::parse(n.slug()), Some(n));
        }
    }
}
