//! Web assets compiled into the binary: Leaflet 1.9.4 (`assets/leaflet/`, vendored from npm with its
//! BSD-2-Clause licence), served at `/assets/leaflet/` for the resident maps `/plows` and `/shelters`. A
//! deployment needs no npm folder, and the daemon always serves the Leaflet its pages were tested with.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The Leaflet version compiled in.
pub const LEAFLET_VERSION: &str = "1.9.4";

/// `(path under /assets/leaflet/, content type, bytes)`.
pub const LEAFLET: &[(&str, &str, &[u8])] = &[
    (
        "leaflet.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/leaflet/leaflet.js"),
    ),
    (
        "leaflet.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/leaflet/leaflet.css"),
    ),
    (
        "images/layers.png",
        "image/png",
        include_bytes!("../assets/leaflet/images/layers.png"),
    ),
    (
        "images/layers-2x.png",
        "image/png",
        include_bytes!("../assets/leaflet/images/layers-2x.png"),
    ),
    (
        "images/marker-icon.png",
        "image/png",
        include_bytes!("../assets/leaflet/images/marker-icon.png"),
    ),
    (
        "images/marker-icon-2x.png",
        "image/png",
        include_bytes!("../assets/leaflet/images/marker-icon-2x.png"),
    ),
    (
        "images/marker-shadow.png",
        "image/png",
        include_bytes!("../assets/leaflet/images/marker-shadow.png"),
    ),
];

/// `GET /assets/leaflet/{*file}`: the embedded files (404 for anything else).
pub fn routes() -> Router {
    Router::new().route("/assets/leaflet/{*file}", get(leaflet))
}

async fn leaflet(Path(file): Path<String>) -> Response {
    match LEAFLET.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // Cached for a day: the files change only with a new binary.
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
