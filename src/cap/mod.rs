//! The city's alerts as CAP 1.2 (OASIS Common Alerting Protocol), for broadcasters, signage and other
//! systems: `GET /cap/feed.xml` (Atom, the newest [`FEED_ENTRIES`] alerts) and `GET /cap/{id}.xml` (one CAP
//! document per outbox alert, `id` = `delivery_alerts.id`). Public, on the same listener as the resident pages.
//!
//! * **Source of truth** is the outbox (`delivery_alerts`): whatever Sonae sent is published, nothing else.
//!   JMA-driven steps (source `disaster`) and the city's manual alerts (source `manual`) are; drills, plow
//!   notices and other sources are not ([`model::parse`]).
//! * **Identity**: `sender` is the host of `server.public_url`, `identifier` `sonae-alert-{id}`, `sent` the
//!   row's `created_at` in JST. Documents are immutable, so each is generated on request from its row.
//! * **References**: a JMA step's `Update`/`Cancel` references every earlier message of its thread since the
//!   thread's last issue (`disaster` rows with the same `detail.thread`); a manual alert references the alert
//!   named by its `detail.references`, and transitively what that one referenced.
//! * **Areas**: the districts' polygons merged and simplified ([`area`]).

pub mod area;
pub mod model;
pub mod xml;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use crate::place::PlaceData;
use crate::store::Store;
use model::{Parsed, Publisher, Row};

/// Alerts listed in the Atom feed, newest first.
pub const FEED_ENTRIES: i64 = 100;
/// How far a manual alert's `references` chain is followed.
const MAX_CHAIN: usize = 50;

/// What the CAP routes need.
pub struct Deps {
    pub store: Store,
    pub place: Option<Arc<PlaceData>>,
    /// `server.public_url`: links, and the `sender` (its host).
    pub public_url: String,
    /// `place.city_name`.
    pub city: String,
}

struct Cap {
    store: Store,
    place: Option<Arc<PlaceData>>,
    publisher: Publisher,
    areas: area::AreaCache,
}

pub fn routes(deps: Deps) -> Router {
    let sender = url::Url::parse(&deps.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "sonae.invalid".into());
    let cap = Arc::new(Cap {
        store: deps.store,
        place: deps.place,
        publisher: Publisher {
            sender,
            city: deps.city,
            public_url: deps.public_url.trim_end_matches('/').to_string(),
        },
        areas: area::AreaCache::default(),
    });
    Router::new()
        .route("/cap/feed.xml", get(feed))
        .route("/cap/{file}", get(document))
        .with_state(cap)
}

fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let created: String = r.get(3)?;
    let detail: String = r.get(4)?;
    Ok(Row {
        id: r.get(0)?,
        source: r.get(1)?,
        kind: r.get(2)?,
        created_at: DateTime::parse_from_rfc3339(&created)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default(),
        detail: serde_json::from_str(&detail).unwrap_or_default(),
    })
}

const COLUMNS: &str = "id, source, kind, created_at, detail";

fn load_row(c: &Connection, id: i64) -> anyhow::Result<Option<Row>> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM delivery_alerts WHERE id = ?1"),
        [id],
        row_of,
    )
    .optional()?)
}

