//! The demo city (札幌市), derived from real public data by a repeatable step:
//! `sonae demo-data generate --shared ../shared --out deploy/demo`.
//!
//! **Districts** = the 5,901 町丁目 of 札幌市 (Geolonia town list, one official representative point each):
//! no public town polygons exist offline, so each town's district is its **Voronoi cell** among the town
//! points of its own ward, **clipped to the ward's outline** (国土数値情報 N03, 1 % simplified). Every point of
//! a ward polygon thus belongs to exactly one district of that ward — the town whose representative point is
//! nearest. The cells are computed in a local plane (longitude scaled by cos 43.06°) by half-plane clipping
//! against neighbours in order of distance, stopping at the security radius (twice the cell's farthest
//! vertex), so they are exact Voronoi cells; the ward clip uses `geo`'s boolean operations.
//!
//! **JMA codes**: JMA's warning telegrams name 札幌市 as a whole (`0110000`; the ward codes `0110100`…`0111000`
//! have the warning flag 0 in `AreaInformationCity.csv`), while earthquake telegrams use the ward codes
//! (`0110100` 札幌中央区 …). So every district carries `jma_code = 0110000` and `seismic_code` = its ward.
//!
//! **Shelters**: GSI's 指定緊急避難場所 CSV for 札幌市, copied byte for byte.

use std::path::Path;

use anyhow::{bail, Context};
use geo::{BooleanOps, Coord, LineString, MultiPolygon, Polygon};
use rstar::primitives::GeomWithData;
use rstar::RTree;
use serde_json::json;

use super::{Districts, Shelters};

/// The generated districts file, embedded so `sonae demo` runs from any directory.
pub const DEMO_DISTRICTS_GEOJSON: &str =
    include_str!("../../deploy/demo/sapporo-districts.geojson");
/// GSI 指定緊急避難場所 of 札幌市 (copied verbatim).
pub const DEMO_SHELTERS_CSV: &str =
    include_str!("../../deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv");
/// Name of the demo city, for messages.
pub const DEMO_CITY: &str = "札幌市";
/// JMA warning code of the demo city.
pub const DEMO_JMA_CODE: &str = "0110000";

/// The demo city's districts and shelters, from the embedded files.
pub fn demo_city() -> anyhow::Result<(Districts, Shelters)> {
    let (districts, report) = Districts::from_geojson_str(DEMO_DISTRICTS_GEOJSON)
        .map_err(anyhow::Error::msg)
        .context("embedded demo districts")?;
    if !report.is_clean() {
        bail!("embedded demo districts: {:?}", report.errors);
    }
    let (list, report) = super::shelter::parse_gsi_csv(DEMO_SHELTERS_CSV.as_bytes())
        .map_err(anyhow::Error::msg)
        .context("embedded demo shelters")?;
    if !report.is_clean() {
        bail!("embedded demo shelters: {:?}", report.errors);
    }
    Ok((
        districts,
        Shelters::new(list.into_iter().map(|(_, s)| s).collect()),
    ))
}

/// The ten wards: JIS code, name, Geolonia file name part.
pub const WARDS: [(&str, &str, &str); 10] = [
    ("01101", "中央区", "chuo"),
    ("01102", "北区", "kita"),
    ("01103", "東区", "higashi"),
    ("01104", "白石区", "shiroishi"),
    ("01105", "豊平区", "toyohira"),
    ("01106", "南区", "minami"),
    ("01107", "西区", "nishi"),
    ("01108", "厚別区", "atsubetsu"),
    ("01109", "手稲区", "teine"),
    ("01110", "清田区", "kiyota"),
];

/// Local plane: x = lon · cos(lat0), y = lat (degrees).
const LAT0: f64 = 43.06;

fn cos0() -> f64 {
    LAT0.to_radians().cos()
}

/// What the generator did.
#[derive(Debug, Default)]
pub struct GenerateSummary {
    pub districts: usize,
    pub per_ward: Vec<(String, usize)>,
    /// Towns whose clipped cell was empty (left out, named here and in the output README).
    pub empty: Vec<String>,
    pub bytes: usize,
}

#[derive(serde::Deserialize)]
struct Town {
    town: String,
    lat: f64,
    lng: f64,
}

