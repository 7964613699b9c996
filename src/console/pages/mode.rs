//! `POST /console/mode`: manual hold and release of disaster mode (承認者 and above).

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use crate::console::auth::{ApproverRole, Authorized};
use crate::console::error::ConsoleError;
use crate::console::ConsoleState;
use crate::mode::{self, HoldOutcome};

/// Longest accepted reason text, in characters.
const MAX_REASON_CHARS: usize = 200;

pub async fn submit(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<ApproverRole>,
) -> Result<Response, ConsoleError> {
    let hold = match form.get("action").map(String::as_str) {
        Some("hold") => true,
        Some("release") => false,
        _ => {
            return Err(ConsoleError::bad_request(
                "操作の種類が正しくありません。ダッシュボードから操作してください。",
            ))
        }
    };
    let reason = form.get("reason").map(|s| s.trim()).unwrap_or("");
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ConsoleError::bad_request(format!(
            "理由を{MAX_REASON_CHARS}文字以内で入力してください。理由は監査ログに残ります。"
        )));
    }
    // Hawaii 2018: the confirmation for a live, city-wide action says exactly what will happen, and is
    // checked here, not only in the browser.
    if hold && form.get("confirm").map(String::as_str) != Some("yes") {
        return Err(ConsoleError::bad_request(
            "「全住民の LINE メニューが災害時用に切り替わることを確認しました」にチェックを入れてから操作してください。",
        ));
    }
    let (actor, reason, now) = (a.user.name.clone(), reason.to_string(), st.now());
    let outcome = st
        .ctx
        .store
        .write(move |tx| mode::set_manual_hold(tx, hold, &actor, &reason, now))
        .await?;
    Ok(match outcome {
        HoldOutcome::Changed => {
            st.ctx.metrics.inc(
                "sonae_console_mode_actions_total",
                "Manual hold/release of disaster mode from the console.",
                &[("action", if hold { "hold" } else { "release" })],
            );
            tracing::warn!(
                user = %a.user.name,
                action = if hold { "hold" } else { "release" },
                "disaster mode manual hold changed from the console"
            );
            Redirect::to(if hold {
                "/console/?msg=held"
            } else {
                "/console/?msg=released"
            })
            .into_response()
        }
        HoldOutcome::AlreadySo => Redirect::to("/console/?msg=unchanged").into_response(),
    })
}