/// Earlier `disaster` messages of `thread` before `before`, since (and including) the thread's last issue.
fn thread_episode(
    c: &Connection,
    thread: &str,
    before: i64,
) -> anyhow::Result<Vec<(i64, DateTime<Utc>)>> {
    let mut st = c.prepare(
        "SELECT id, kind, created_at FROM delivery_alerts
         WHERE source = 'disaster' AND id < ?1 AND json_extract(detail, '$.thread') = ?2 ORDER BY id",
    )?;
    let rows = st
        .query_map(rusqlite::params![before, thread], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let start = rows.iter().rposition(|r| r.1 == "issue").unwrap_or(0);
    Ok(rows[start..]
        .iter()
        .map(|(id, _, at)| {
            let t = DateTime::parse_from_rfc3339(at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default();
            (*id, t)
        })
        .collect())
}

/// The earlier messages `row` updates or cancels, oldest first.
fn references(
    c: &Connection,
    row: &Row,
    parsed: &Parsed,
) -> anyhow::Result<Vec<(i64, DateTime<Utc>)>> {
    match parsed {
        Parsed::Jma(step) => {
            if row.kind == "issue" {
                return Ok(Vec::new());
            }
            thread_episode(c, &step.thread, row.id)
        }
        Parsed::Manual(m) => {
            let mut out: Vec<(i64, DateTime<Utc>)> = Vec::new();
            let (mut next, mut below) = (m.references, row.id);
            while let Some(id) = next.take() {
                if id >= below || out.len() >= MAX_CHAIN {
                    break;
                }
                let Some(r) = load_row(c, id)? else { break };
                let Ok(Some(p)) = model::parse(&r) else { break };
                out.push((r.id, r.created_at));
                below = r.id;
                match p {
                    Parsed::Manual(m) => next = m.references,
                    Parsed::Jma(step) => {
                        if r.kind != "issue" {
                            let mut earlier = thread_episode(c, &step.thread, r.id)?;
                            earlier.reverse();
                            out.extend(earlier);
                        }
                    }
                }
            }
            out.reverse();
            Ok(out)
        }
    }
}

fn to_cap(p: &Publisher, row: &Row, parsed: &Parsed, refs: Vec<String>) -> model::CapAlert {
    match parsed {
        Parsed::Jma(step) => model::from_step(p, row, step, refs),
        Parsed::Manual(m) => model::from_manual(p, row, m, refs),
    }
}

fn not_found(message: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "CAP feed failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "CAP 文書を作成できませんでした。時間をおいて再度お試しください。",
    )
        .into_response()
}

fn xml(content_type: &'static str, max_age: u32, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
        ],
        body,
    )
        .into_response()
}

/// `GET /cap/{id}.xml`.
async fn document(State(cap): State<Arc<Cap>>, Path(file): Path<String>) -> Response {
    let Some(id) = file
        .strip_suffix(".xml")
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|&i| i > 0)
    else {
        return not_found("CAP 文書は /cap/{番号}.xml です。一覧は /cap/feed.xml にあります。");
    };
    let loaded = cap
        .store
        .read(move |c| {
            let Some(row) = load_row(c, id)? else {
                return Ok(None);
            };
            let parsed = match model::parse(&row) {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                Err(e) => {
                    tracing::warn!(error = %e, "alert not published as CAP");
                    return Ok(None);
                }
            };
            let refs = references(c, &row, &parsed)?;
            Ok(Some((row, parsed, refs)))
        })
        .await;
    let (row, parsed, refs) = match loaded {
        Ok(Some(x)) => x,
        Ok(None) => return not_found("この番号の警報・避難情報は公開されていません。"),
        Err(e) => return internal(e),
    };
    // The first request for a city-wide area merges thousands of polygons: off the async threads.
    let made = tokio::task::spawn_blocking(move || {
        let p = &cap.publisher;
        let refs = refs.into_iter().map(|(id, t)| p.reference(id, t)).collect();
        let a = to_cap(p, &row, &parsed, refs);
        let areas = match &cap.place {
            Some(place) => cap.areas.areas(&place.districts, &p.city, &a.districts),
            None => vec![area::CapArea {
                desc: a.district_names.join("、"),
                polygons: Vec::new(),
                geocodes: Vec::new(),
            }],
        };
        xml::alert(&a, &areas)
    })
    .await;
    match made {
        Ok(Ok(body)) => xml("application/cap+xml; charset=utf-8", 300, body),
        Ok(Err(e)) => internal(e.into()),
        Err(e) => internal(e.into()),
    }
}

/// `GET /cap/feed.xml`.
async fn feed(State(cap): State<Arc<Cap>>) -> Response {
    let rows = cap
        .store
        .read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM delivery_alerts WHERE source IN ('disaster', 'manual')
                 ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = st
                .query_map([FEED_ENTRIES], row_of)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let p = &cap.publisher;
    let mut entries = Vec::new();
    for row in &rows {
        let parsed = match model::parse(row) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "alert not published as CAP");
                continue;
            }
        };
        let a = to_cap(p, row, &parsed, Vec::new());
        entries.push(xml::Entry {
            url: format!("{}/cap/{}.xml", p.public_url, row.id),
            title: a.info.headline.clone(),
            updated: a.sent.clone(),
            summary: a.info.event.clone(),
            msg_type: a.msg_type,
        });
    }
    let updated = entries
        .first()
        .map(|e| e.updated.clone())
        .unwrap_or_else(|| model::cap_time(Utc::now()));
    match xml::feed(
        &format!("{}/cap/feed.xml", p.public_url),
        &format!("{}の警報・避難情報（CAP）", p.city),
        &p.city,
        &updated,
        &entries,
    ) {
        Ok(body) => xml("application/atom+xml; charset=utf-8", 15, body),
        Err(e) => internal(e.into()),
    }
}