/// Generates `sapporo-districts.geojson` and copies the shelter CSV into `out`.
pub fn generate(shared: &Path, out: &Path) -> anyhow::Result<GenerateSummary> {
    let geo_dir = shared.join("geo");
    let n03_path = geo_dir.join("districts/N03-21_01_210101.json");
    let n03: geojson::FeatureCollection = std::fs::read_to_string(&n03_path)
        .with_context(|| format!("reading {}", n03_path.display()))?
        .parse()
        .with_context(|| format!("parsing {}", n03_path.display()))?;
    let mut summary = GenerateSummary::default();
    let mut lines = Vec::new();
    for (code, ward, slug) in WARDS {
        let ward_poly = n03
            .features
            .iter()
            .find(|f| f.property("N03_007").and_then(|v| v.as_str()) == Some(code))
            .and_then(|f| f.geometry.clone())
            .with_context(|| format!("ward {code} {ward} not found in {}", n03_path.display()))?;
        let ward_geom: geo::Geometry<f64> = ward_poly
            .try_into()
            .with_context(|| format!("ward {code} geometry"))?;
        let ward_mp: MultiPolygon<f64> = match ward_geom {
            geo::Geometry::Polygon(p) => MultiPolygon::new(vec![p]),
            geo::Geometry::MultiPolygon(m) => m,
            _ => bail!("ward {code}: not a polygon"),
        };
        let ward_proj = project_mp(&ward_mp);
        let towns_path = geo_dir.join(format!(
            "districts/geolonia-japanese-addresses-sapporo-{code}-{slug}-ku-towns.json"
        ));
        let towns: Vec<Town> = serde_json::from_str(
            &std::fs::read_to_string(&towns_path)
                .with_context(|| format!("reading {}", towns_path.display()))?,
        )
        .with_context(|| format!("parsing {}", towns_path.display()))?;
        let sites: Vec<[f64; 2]> = towns.iter().map(|t| [t.lng * cos0(), t.lat]).collect();
        let cells = voronoi_cells(&sites, &ward_proj);
        let mut n = 0;
        for (i, (t, cell)) in towns.iter().zip(cells).enumerate() {
            let clipped = cell.intersection(&ward_proj);
            if clipped.0.is_empty() {
                summary.empty.push(format!("{ward}{}", t.town));
                continue;
            }
            let geometry = unproject_mp(&clipped);
            let feature = json!({
                "type": "Feature",
                "properties": {
                    "id": format!("{code}-{:04}", i + 1),
                    "name": t.town,
                    "group": ward,
                    "jma_code": "0110000",
                    "seismic_code": format!("{code}00"),
                    "ward_code": code,
                    "town_point": [t.lng, t.lat],
                },
                "geometry": geometry,
            });
            lines.push(feature.to_string());
            n += 1;
        }
        summary.per_ward.push((ward.to_string(), n));
        summary.districts += n;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let text = format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[\n{}\n]}}\n",
        lines.join(",\n")
    );
    summary.bytes = text.len();
    let dest = out.join("sapporo-districts.geojson");
    std::fs::write(&dest, &text).with_context(|| format!("writing {}", dest.display()))?;
    let csv_name = "sapporo-01100-shitei-kinkyu-hinanbasho.csv";
    let csv_dest = out.join(csv_name);
    if csv_dest.exists() {
        // The source is read-only; a copy of it would be too, and could not be overwritten.
        std::fs::remove_file(&csv_dest)
            .with_context(|| format!("replacing {}", csv_dest.display()))?;
    }
    std::fs::copy(geo_dir.join("shelters").join(csv_name), &csv_dest)
        .with_context(|| format!("copying {csv_name}"))?;
    let mut perm = std::fs::metadata(&csv_dest)?.permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&csv_dest, perm)?;
    Ok(summary)
}

fn project_mp(mp: &MultiPolygon<f64>) -> MultiPolygon<f64> {
    let c = cos0();
    mp.iter()
        .map(|p| {
            let ring = |ls: &LineString<f64>| {
                LineString::new(ls.0.iter().map(|k| Coord { x: k.x * c, y: k.y }).collect())
            };
            Polygon::new(ring(p.exterior()), p.interiors().iter().map(ring).collect())
        })
        .collect()
}

