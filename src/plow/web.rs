//! HTTP for plows: the resident map `/plows` (Leaflet from [`crate::assets`]), and the public JSON the
//! map polls. While `[plow] enabled = false` the APIs answer 404 and the page explains that positions are
//! not published (a menu link never ends on an error page).
//!
//! The JSON never carries anything about residents — only vehicles, roads, districts and storms. The
//! dispatcher's view (vehicles, stale warnings, coverage per district, storm start/end) is a console page
//! behind operator login (`console::plows`); [`dispatch_data`] is what it shows, and `/api/plows/dispatch`
//! (the same data as JSON) needs a console session too.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::ingest::now_ms;
use super::validate::vehicle_state;
use super::{rfc3339, Millis};

const MAP_PAGE: &str = include_str!("../../templates/web/plows.html");
const MAP_SCRIPT: &str = include_str!("../../templates/web/plows.js");
const MAP_STYLE: &str = include_str!("../../templates/web/plows.css");
/// Most trail points answered at once (≈ 100 vehicles × 1 h at 1 position per 10 s is 36 000).
const MAX_TRAIL_POINTS: usize = 200_000;

/// What the plow pages and APIs read.
#[derive(Clone)]
pub struct PlowWeb {
    pub store: crate::store::Store,
    pub plow: std::sync::Arc<super::Plow>,
}

pub fn routes(ctx: PlowWeb) -> Router {
    Router::new()
        .route("/plows", get(map_page))
        .route(
            "/plows/assets/plows.js",
            get(|| async {
                crate::place::web::asset("text/javascript; charset=utf-8", MAP_SCRIPT)
            }),
        )
        .route(
            "/plows/assets/plows.css",
            get(|| async { crate::place::web::asset("text/css; charset=utf-8", MAP_STYLE) }),
        )
        .route("/api/plows/vehicles", get(vehicles))
        .route("/api/plows/trails", get(trails))
        .route("/api/plows/roads", get(roads))
        .with_state(ctx)
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "plow tracking is not enabled").into_response()
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "plow API failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": "internal error"})),
    )
        .into_response()
}

fn no_store<T: IntoResponse>(body: T) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// The page a resident sees from the menu's 除雪車マップ when the city does not publish plow positions:
/// an explanation, not an error (the APIs still answer 404).
const DISABLED_PAGE: &str = "<!DOCTYPE html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>除雪車マップ</title>\
<link rel=\"stylesheet\" href=\"/plows/assets/plows.css\"></head>\
<body><header><h1>除雪車マップ</h1></header><main class=\"disabled\">\
<p>除雪車の現在地と除雪済みの道路は、市が除雪車の位置情報を公開しているときにここでご覧いただけます。</p>\
<p>現在は公開していません。大雪の際の除雪状況は、市のホームページや広報でご確認ください。</p></main></body></html>";

async fn map_page(State(ctx): State<PlowWeb>) -> Response {
    if !ctx.plow.config.enabled {
        return no_store(Html(DISABLED_PAGE));
    }
    no_store(Html(MAP_PAGE))
}

fn vehicle_json(
    ctx: &PlowWeb,
    now: Millis,
) -> impl Fn(&super::store::VehicleRow) -> serde_json::Value + '_ {
    move |v| {
        let state = vehicle_state(v.ts_ms, v.offline_ms, now, ctx.plow.config.stale_after_secs);
        json!({
            "vehicle": v.vehicle,
            "lat": v.lat,
            "lon": v.lon,
            "ts": rfc3339(v.ts_ms),
            "last_seen_secs": ((now - v.ts_ms) / 1000).max(0),
            "speed_kmh": v.speed_kmh,
            "heading": v.heading,
            "blade": v.blade,
            "state": state,
            "stale": state != super::validate::VehicleState::Active,
        })
    }
}

