//! 職員アカウント (admin only) and the password form every user gets.
//!
//! * `GET /console/users`: accounts with role, state and last login; forms to add an account, disable one and
//!   reset a password. A new or reset account gets a random one-time password, shown once to the admin (to hand
//!   over in person); the account must choose its own password at the next login (`/console/password`).
//! * `GET/POST /console/password`: change one's own password (current one, new one twice, ≥ 12 characters).
//!
//! Every change is audited in the same transaction (`user.add`, `user.disable`, `user.password_reset`,
//! `user.password_change`). An admin cannot disable their own account (a city must not lock itself out).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;

use crate::console::auth::{authenticate, AdminRole, Authorized, SelfService, Session};
use crate::console::error::ConsoleError;
use crate::console::users::{self, AddUserError, Role, UserName};
use crate::console::{page_ctx, render, ConsoleState, PageQuery};

pub async fn page(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    if a.user.role < Role::Admin {
        return Err(ConsoleError::Role(Role::Admin));
    }
    let list = st.ctx.store.read(users::list_users).await?;
    let roles: Vec<_> = Role::ALL
        .iter()
        .map(|r| minijinja::context! { value => r.as_str(), label => r.label_ja() })
        .collect();
    let ctx = page_ctx(&st, &a, "users", q.msg.as_deref());
    let ctx = minijinja::context! {
        users => minijinja::Value::from_serialize(&list),
        roles => roles,
        me => a.user.name.clone(),
        ..ctx
    };
    Ok(render(&st, StatusCode::OK, "users.html", ctx))
}

/// Shows a one-time password once (never stored in clear, never in a URL).
fn one_time(
    st: &ConsoleState,
    a: &crate::console::auth::Authed,
    name: &str,
    password: &str,
    new: bool,
) -> Response {
    let ctx = page_ctx(st, a, "users", None);
    let ctx = minijinja::context! { account => name, password => password, new => new, ..ctx };
    render(st, StatusCode::OK, "one_time_password.html", ctx)
}

async fn hash(password: String) -> Result<String, ConsoleError> {
    Ok(
        tokio::task::spawn_blocking(move || users::hash_password(&password))
            .await
            .map_err(anyhow::Error::from)??,
    )
}

pub async fn add(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<AdminRole>,
) -> Result<Response, ConsoleError> {
    let name = form.get("name").map(|s| s.trim()).unwrap_or("");
    let name = UserName::parse(name).map_err(|_| {
        ConsoleError::bad_request(
            "ユーザー名は64文字以内で、文字・数字・「.」「_」「-」だけを使ってください。",
        )
    })?;
    let role = form
        .get("role")
        .and_then(|r| Role::parse(r))
        .ok_or_else(|| ConsoleError::bad_request("権限を一覧から選んでください。"))?;
    let password = users::one_time_password();
    let hashed = hash(password.clone()).await?;
    let (n, actor) = (name.clone(), a.user.name.clone());
    let added = st
        .ctx
        .store
        .write(move |tx| {
            Ok(
                match users::add_user(tx, &n, role, &hashed, &actor, Utc::now()) {
                    Ok(id) => {
                        users::require_password_change(tx, id)?;
                        Ok(())
                    }
                    Err(AddUserError::Exists(_)) => Err(()),
                    Err(AddUserError::Other(e)) => return Err(e),
                },
            )
        })
        .await?;
    if added.is_err() {
        return Err(ConsoleError::bad_request(format!(
            "ユーザー「{}」はすでにあります。別の名前にするか、既存のアカウントのパスワードを再設定してください。",
            name.as_str()
        )));
    }
    tracing::info!(user = %a.user.name, account = name.as_str(), role = role.as_str(), "console account added");
    Ok(one_time(&st, &a, name.as_str(), &password, true))
}

pub async fn disable(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<AdminRole>,
) -> Result<Response, ConsoleError> {
    let name = form.get("name").cloned().unwrap_or_default();
    if name == a.user.name {
        return Err(ConsoleError::bad_request(
            "自分のアカウントは無効にできません。別の管理者に依頼してください。",
        ));
    }
    let actor = a.user.name.clone();
    let n = name.clone();
    if !st
        .ctx
        .store
        .write(move |tx| users::disable_user(tx, &n, &actor))
        .await?
    {
        return Err(ConsoleError::not_found(
            "指定されたユーザーが見つかりません。一覧を開き直してください。",
        ));
    }
    Ok(Redirect::to("/console/users?msg=user_disabled").into_response())
}

pub async fn reset(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<AdminRole>,
) -> Result<Response, ConsoleError> {
    let name = form.get("name").cloned().unwrap_or_default();
    let password = users::one_time_password();
    let hashed = hash(password.clone()).await?;
    let (n, actor) = (name.clone(), a.user.name.clone());
    if !st
        .ctx
        .store
        .write(move |tx| users::reset_password(tx, &n, &hashed, &actor))
        .await?
    {
        return Err(ConsoleError::not_found(
            "指定されたユーザーが見つかりません。一覧を開き直してください。",
        ));
    }
    Ok(one_time(&st, &a, &name, &password, false))
}

pub async fn password_page(
    State(st): State<ConsoleState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ConsoleError> {
    let a = authenticate(&st, &headers).await?;
    Ok(password_form(&st, &a, StatusCode::OK, None))
}

fn password_form(
    st: &ConsoleState,
    a: &crate::console::auth::Authed,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let ctx = page_ctx(st, a, "password", None);
    let ctx = minijinja::context! {
        forced => a.user.must_change_password,
        error => error,
        ..ctx
    };
    render(st, status, "password.html", ctx)
}

pub async fn password_submit(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<SelfService>,
) -> Result<Response, ConsoleError> {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (current, new, confirm) = (get("current"), get("new"), get("confirm"));
    let name = a.user.name.clone();
    let cur = current.clone();
    let checked = st
        .ctx
        .store
        .read(move |c| users::check_credentials(c, &name, &cur))
        .await?;
    if checked.is_err() {
        return Ok(password_form(
            &st,
            &a,
            StatusCode::UNAUTHORIZED,
            Some("今のパスワードが正しくありません。"),
        ));
    }
    if let Err(why) = users::check_new_password(&new, &confirm, &current) {
        return Ok(password_form(&st, &a, StatusCode::BAD_REQUEST, Some(why)));
    }
    let hashed = hash(new).await?;
    let user = a.user.clone();
    st.ctx
        .store
        .write(move |tx| users::change_password(tx, &user, &hashed))
        .await?;
    Ok(Redirect::to("/console/?msg=password_changed").into_response())
}
