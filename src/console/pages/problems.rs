//! `GET /console/problems` and `POST /console/problems/resolve`: what operators must look at.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::console::auth::{Authorized, OperatorRole, Session};
use crate::console::error::ConsoleError;
use crate::console::{page_ctx, records, render, ConsoleState, PageQuery};

pub async fn page(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let page = q.page.unwrap_or(1);
    let all = q.all.as_deref() == Some("1");
    let rows = st
        .ctx
        .store
        .read(move |c| records::problem_page(c, page, all))
        .await?;
    let ctx = page_ctx(&st, &a, "problems", q.msg.as_deref());
    let ctx = minijinja::context! {
        page => minijinja::Value::from_serialize(&rows),
        all => all,
        ..ctx
    };
    Ok(render(&st, StatusCode::OK, "problems.html", ctx))
}

pub async fn resolve(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<OperatorRole>,
) -> Result<Response, ConsoleError> {
    let Some(id) = form.get("id").and_then(|s| s.parse::<i64>().ok()) else {
        return Err(ConsoleError::bad_request("問題の番号が正しくありません。"));
    };
    let (actor, now) = (a.user.name.clone(), st.now());
    st.ctx
        .store
        .write(move |tx| records::resolve_problem(tx, id, &actor, now))
        .await?;
    Ok(Redirect::to("/console/problems?msg=resolved").into_response())
}