async fn vehicles(State(ctx): State<PlowWeb>) -> Response {
    if !ctx.plow.config.enabled {
        return not_found();
    }
    let now = now_ms();
    match ctx.store.read(super::store::vehicles).await {
        Ok(vs) => {
            let f = vehicle_json(&ctx, now);
            let [w, s, e, n] = ctx.plow.config.service_area;
            no_store(Json(json!({
                "generated_at": rfc3339(now),
                "stale_after_secs": ctx.plow.config.stale_after_secs,
                "area": {"west": w, "south": s, "east": e, "north": n},
                "vehicles": vs.iter().map(f).collect::<Vec<_>>(),
            })))
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct TrailQuery {
    since: Option<String>,
}

async fn trails(State(ctx): State<PlowWeb>, Query(q): Query<TrailQuery>) -> Response {
    if !ctx.plow.config.enabled {
        return not_found();
    }
    let now = now_ms();
    let earliest = now - ctx.plow.config.trail_retention_days * 86_400_000;
    let since = match q.since.as_deref() {
        None | Some("") => now - 3_600_000,
        Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.timestamp_millis().max(earliest),
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "since must be an RFC 3339 time, e.g. 2026-01-10T05:00:00+09:00"})),
                )
                    .into_response()
            }
        },
    };
    match ctx
        .store
        .read(move |c| super::store::trails(c, since, MAX_TRAIL_POINTS))
        .await
    {
        Ok(ts) => no_store(Json(json!({
            "since": rfc3339(since),
            "trails": ts.into_iter().map(|(v, pts)| json!({"vehicle": v, "points": pts})).collect::<Vec<_>>(),
        }))),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct RoadsQuery {
    /// `west,south,east,north` in degrees.
    bbox: Option<String>,
}

async fn roads(State(ctx): State<PlowWeb>, Query(q): Query<RoadsQuery>) -> Response {
    if !ctx.plow.config.enabled {
        return not_found();
    }
    let bbox = match q.bbox.as_deref().map(|b| {
        b.split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<Vec<_>, _>>()
    }) {
        None => None,
        Some(Ok(v)) if v.len() == 4 && v.iter().all(|x| x.is_finite()) => {
            Some([v[0], v[1], v[2], v[3]])
        }
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "bbox must be west,south,east,north in degrees"})),
            )
                .into_response()
        }
    };
    let gj = match &ctx.plow.coverage {
        Some(c) => c
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .roads_geojson(now_ms(), bbox),
        None => json!({"type": "FeatureCollection", "features": []}),
    };
    no_store(Json(gj))
}

fn storm_json(s: &super::store::Storm) -> serde_json::Value {
    json!({
        "id": s.id,
        "started_at": rfc3339(s.started_ms),
        "ended_at": s.ended_ms.map(rfc3339),
        "note": s.note,
    })
}

/// What the dispatcher sees: MQTT connection, the open storm, every vehicle (last seen, speed, blade, state,
/// stale flag) and the plowed share of road length per district since the storm started.
pub async fn dispatch_data(ctx: &PlowWeb) -> anyhow::Result<serde_json::Value> {
    let now = now_ms();
    let vs = ctx.store.read(super::store::vehicles).await?;
    let f = vehicle_json(ctx, now);
    let vehicles: Vec<_> = vs.iter().map(f).collect();
    let stale = vehicles.iter().filter(|v| v["stale"] == true).count();
    let storm = ctx
        .plow
        .storm
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let coverage: Vec<_> = match &ctx.plow.coverage {
        Some(c) => {
            let c = c.lock().unwrap_or_else(|p| p.into_inner());
            c.net
                .districts
                .iter()
                .zip(c.district_shares())
                .map(|(d, (plowed, total))| {
                    json!({
                        "district_id": d.id,
                        "name": d.name,
                        "road_km": (total / 10.0).round() / 100.0,
                        "plowed_km": (plowed / 10.0).round() / 100.0,
                        "share": if total > 0.0 { ((plowed / total) * 1000.0).round() / 1000.0 } else { 0.0 },
                    })
                })
                .collect()
        }
        None => vec![],
    };
    Ok(json!({
        "generated_at": rfc3339(now),
        "mqtt_connected": ctx.plow.connected.load(std::sync::atomic::Ordering::Relaxed),
        "stale_after_secs": ctx.plow.config.stale_after_secs,
        "storm": storm.as_ref().map(storm_json),
        "vehicles": vehicles,
        "stale_count": stale,
        "coverage": coverage,
    }))
}
