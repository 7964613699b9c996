//! `GET /console/shelters` and `POST /console/shelters/status`: shelter status (担当者 and above).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::console::auth::{Authorized, OperatorRole, Session};
use crate::console::error::ConsoleError;
use crate::console::{page_ctx, render, ConsoleState, PageQuery, ShelterStatus};

pub async fn page(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let mut rows = st.providers.shelters.shelters().await?;
    rows.sort_by(|x, y| x.area.cmp(&y.area).then(x.name.cmp(&y.name)));
    let ctx = page_ctx(&st, &a, "shelters", q.msg.as_deref());
    let ctx = minijinja::context! { shelters => minijinja::Value::from_serialize(&rows), ..ctx };
    Ok(render(&st, StatusCode::OK, "shelters.html", ctx))
}

pub async fn submit(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<OperatorRole>,
) -> Result<Response, ConsoleError> {
    let id = form.get("id").cloned().unwrap_or_default();
    let Some(status) = form.get("status").and_then(|s| ShelterStatus::parse(s)) else {
        return Err(ConsoleError::bad_request(
            "避難所の状態は「開設」「満員」「閉鎖」から選んでください。",
        ));
    };
    // The source audits the change in the same transaction as the change (`shelter.status`).
    if !st
        .providers
        .shelters
        .set_status(&id, status, &a.user.name)
        .await?
    {
        return Err(ConsoleError::not_found(
            "指定された避難所が見つかりません。一覧を開き直してください。",
        ));
    }
    Ok(Redirect::to("/console/shelters?msg=shelter").into_response())
}
