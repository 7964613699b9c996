//! `GET /console/shelters`, `POST /console/shelters/status` (one shelter) and `POST /console/shelters/bulk`
//! (every shelter suited to a hazard in the whole city, a ward or a district, in one transaction with one
//! audit row): shelter status (担当者 and above).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::console::auth::{Authorized, OperatorRole, Session};
use crate::console::error::ConsoleError;
use crate::console::providers::BulkChange;
use crate::console::{page_ctx, render, ConsoleState, PageQuery, ShelterStatus};
use crate::place::Need;

/// The statuses a form may set: 開設, 満員, 閉鎖, and back to 未設定.
fn status_from_form(s: Option<&String>) -> Option<ShelterStatus> {
    s.and_then(|s| ShelterStatus::parse(s))
}

pub async fn page(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let mut rows = st.providers.shelters.shelters().await?;
    rows.sort_by(|x, y| x.area.cmp(&y.area).then(x.name.cmp(&y.name)));
    // Choices grouped under their heading, in the order the source gives them (the whole city first).
    let mut area_groups: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for c in st.providers.shelters.areas().await? {
        let choice = serde_json::json!({"key": c.key, "label": c.label});
        match area_groups.iter_mut().find(|(k, _)| *k == c.kind) {
            Some((_, v)) => v.push(choice),
            None => area_groups.push((c.kind, vec![choice])),
        }
    }
    let area_groups: Vec<_> = area_groups
        .into_iter()
        .map(|(kind, choices)| serde_json::json!({"kind": kind, "choices": choices}))
        .collect();
    let needs: Vec<_> = Need::all()
        .map(|n| serde_json::json!({"slug": n.slug(), "label": n.label_ja()}))
        .collect();
    let ctx = page_ctx(&st, &a, "shelters", q.msg.as_deref());
    let ctx = minijinja::context! {
        shelters => minijinja::Value::from_serialize(&rows),
        area_groups => minijinja::Value::from_serialize(&area_groups),
        needs => minijinja::Value::from_serialize(&needs),
        ..ctx
    };
    Ok(render(&st, StatusCode::OK, "shelters.html", ctx))
}

pub async fn submit(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<OperatorRole>,
) -> Result<Response, ConsoleError> {
    let id = form.get("id").cloned().unwrap_or_default();
    let Some(status) = status_from_form(form.get("status")) else {
        return Err(ConsoleError::bad_request(
            "避難所の状態は「開設」「満員」「閉鎖」「未設定」から選んでください。",
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

/// Opens or closes every shelter suited to one hazard in the whole city, a ward or a district.
pub async fn bulk(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<OperatorRole>,
) -> Result<Response, ConsoleError> {
    let Some(need) = form.get("need").and_then(|n| Need::parse(n)) else {
        return Err(ConsoleError::bad_request(
            "災害の種類を一覧から選んでください。何も変更していません。",
        ));
    };
    let Some(status) = status_from_form(form.get("status")) else {
        return Err(ConsoleError::bad_request(
            "操作は「開設」「閉鎖」「未設定に戻す」から選んでください。何も変更していません。",
        ));
    };
    let area = form.get("area").cloned().unwrap_or_default();
    if !st
        .providers
        .shelters
        .areas()
        .await?
        .iter()
        .any(|c| c.key == area)
    {
        return Err(ConsoleError::not_found(
            "指定された範囲が見つかりません。画面を開き直してから選んでください。何も変更していません。",
        ));
    }
    let change = BulkChange {
        need: need.slug().to_string(),
        area,
        status,
    };
    // One transaction, one audit row (`shelter.status.bulk`), written by the source.
    let out = st
        .providers
        .shelters
        .set_status_bulk(&change, &a.user.name)
        .await?;
    if out.selected == 0 {
        return Err(ConsoleError::bad_request(
            "選んだ範囲に、この災害に適した避難所はありません。何も変更していません。",
        ));
    }
    tracing::info!(
        user = %a.user.name,
        need = %change.need,
        area = %change.area,
        status = %change.status,
        selected = out.selected,
        changed = out.changed,
        "shelters changed in bulk from the console"
    );
    Ok(Redirect::to("/console/shelters?msg=shelter_bulk").into_response())
}