/// Back to lon/lat, rounded to 6 decimals (≈ 0.1 m), as GeoJSON geometry.
fn unproject_mp(mp: &MultiPolygon<f64>) -> serde_json::Value {
    let c = cos0();
    let round = |v: f64| (v * 1e6).round() / 1e6;
    let ring = |ls: &LineString<f64>| -> Vec<[f64; 2]> {
        let mut pts: Vec<[f64; 2]> = ls.0.iter().map(|k| [round(k.x / c), round(k.y)]).collect();
        pts.dedup();
        if pts.first() != pts.last() {
            if let Some(f) = pts.first().copied() {
                pts.push(f);
            }
        }
        pts
    };
    let polys: Vec<Vec<Vec<[f64; 2]>>> = mp
        .iter()
        .map(|p| {
            std::iter::once(ring(p.exterior()))
                .chain(p.interiors().iter().map(ring))
                .filter(|r| r.len() >= 4)
                .collect::<Vec<_>>()
        })
        .filter(|rings: &Vec<Vec<[f64; 2]>>| !rings.is_empty())
        .collect();
    if polys.len() == 1 {
        json!({"type": "Polygon", "coordinates": polys[0]})
    } else {
        json!({"type": "MultiPolygon", "coordinates": polys})
    }
}

/// Exact Voronoi cells of `sites` (distinct points), each bounded by the bounding box of `bound` plus a
/// margin. Half-plane clipping against neighbours nearest first, stopping once a neighbour is farther than
/// twice the cell's farthest vertex (no farther site can cut the cell).
pub fn voronoi_cells(sites: &[[f64; 2]], bound: &MultiPolygon<f64>) -> Vec<Polygon<f64>> {
    use geo::BoundingRect;
    let Some(r) = bound.bounding_rect() else {
        return Vec::new();
    };
    let (mut minx, mut miny, mut maxx, mut maxy) = (r.min().x, r.min().y, r.max().x, r.max().y);
    for s in sites {
        minx = minx.min(s[0]);
        miny = miny.min(s[1]);
        maxx = maxx.max(s[0]);
        maxy = maxy.max(s[1]);
    }
    let m = 0.01;
    let bbox = vec![
        [minx - m, miny - m],
        [maxx + m, miny - m],
        [maxx + m, maxy + m],
        [minx - m, maxy + m],
    ];
    let tree: RTree<GeomWithData<[f64; 2], usize>> = RTree::bulk_load(
        sites
            .iter()
            .enumerate()
            .map(|(i, s)| GeomWithData::new(*s, i))
            .collect(),
    );
    sites
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut cell = bbox.clone();
            for (q, d2) in tree.nearest_neighbor_iter_with_distance_2(p) {
                if q.data == i {
                    continue;
                }
                let reach2 = cell
                    .iter()
                    .map(|v| (v[0] - p[0]).powi(2) + (v[1] - p[1]).powi(2))
                    .fold(0.0, f64::max);
                if d2 > 4.0 * reach2 {
                    break;
                }
                cell = clip_half_plane(&cell, *p, *q.geom());
                if cell.is_empty() {
                    break;
                }
            }
            let mut ring: Vec<Coord<f64>> =
                cell.iter().map(|v| Coord { x: v[0], y: v[1] }).collect();
            if let Some(f) = ring.first().copied() {
                ring.push(f);
            }
            Polygon::new(LineString::new(ring), vec![])
        })
        .collect()
}

/// Keeps the part of convex polygon `poly` nearer to `p` than to `q` (Sutherland–Hodgman, one edge).
fn clip_half_plane(poly: &[[f64; 2]], p: [f64; 2], q: [f64; 2]) -> Vec<[f64; 2]> {
    let n = [q[0] - p[0], q[1] - p[1]];
    let mid = [(p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0];
    let side = |v: [f64; 2]| (v[0] - mid[0]) * n[0] + (v[1] - mid[1]) * n[1];
    let mut out = Vec::with_capacity(poly.len() + 1);
    for k in 0..poly.len() {
        let a = poly[k];
        let b = poly[(k + 1) % poly.len()];
        let (sa, sb) = (side(a), side(b));
        if sa <= 0.0 {
            out.push(a);
        }
        if (sa < 0.0 && sb > 0.0) || (sa > 0.0 && sb < 0.0) {
            let t = sa / (sa - sb);
            out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voronoi_cells_of_a_grid_are_the_grid_squares() {
        let sites = [[0.5, 0.5], [1.5, 0.5], [0.5, 1.5], [1.5, 1.5]];
        let bound: MultiPolygon<f64> = MultiPolygon::new(vec![Polygon::new(
            LineString::from(vec![
                (0.0, 0.0),
                (2.0, 0.0),
                (2.0, 2.0),
                (0.0, 2.0),
                (0.0, 0.0),
            ]),
            vec![],
        )]);
        let cells = voronoi_cells(&sites, &bound);
        use geo::Area;
        for c in &cells {
            let clipped = c.intersection(&bound);
            assert!((clipped.unsigned_area() - 1.0).abs() < 1e-9, "{clipped:?}");
        }
    }
}
