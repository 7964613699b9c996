//! Who is asking: the console's authentication and authorization as axum extractors.
//!
//! * [`Session`]: the logged-in user of a page; without a live session, the login redirect.
//! * [`Authorized<R>`]: a state-changing POST by a user of at least role `R`, with its parsed form, after
//!   the checks every such POST makes in order: a live session, the CSRF synchronizer token and a
//!   same-origin request ([`super::same_origin`]), then the role.
//!
//! Both reject with a [`ConsoleError`].

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::error::ConsoleError;
use super::users::{self, User};
use super::{cookie, parse_form, same_origin, session, ConsoleState, Role};
use crate::mode::{self, ModeState};

/// Header `console.js` sends with its background refreshes.
pub const LIVE_REFRESH_HEADER: &str = "x-sonae-live-refresh";

/// The largest console form accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A logged-in user, their session and the mode at the time of the request.
pub struct Authed {
    pub user: User,
    pub session: session::Session,
    pub mode: ModeState,
    /// A drill (訓練) is running: every page says so.
    pub drill: bool,
}

/// The logged-in user, or [`ConsoleError::Login`].
pub async fn authenticate(st: &ConsoleState, headers: &HeaderMap) -> Result<Authed, ConsoleError> {
    let Some(value) = cookie(headers, st.session_cookie()) else {
        return Err(ConsoleError::Login { expired: false });
    };
    let value = value.to_string();
    let (policy, now) = (st.policy, st.now());
    // console.js marks its background refreshes; they do not keep an unattended session alive.
    let activity = headers.get(LIVE_REFRESH_HEADER).is_none();
    let found = st
        .ctx
        .store
        .write(move |tx| {
            let s = match session::touch(tx, &value, policy, now, activity)? {
                Ok(s) => s,
                Err(_) => return Ok(None),
            };
            let Some(user) = users::user_by_id(tx, s.user_id)? else {
                return Ok(None);
            };
            let mode = mode::current_mode(tx)?;
            let drill = crate::disaster::manual::drill_active(tx)?;
            Ok(Some(Authed {
                user,
                session: s,
                mode,
                drill,
            }))
        })
        .await?;
    found.ok_or(ConsoleError::Login { expired: true })
}

/// The form's CSRF token matches the session's, and the request is same-origin.
pub fn check_csrf(
    st: &ConsoleState,
    a: &Authed,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), ConsoleError> {
    let token = form.get("csrf").map(String::as_str).unwrap_or("");
    if !same_origin(st, headers) || !session::tokens_equal(token, &a.session.csrf_token) {
        st.ctx.metrics.inc(
            "sonae_console_csrf_rejections_total",
            "Console POSTs refused for a missing or wrong CSRF token or a cross-site origin.",
            &[],
        );
        return Err(ConsoleError::Csrf);
    }
    Ok(())
}

/// The logged-in user of a page.
pub struct Session(pub Authed);

impl FromRequestParts<ConsoleState> for Session {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let a = authenticate(st, &parts.headers).await?;
        if a.user.must_change_password {
            return Err(ConsoleError::PasswordChange);
        }
        Ok(Session(a))
    }
}

/// The least role a console action needs, as a type ([`Authorized`]).
pub trait MinRole {
    const ROLE: Role;
    /// The action is allowed to a user who logged in with a one-time password and has not chosen their own
    /// yet (only logging out and choosing the password are).
    const WITH_ONE_TIME_PASSWORD: bool = false;
}

/// Any logged-in user, even one who must still replace a one-time password: logout and the password form.
pub struct SelfService;
impl MinRole for SelfService {
    const ROLE: Role = Role::Viewer;
    const WITH_ONE_TIME_PASSWORD: bool = true;
}

/// 担当者 (operator) and above.
pub struct OperatorRole;
impl MinRole for OperatorRole {
    const ROLE: Role = Role::Operator;
}

/// 起案者 (drafter) and above.
pub struct DrafterRole;
impl MinRole for DrafterRole {
    const ROLE: Role = Role::Drafter;
}

/// 承認者 (approver) and above.
pub struct ApproverRole;
impl MinRole for ApproverRole {
    const ROLE: Role = Role::Approver;
}

/// 管理者 (admin).
pub struct AdminRole;
impl MinRole for AdminRole {
    const ROLE: Role = Role::Admin;
}

/// A state-changing console POST by a user of at least role `R`, with its form.
pub struct Authorized<R> {
    pub authed: Authed,
    pub form: HashMap<String, String>,
    _role: PhantomData<R>,
}

impl<R: MinRole + Send> FromRequest<ConsoleState> for Authorized<R> {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, st: &ConsoleState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| ConsoleError::TooLarge)?;
        let authed = authenticate(st, &parts.headers).await?;
        let form = parse_form(&body);
        check_csrf(st, &authed, &parts.headers, &form)?;
        if authed.user.must_change_password && !R::WITH_ONE_TIME_PASSWORD {
            return Err(ConsoleError::PasswordChange);
        }
        if authed.user.role < R::ROLE {
            return Err(ConsoleError::Role(R::ROLE));
        }
        Ok(Authorized {
            authed,
            form,
            _role: PhantomData,
        })
    }
}
