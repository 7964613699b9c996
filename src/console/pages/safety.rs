//! 安否 in the console: answers per district for an alert (the latest by default), and the follow-up list of
//! 「助けが必要」 (district, time, what the resident wrote, where they are), which staff mark 対応中/対応済 and
//! answer with a message that goes through the outbox.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::console::auth::{Authorized, OperatorRole, Session};
use crate::console::error::ConsoleError;
use crate::console::{page_ctx, render, ConsoleState};
use crate::disaster::safety;

/// Seconds between live refreshes (answers keep arriving during an evacuation).
const REFRESH_SECS: u32 = 10;
/// Longest staff message, in characters.
const MAX_MESSAGE_CHARS: usize = 500;

#[derive(Deserialize)]
pub struct SafetyQuery {
    #[serde(rename = "ref")]
    reference: Option<String>,
    msg: Option<String>,
}

pub async fn page(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<SafetyQuery>,
) -> Result<Response, ConsoleError> {
    let now = chrono::Utc::now();
    let wanted = q.reference.clone();
    let (alerts, chosen, counts, help) = st
        .ctx
        .store
        .read(move |c| {
            let alerts: Vec<(String, String, String)> = {
                let mut s = c.prepare(
                    "SELECT step_key, summary, created_at FROM delivery_alerts
                     WHERE source IN ('disaster', 'manual') ORDER BY id DESC LIMIT 30",
                )?;
                let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            let chosen = match wanted {
                Some(r) => safety::summary_of(c, &r)?.map(|(_, s)| (r, s)),
                None => safety::latest(c, now)?,
            };
            let counts = match &chosen {
                Some((r, _)) => safety::counts(c, r)?,
                None => vec![],
            };
            Ok((alerts, chosen, counts, safety::help_list(c)?))
        })
        .await?;
    let names: HashMap<String, String> = st
        .ctx
        .place
        .as_ref()
        .map(|p| {
            p.districts
                .all()
                .iter()
                .map(|d| {
                    (
                        d.id.clone(),
                        format!("{}{}", d.group.clone().unwrap_or_default(), d.name),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let name = |id: &str| {
        if id.is_empty() {
            "地区未登録".to_string()
        } else {
            names.get(id).cloned().unwrap_or_else(|| id.to_string())
        }
    };
    let max_help = counts.iter().map(|c| c.help).max().unwrap_or(0).max(1);
    let rows: Vec<_> = counts
        .iter()
        .map(|c| {
            minijinja::context! {
                name => name(&c.district_id),
                evacuated => c.evacuated,
                safe => c.safe,
                help => c.help,
                // 0..=4: how many of this alert's help requests come from here, for the row's shade.
                shade => (c.help * 4 + max_help - 1) / max_help,
            }
        })
        .collect();
    let totals = counts.iter().fold((0, 0, 0), |t, c| {
        (t.0 + c.evacuated, t.1 + c.safe, t.2 + c.help)
    });
    let help: Vec<_> = help
        .iter()
        .map(|h| {
            minijinja::context! {
                id => h.id,
                district => name(h.district_id.as_deref().unwrap_or("")),
                at => h.at.clone(),
                detail => h.detail.clone(),
                map => h.lat.zip(h.lon).map(|(la, lo)| format!("https://maps.gsi.go.jp/#17/{la:.6}/{lo:.6}/")),
                follow_up => h.follow_up.clone(),
                handled_by => h.handled_by.clone(),
            }
        })
        .collect();
    let alert_choices: Vec<_> = alerts
        .iter()
        .map(|(k, s, at)| minijinja::context! { reference => safety::reference(k), summary => s, at => at })
        .collect();
    let ctx = page_ctx(&st, &a, "safety", q.msg.as_deref());
    let ctx = minijinja::context! {
        alerts => alert_choices,
        chosen => chosen.as_ref().map(|(r, s)| minijinja::context! { reference => r, summary => s }),
        rows => rows,
        totals => minijinja::context! { evacuated => totals.0, safe => totals.1, help => totals.2 },
        help => help,
        max_message => MAX_MESSAGE_CHARS,
        refresh => REFRESH_SECS,
        ..ctx
    };
    Ok(render(&st, StatusCode::OK, "safety.html", ctx))
}

/// `GET /console/safety/counts.json?ref=`: answers per district for the page's map.
pub async fn counts_json(
    State(st): State<ConsoleState>,
    Session(_a): Session,
    Query(q): Query<SafetyQuery>,
) -> Result<Response, ConsoleError> {
    let now = chrono::Utc::now();
    let wanted = q.reference.clone();
    let counts = st
        .ctx
        .store
        .read(move |c| {
            let reference = match wanted {
                Some(r) => Some(r),
                None => safety::latest(c, now)?.map(|(r, _)| r),
            };
            Ok(match reference {
                Some(r) => safety::counts(c, &r)?,
                None => vec![],
            })
        })
        .await?;
    let map: serde_json::Map<String, serde_json::Value> = counts
        .into_iter()
        .filter(|c| !c.district_id.is_empty())
        .map(|c| {
            (
                c.district_id.clone(),
                serde_json::json!({"evacuated": c.evacuated, "safe": c.safe, "help": c.help}),
            )
        })
        .collect();
    Ok(axum::Json(map).into_response())
}

pub async fn follow_up(
    State(st): State<ConsoleState>,
    Path(id): Path<i64>,
    Authorized {
        authed: a, form, ..
    }: Authorized<OperatorRole>,
) -> Result<Response, ConsoleError> {
    let actor = a.user.name.clone();
    let state = match form.get("state").map(String::as_str) {
        Some(s @ ("in_progress" | "done" | "open")) => s.to_string(),
        _ => return Err(ConsoleError::bad_request("対応状況を選んでください。")),
    };
    let found = st
        .ctx
        .store
        .write(move |tx| safety::set_follow_up(tx, id, &state, &actor))
        .await?;
    if found.is_none() {
        return Err(ConsoleError::not_found("指定された要請が見つかりません。"));
    }
    Ok(Redirect::to("/console/safety?msg=follow_up").into_response())
}

pub async fn message(
    State(st): State<ConsoleState>,
    Path(id): Path<i64>,
    Authorized {
        authed: a, form, ..
    }: Authorized<OperatorRole>,
) -> Result<Response, ConsoleError> {
    let text = form.get("text").map(|s| s.trim()).unwrap_or("").to_string();
    if text.is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ConsoleError::bad_request(format!(
            "連絡の文を{MAX_MESSAGE_CHARS}文字以内で入力してください。"
        )));
    }
    let actor = a.user.name.clone();
    let sent = st
        .ctx
        .store
        .write(move |tx| {
            safety::message_resident(tx, id, &text, &actor, chrono::Utc::now().timestamp_millis())
        })
        .await?;
    if !sent {
        return Err(ConsoleError::not_found("指定された要請が見つかりません。"));
    }
    // The dispatcher's next run wakes the outbox sender.
    st.ctx.alerts.wake.notify_one();
    Ok(Redirect::to("/console/safety?msg=safety_message").into_response())
}
