//! The resident shelter page: `GET /shelters` (map + list, opened from alerts and the rich menu) and
//! `GET /api/shelters?district=&hazard=` (open shelters suited to the hazard, nearest to the district's
//! centre first). The page's script and style are `/assets/shelters.{js,css}` (the CSP allows no inline
//! code); Leaflet is served under `/assets/leaflet/` from the same npm directory as the plow map.

use std::sync::Arc;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::shelter::Need;
use super::status::ShelterStatus;
use super::{Hazard, PlaceData};
use crate::store::Store;

const PAGE: &str = include_str!("../../templates/web/shelters.html");
const SCRIPT: &str = include_str!("../../templates/web/shelters.js");
const STYLE: &str = include_str!("../../templates/web/shelters.css");
/// Shelters listed by default; at most [`MAX_LIMIT`].
pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 50;

#[derive(Debug, Deserialize)]
pub struct ShelterQuery {
    #[serde(default)]
    pub district: String,
    #[serde(default)]
    pub hazard: String,
    pub limit: Option<usize>,
    /// Where the resident is (the page asks the browser when opened without a district).
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// Routes over the daemon's one loaded place data (none: the API answers 503 with the reason). Leaflet is
/// served from `leaflet_dir`.
pub fn routes(
    store: Store,
    place: Option<Arc<PlaceData>>,
    leaflet_dir: &std::path::Path,
) -> Router {
    let leaflet = tower_http::services::ServeDir::new(leaflet_dir);
    Router::new()
        .route("/shelters", get(|| async { Html(PAGE) }))
        .route(
            "/assets/shelters.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/assets/shelters.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/api/shelters",
            get(move |Query(q): Query<ShelterQuery>| {
                let (store, place) = (store.clone(), place.clone());
                async move { api(&store, place, q).await }
            }),
        )
        .nest_service("/assets/leaflet", leaflet)
}

/// A page's script or style, built into the binary (the CSP allows no inline code).
pub fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, content_type),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn error(code: StatusCode, message: String) -> Response {
    (code, Json(json!({ "error": message }))).into_response()
}

async fn api(store: &Store, place: Option<Arc<PlaceData>>, q: ShelterQuery) -> Response {
    let Some(place) = place else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "地区・避難所データが読み込まれていません".into(),
        );
    };
    // Opened from the menu there is no hazard: 地震 sites are the ones nearly every place has.
    let hazard_text = q.hazard.trim();
    let Some(hazard) = (if hazard_text.is_empty() {
        Some(Hazard::Earthquake)
    } else {
        Hazard::parse(hazard_text)
    }) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "hazard「{}」は不明です（例: flood, landslide, earthquake）",
                q.hazard
            ),
        );
    };
    // From the district; else from where the resident is; else from the middle of the city.
    let (origin, name, id) = if !q.district.trim().is_empty() {
        let Some(district) = place.districts.get(q.district.trim()) else {
            return error(
                StatusCode::NOT_FOUND,
                format!("地区「{}」は見つかりません", q.district),
            );
        };
        (
            district.label_point,
            district.name.clone(),
            Some(district.id.clone()),
        )
    } else if let Some(here) = q
        .lat
        .zip(q.lon)
        .and_then(|(la, lo)| super::LatLon::new(la, lo))
    {
        (here, "現在地".to_string(), None)
    } else {
        let all = place.districts.all();
        if all.is_empty() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "地区データがありません".into(),
            );
        }
        let n = all.len() as f64;
        let lat = all.iter().map(|d| d.label_point.lat).sum::<f64>() / n;
        let lon = all.iter().map(|d| d.label_point.lon).sum::<f64>() / n;
        match super::LatLon::new(lat, lon) {
            Some(c) => (c, "市の中心".to_string(), None),
            None => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "地区データがありません".into(),
                )
            }
        }
    };
    let statuses = match super::status::statuses(store).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reading shelter statuses");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "避難所の開設状況を読めませんでした".into(),
            );
        }
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let found = place
        .shelters
        .nearest_open(origin, Need::Flee(hazard), limit, |id| {
            statuses.get(id).copied().unwrap_or(ShelterStatus::Open)
        });
    Json(json!({
        "district": { "id": id, "name": name },
        "origin": { "lat": origin.lat, "lon": origin.lon },
        "hazard": hazard.slug(),
        "hazard_label": hazard.label_ja(),
        "shelters": found.iter().map(|(s, m)| json!({
            "id": s.id, "name": s.name, "address": s.address,
            "lat": s.at.lat, "lon": s.at.lon, "distance_m": m.round(),
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}
