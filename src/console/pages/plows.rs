//! 除雪 (snow plows) in the console: the dispatcher's view and the storm start/end form.
//!
//! * `GET /console/plows`: vehicles (last seen, speed, blade, state, stale warnings), the MQTT connection, the
//!   open storm and the plowed share of road length per district since it started. Server-rendered; the
//!   sections refresh every [`REFRESH_SECS`] through `console.js` like the dashboard.
//! * `POST /console/plows/storm` (`action=start|end`, optional `note`): through [`Authorized`]
//!   (session, CSRF, same origin) with role **担当者 (operator)** or higher. Starting a storm only resets the
//!   coverage count and lets opted-in residents be told once when a plow reaches their district; it sends
//!   nothing city-wide, so it is a routine dispatcher action, not an approver's. The change and its audit row
//!   (`plow.storm.start` / `plow.storm.end`, actor = the operator) commit in one transaction.
//! * `GET /api/plows/dispatch`: the same data as JSON for staff tools; 401 without a console session.
//! * `GET /plows/dispatch` (the old standalone page) redirects here.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;

use crate::console::auth::{authenticate, Authorized, OperatorRole, Session};
use crate::console::error::ConsoleError;
use crate::console::{page_ctx, render, ConsoleState, PageQuery, Role};
use crate::plow::store::StormChange;

/// Seconds between live refreshes of the page.
pub const REFRESH_SECS: u32 = 15;
/// Longest storm note, in characters.
const MAX_NOTE_CHARS: usize = 200;

fn disabled() -> ConsoleError {
    ConsoleError::not_found(
        "除雪車の位置情報の受信が設定されていません（設定ファイルの [plow] enabled）。",
    )
}

pub async fn page(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    if !st.ctx.plow.config.enabled {
        return Err(disabled());
    }
    let data = crate::plow::web::dispatch_data(&st.ctx.plow_web()).await?;
    let ctx = page_ctx(&st, &a, "plows", q.msg.as_deref());
    let ctx = minijinja::context! {
        d => minijinja::Value::from_serialize(&data),
        can_storm => a.user.role >= Role::Operator,
        has_roads => st.ctx.plow.coverage.is_some(),
        refresh => REFRESH_SECS,
        ..ctx
    };
    Ok(render(&st, StatusCode::OK, "plows.html", ctx))
}

pub async fn storm_submit(
    State(st): State<ConsoleState>,
    auth: Result<Authorized<OperatorRole>, ConsoleError>,
) -> Result<Response, ConsoleError> {
    let Authorized {
        authed: a, form, ..
    } = auth.map_err(|e| match e {
        // No live session: refuse with 401 (not the login redirect pages get), so a script or a stale tab
        // sees plainly that nothing changed.
        ConsoleError::Login { .. } => ConsoleError::Unauthenticated,
        e => e,
    })?;
    if !st.ctx.plow.config.enabled {
        return Err(disabled());
    }
    let start = match form.get("action").map(String::as_str) {
        Some("start") => true,
        Some("end") => false,
        _ => {
            return Err(ConsoleError::bad_request(
                "操作の種類が正しくありません。除雪の画面から操作してください。",
            ))
        }
    };
    let note = form.get("note").map(|s| s.trim()).unwrap_or("");
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ConsoleError::bad_request(format!(
            "メモは{MAX_NOTE_CHARS}文字以内で入力してください。"
        )));
    }
    let note: String = note.chars().filter(|c| !c.is_control()).collect();
    let change = st
        .ctx
        .plow
        .change_storm(&st.ctx.store, start, &a.user.name, &note)
        .await?;
    let msg = match change {
        StormChange::Started(_) => "storm_started",
        StormChange::Ended(_) => "storm_ended",
        StormChange::AlreadyOpen(_) | StormChange::NoneOpen => "unchanged",
    };
    tracing::info!(user = %a.user.name, start, result = msg, "plow storm changed from the console");
    Ok(Redirect::to(&format!("/console/plows?msg={msg}")).into_response())
}

pub async fn dispatch_json(State(st): State<ConsoleState>, headers: HeaderMap) -> Response {
    if authenticate(&st, &headers).await.is_err() {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "log in to the console first (/console/login)"})),
        )
            .into_response();
    }
    if !st.ctx.plow.config.enabled {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "plow tracking is not enabled"})),
        )
            .into_response();
    }
    match crate::plow::web::dispatch_data(&st.ctx.plow_web()).await {
        Ok(d) => Json(d).into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "plow dispatch data failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({"error": "internal error; see the daemon log"})),
            )
                .into_response()
        }
    }
}

pub async fn old_dispatch_page() -> Redirect {
    Redirect::permanent("/console/plows")
}
