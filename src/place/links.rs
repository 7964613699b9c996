//! Deep links to the national hazard pages for a point and a municipality.
//!
//! The formats are the sites' own single-page-app hash/query formats, seen in many public repositories but
//! not documented by the agencies (research/geo-plow.md §2), so they may change: they are plain templates
//! with `{lat}`, `{lon}`, `{zoom}`, `{element}` and `{area_code}` placeholders that a deployment can override
//! (`[place.links]` in the config) without recompiling.
//! * 重ねるハザードマップ `https://disaportal.gsi.go.jp/maps/?ll={lat},{lon}&z={zoom}&base=pale&vs=c1j0l0u0`
//! * キキクル `https://www.jma.go.jp/bosai/risk/#zoom:{zoom}/lat:{lat}/lon:{lon}/colordepth:normal/elements:{element}`
//!   with `land` (土砂), `inund` (浸水), `flood` (洪水) — not the often guessed `#elem=` form, which appears nowhere.
//! * JMA 警報・注意報 for a municipality `https://www.jma.go.jp/bosai/warning/#area_type=class20s&area_code={area_code}&lang=ja`
//! * 川の防災情報 `https://www.river.go.jp/kawabou/pc/tm?zm={zoom}&clat={lat}&clon={lon}&fld=0&mapType=0`

use serde::{Deserialize, Serialize};

use super::{Hazard, LatLon};

/// The キキクル layer that matches a hazard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum KikikuruLayer {
    /// 土砂キキクル
    Land,
    /// 浸水キキクル
    Inund,
    /// 洪水キキクル
    Flood,
}

impl KikikuruLayer {
    pub fn element(self) -> &'static str {
        match self {
            KikikuruLayer::Land => "land",
            KikikuruLayer::Inund => "inund",
            KikikuruLayer::Flood => "flood",
        }
    }

    /// 洪水 → flood, 内水氾濫 → inund, 崖崩れ → land; no キキクル for the other hazards.
    pub fn for_hazard(h: Hazard) -> Option<KikikuruLayer> {
        match h {
            Hazard::Flood => Some(KikikuruLayer::Flood),
            Hazard::InlandFlood => Some(KikikuruLayer::Inund),
            Hazard::Landslide => Some(KikikuruLayer::Land),
            _ => None,
        }
    }
}

/// URL templates (see the module docs for the placeholders).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkTemplates {
    pub hazard_map: String,
    pub hazard_map_zoom: u8,
    pub kikikuru: String,
    pub kikikuru_zoom: u8,
    pub jma_warning: String,
    pub river: String,
    pub river_zoom: u8,
}

impl Default for LinkTemplates {
    fn default() -> Self {
        LinkTemplates {
            hazard_map: "https://disaportal.gsi.go.jp/maps/?ll={lat},{lon}&z={zoom}&base=pale&vs=c1j0l0u0".into(),
            hazard_map_zoom: 15,
            kikikuru: "https://www.jma.go.jp/bosai/risk/#zoom:{zoom}/lat:{lat}/lon:{lon}/colordepth:normal/elements:{element}".into(),
            kikikuru_zoom: 12,
            jma_warning: "https://www.jma.go.jp/bosai/warning/#area_type=class20s&area_code={area_code}&lang=ja".into(),
            river: "https://www.river.go.jp/kawabou/pc/tm?zm={zoom}&clat={lat}&clon={lon}&fld=0&mapType=0".into(),
            river_zoom: 13,
        }
    }
}

/// The links one alert carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HazardLinks {
    /// 重ねるハザードマップ centred on the point.
    pub hazard_map: String,
    /// キキクル for the hazard's layer (土砂 when the hazard has no layer of its own but a layer was asked for).
    pub kikikuru: Option<String>,
    /// JMA's warning page for the municipality.
    pub jma_warning: String,
    /// 川の防災情報 (only for 洪水 and 内水氾濫).
    pub river: Option<String>,
}

