//! HTTP: one axum router for the webhook, the console, resident pages, health and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::Context;
use crate::health::Status;

/// The whole HTTP surface. Each feature merges its own routes here.
pub fn router(ctx: Context) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::line::webhook::router())
        .merge(crate::plow::web::routes(&ctx))
        .merge(crate::place::web::routes(&ctx))
        .with_state(ctx.clone())
        .merge(crate::console::router(ctx))
}

/// 200 with every component's state while nothing is down; 503 when a component is down.
async fn healthz(State(ctx): State<Context>) -> impl IntoResponse {
    let overall = ctx.health.overall();
    let code = if overall == Status::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "status": overall,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": ctx.started.elapsed().as_secs(),
        "components": ctx.health.snapshot(),
    });
    (code, Json(body))
}

async fn metrics(State(ctx): State<Context>) -> impl IntoResponse {
    ctx.metrics.set(
        "sonae_uptime_seconds",
        "Seconds since the daemon started.",
        &[],
        ctx.started.elapsed().as_secs_f64(),
    );
    let overall = ctx.health.overall();
    for (name, st) in ctx.health.snapshot() {
        let v = match st.status {
            Status::Ok => 0.0,
            Status::Degraded => 1.0,
            Status::Down => 2.0,
        };
        // Component names come from the code and the config (feeds), so the label set is bounded.
        ctx.metrics.set(
            "sonae_component_status",
            "0 ok, 1 degraded, 2 down.",
            &[("component", &name)],
            v,
        );
    }
    ctx.metrics.set(
        "sonae_healthy",
        "1 when no component is down.",
        &[],
        if overall == Status::Down { 0.0 } else { 1.0 },
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ctx.metrics.render(),
    )
}
