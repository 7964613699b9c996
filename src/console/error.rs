//! [`ConsoleError`]: every way a console request ends early, as one type that handlers return with `?`.
//!
//! `IntoResponse` has no access to the console's templates, so an error becomes a bare response that
//! carries an [`ErrorPage`] extension; [`render_error_pages`], a layer with the console state, turns it into
//! the `error.html` page. The message shown is always one of ours, never request text.

use std::borrow::Cow;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{render, ConsoleState, Role};

/// Why a console request did not complete.
#[derive(Debug)]
pub enum ConsoleError {
    /// No live session on a page: back to the login page (`expired`: the session ended, say so).
    Login { expired: bool },
    /// The user logged in with a one-time password: the password form comes first.
    PasswordChange,
    /// No live session on an action whose caller should see plainly that nothing changed (401).
    Unauthenticated,
    /// Missing or wrong CSRF token, or a cross-site request.
    Csrf,
    /// The user's role is below the one the action needs.
    Role(Role),
    /// The form was larger than a console form can be.
    TooLarge,
    /// The user may not do this to this thing, whatever their role (403), e.g. approve their own draft.
    Forbidden(Cow<'static, str>),
    /// The thing is not in a state that allows this (409), e.g. a replayed approval.
    Conflict(Cow<'static, str>),
    /// The request named something that is not there (404).
    NotFound(Cow<'static, str>),
    /// The form was wrong in a way the user can fix (400).
    BadRequest(Cow<'static, str>),
    /// A store or provider failure; logged with its cause chain, shown as a generic message.
    Internal(anyhow::Error),
}

impl ConsoleError {
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> ConsoleError {
        ConsoleError::BadRequest(message.into())
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> ConsoleError {
        ConsoleError::NotFound(message.into())
    }
}

impl From<anyhow::Error> for ConsoleError {
    fn from(e: anyhow::Error) -> Self {
        ConsoleError::Internal(e)
    }
}

/// The page an error response is rendered as, attached to the response by [`ConsoleError::into_response`].
#[derive(Clone, Debug)]
pub struct ErrorPage(pub Cow<'static, str>);

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, message): (StatusCode, Cow<'static, str>) = match self {
            ConsoleError::Login { expired: false } => {
                return Redirect::to("/console/login").into_response()
            }
            ConsoleError::Login { expired: true } => {
                return Redirect::to("/console/login?msg=expired").into_response()
            }
            ConsoleError::PasswordChange => {
                return Redirect::to("/console/password").into_response()
            }
            ConsoleError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "ログインしていないか、ログインの有効期限が切れています。ログインし直してから操作してください。".into(),
            ),
            ConsoleError::Csrf => (
                StatusCode::FORBIDDEN,
                "画面の有効期限が切れたか、不正な送信です。画面を開き直してから、もう一度操作してください。".into(),
            ),
            ConsoleError::Role(role) => (
                StatusCode::FORBIDDEN,
                format!(
                    "この操作には「{}」以上の権限が必要です。権限のある職員に依頼してください。",
                    role.label_ja()
                )
                .into(),
            ),
            ConsoleError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "送信された内容が大きすぎます。".into(),
            ),
            ConsoleError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ConsoleError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ConsoleError::Conflict(m) => (StatusCode::CONFLICT, m),
            ConsoleError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ConsoleError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "内部エラーが発生しました。しばらくしてからもう一度お試しください。続く場合はシステム担当者に連絡してください。".into(),
                )
            }
        };
        let mut res = status.into_response();
        res.extensions_mut().insert(ErrorPage(message));
        res
    }
}

/// Layer: renders responses that carry an [`ErrorPage`] as the console's error page.
pub async fn render_error_pages(State(st): State<ConsoleState>, res: Response) -> Response {
    match res.extensions().get::<ErrorPage>().cloned() {
        Some(ErrorPage(message)) => render(
            &st,
            res.status(),
            "error.html",
            minijinja::context! { message => message },
        ),
        None => res,
    }
}
