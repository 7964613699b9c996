//! The resident shelter page: `GET /shelters` (map + list, opened from alerts and the rich menu) and
//! `GET /api/shelters?district=&hazard=` (shelters suited to the need — a hazard slug or `stay` for indoor
//! 指定避難所 — from the district's centre, by [`super::Shelters::suggest`]: those the city opened first, then
//! designated ones whose status it has not announced, never closed or full). Without a district the origin
//! is `lat`/`lon` (the page asks the browser for the reader's position) or else the city's centre — the
//! link in messages to friends who never registered a district and in the rich menu; without a hazard (the
//! rich menu), 地震 sites. The page's script and style are `/assets/shelters.{js,css}` (the CSP allows no
//! inline code); Leaflet comes from [`crate::assets`] at `/assets/leaflet/`, like the plow map's.

use std::sync::Arc;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::shelter::{Limits, Need};
use super::status::{status_of, ShelterStatus};
use super::{LatLon, PlaceData};
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

/// Routes over the daemon's one loaded place data (none: the API answers 503 with the reason).
pub fn routes(store: Store, place: Option<Arc<PlaceData>>) -> Router {
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
    let Some(need) = (if hazard_text.is_empty() {
        Some(Need::Flee(super::Hazard::Earthquake))
    } else {
        Need::parse(hazard_text)
    }) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "hazard「{}」は不明です（例: flood, landslide, earthquake, stay）",
                q.hazard
            ),
        );
    };
    // From the district; else from where the resident is; else from the middle of the city.
    let (origin, name, id, origin_kind) = if !q.district.trim().is_empty() {
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
            "district",
        )
    } else if let Some(here) = q.lat.zip(q.lon).and_then(|(la, lo)| LatLon::new(la, lo)) {
        (here, "現在地".to_string(), None, "position")
    } else {
        match place.districts.centre() {
            Some(c) => (c, "市の中心".to_string(), None, "city"),
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
        .suggest(origin, need, limit, &Limits::none(), |id| {
            status_of(&statuses, id)
        });
    Json(json!({
        "district": { "id": id, "name": name },
        "origin": { "lat": origin.lat, "lon": origin.lon, "kind": origin_kind },
        "hazard": need.slug(),
        "hazard_label": need.label_ja(),
        "shelters": found.iter().map(|s| json!({
            "id": s.shelter.id, "name": s.shelter.name, "address": s.shelter.address,
            "lat": s.shelter.at.lat, "lon": s.shelter.at.lon, "distance_m": s.distance_m.round(),
            "opened": s.status == ShelterStatus::Open,
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}