impl LinkTemplates {
    /// Checks each template for its required placeholders; one message per problem, naming the key.
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut need = |key: &str, tpl: &str, placeholders: &[&str]| {
            for p in placeholders {
                if !tpl.contains(p) {
                    out.push(format!(
                        "{prefix}.{key}: \"{tpl}\" lacks the placeholder {p}; see the default in `sonae config default`"
                    ));
                }
            }
            if url::Url::parse(&fill(
                tpl,
                &[
                    ("{lat}", "1"),
                    ("{lon}", "1"),
                    ("{zoom}", "1"),
                    ("{element}", "land"),
                    ("{area_code}", "0000000"),
                ],
            ))
            .is_err()
            {
                out.push(format!("{prefix}.{key}: \"{tpl}\" is not a URL template"));
            }
        };
        need("hazard_map", &self.hazard_map, &["{lat}", "{lon}"]);
        need("kikikuru", &self.kikikuru, &["{lat}", "{lon}", "{element}"]);
        need("jma_warning", &self.jma_warning, &["{area_code}"]);
        need("river", &self.river, &["{lat}", "{lon}"]);
        out
    }

    /// Builds the links for a point (usually the resident's district) in the municipality `jma_code`.
    pub fn links(&self, hazard: Option<Hazard>, at: LatLon, jma_code: &str) -> HazardLinks {
        let (lat, lon) = (format!("{:.6}", at.lat), format!("{:.6}", at.lon));
        let at_zoom = |tpl: &str, zoom: u8, element: &str| {
            fill(
                tpl,
                &[
                    ("{lat}", &lat),
                    ("{lon}", &lon),
                    ("{zoom}", &zoom.to_string()),
                    ("{element}", element),
                    ("{area_code}", jma_code),
                ],
            )
        };
        let layer = hazard.and_then(KikikuruLayer::for_hazard);
        HazardLinks {
            hazard_map: at_zoom(&self.hazard_map, self.hazard_map_zoom, ""),
            kikikuru: layer.map(|l| at_zoom(&self.kikikuru, self.kikikuru_zoom, l.element())),
            jma_warning: at_zoom(&self.jma_warning, 0, ""),
            river: matches!(hazard, Some(Hazard::Flood | Hazard::InlandFlood))
                .then(|| at_zoom(&self.river, self.river_zoom, "")),
        }
    }

    /// キキクル for an explicit layer (e.g. 土砂災害警戒情報 → land even without a hazard).
    pub fn kikikuru(&self, layer: KikikuruLayer, at: LatLon) -> String {
        fill(
            &self.kikikuru,
            &[
                ("{lat}", &format!("{:.6}", at.lat)),
                ("{lon}", &format!("{:.6}", at.lon)),
                ("{zoom}", &self.kikikuru_zoom.to_string()),
                ("{element}", layer.element()),
            ],
        )
    }
}

fn fill(tpl: &str, values: &[(&str, &str)]) -> String {
    let mut s = tpl.to_string();
    for (k, v) in values {
        s = s.replace(k, v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_for_yamagata_match_the_documented_formats() {
        let at = LatLon::new(38.2554, 140.3396).unwrap();
        let l = LinkTemplates::default().links(Some(Hazard::Landslide), at, "0620100");
        assert_eq!(
            l.kikikuru.as_deref(),
            Some("https://www.jma.go.jp/bosai/risk/#zoom:12/lat:38.255400/lon:140.339600/colordepth:normal/elements:land")
        );
        assert_eq!(
            l.jma_warning,
            "https://www.jma.go.jp/bosai/warning/#area_type=class20s&area_code=0620100&lang=ja"
        );
        assert_eq!(
            l.hazard_map,
            "https://disaportal.gsi.go.jp/maps/?ll=38.255400,140.339600&z=15&base=pale&vs=c1j0l0u0"
        );
        assert_eq!(l.river, None);
        for u in [&l.hazard_map, &l.jma_warning, l.kikikuru.as_ref().unwrap()] {
            url::Url::parse(u).unwrap();
        }
    }

    #[test]
    fn flood_links_use_the_flood_layer_and_add_the_river_page_while_earthquakes_get_no_kikikuru() {
        let at = LatLon::new(43.0618, 141.3545).unwrap();
        let t = LinkTemplates::default();
        let flood = t.links(Some(Hazard::Flood), at, "0110000");
        assert!(flood.kikikuru.unwrap().ends_with("/elements:flood"));
        assert_eq!(
            flood.river.as_deref(),
            Some("https://www.river.go.jp/kawabou/pc/tm?zm=13&clat=43.061800&clon=141.354500&fld=0&mapType=0")
        );
        let inland = t.links(Some(Hazard::InlandFlood), at, "0110000");
        assert!(inland.kikikuru.unwrap().ends_with("/elements:inund"));
        let quake = t.links(Some(Hazard::Earthquake), at, "0110000");
        assert_eq!(quake.kikikuru, None);
        assert!(quake.jma_warning.contains("area_code=0110000"));
    }

    #[test]
    fn a_template_without_its_placeholder_is_rejected_with_the_key() {
        let t = LinkTemplates {
            jma_warning: "https://www.jma.go.jp/bosai/warning/".into(),
            ..LinkTemplates::default()
        };
        let p = t.validate("place.links");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("place.links.jma_warning:"), "{p:?}");
        assert!(LinkTemplates::default().validate("x").is_empty());
    }
}
