//! `GET/POST /console/login` and `POST /console/logout`.
//!
//! The login form has no session yet, so its CSRF token is a pre-session cookie that the hidden field must
//! equal (login CSRF); failures are throttled per user name and per client address, and a lock is reported
//! to operators once.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::console::auth::{authenticate, Authorized, SelfService};
use crate::console::error::ConsoleError;
use crate::console::session::{self, Throttle, ThrottleCheck};
use crate::console::users::{self, LoginRefusal};
use crate::console::{
    client_ip, cookie, flash_text, parse_form, render, same_origin, templates, ConsoleState,
    PageQuery,
};

pub async fn page(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    if cookie(&headers, st.session_cookie()).is_some() {
        if let Ok(_a) = authenticate(&st, &headers).await {
            return Redirect::to("/console/").into_response();
        }
    }
    login_form(
        &st,
        StatusCode::OK,
        q.msg.as_deref().and_then(flash_text),
        None,
        "",
    )
}

fn login_form(
    st: &ConsoleState,
    status: StatusCode,
    info: Option<&str>,
    error: Option<&str>,
    name: &str,
) -> Response {
    let token = session::random_token();
    let mut res = render(
        st,
        status,
        "login.html",
        minijinja::context! { csrf => token, info => info, error => error, name => name },
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        st.set_cookie(st.login_csrf_cookie(), &token, false),
    );
    res
}

pub async fn submit(
    State(st): State<ConsoleState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form = parse_form(&body);
    let name = form.get("name").map(|s| s.trim()).unwrap_or("");
    // Control characters never reach the audit log, the problem list or the log lines.
    let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let outcome = |o: &'static str| {
        st.ctx.metrics.inc(
            "sonae_console_logins_total",
            "Console login attempts by outcome.",
            &[("outcome", o)],
        )
    };

    // CSRF on the login form: the hidden field must equal the pre-session cookie (login CSRF).
    let cookie_token = cookie(&headers, st.login_csrf_cookie()).unwrap_or("");
    let form_token = form.get("csrf").map(String::as_str).unwrap_or("");
    if !same_origin(&st, &headers)
        || cookie_token.is_empty()
        || !session::tokens_equal(form_token, cookie_token)
    {
        outcome("csrf");
        return Ok(login_form(
            &st,
            StatusCode::FORBIDDEN,
            None,
            Some("画面の有効期限が切れました。もう一度ログインしてください。"),
            &name,
        ));
    }

    let now = st.now();
    let ip = client_ip(&st, peer, &headers);
    let user_key = Throttle::user_key(&name);
    let ip_key = Throttle::ip_key(ip);
    let locked = {
        let mut t = st.throttle.lock().unwrap_or_else(|p| p.into_inner());
        [t.check(&user_key, now), t.check(&ip_key, now)]
            .into_iter()
            .filter_map(|c| match c {
                ThrottleCheck::Locked { until } => Some(until),
                ThrottleCheck::Allowed => None,
            })
            .max()
    };
    if let Some(until) = locked {
        outcome("locked");
        let msg = format!(
            "ログインの失敗が続いたため、一時的にログインを制限しています。{} 以降にもう一度お試しください。",
            templates::jst(&until.to_rfc3339())
        );
        return Ok(login_form(
            &st,
            StatusCode::TOO_MANY_REQUESTS,
            None,
            Some(&msg),
            &name,
        ));
    }

    let (n, pw) = (name.clone(), password.to_string());
    // Argon2 verification is CPU work: it runs on the blocking pool through the store's reader.
    let checked = st
        .ctx
        .store
        .read(move |c| users::check_credentials(c, &n, &pw))
        .await?;
    let user = match checked {
        Ok(u) => u,
        Err(refusal) => {
            let newly_locked = {
                let mut t = st.throttle.lock().unwrap_or_else(|p| p.into_inner());
                t.record_failure(&user_key, now);
                t.record_failure(&ip_key, now);
                (
                    t.check(&user_key, now) != ThrottleCheck::Allowed,
                    t.check(&ip_key, now) != ThrottleCheck::Allowed,
                )
            };
            // A lock starts at this failure (later attempts are refused before reaching here), so each
            // lock is reported to operators once.
            if newly_locked.0 {
                st.ctx
                    .store
                    .record_problem(
                        "console.login",
                        format!(
                            "ユーザー「{name}」のログイン失敗が続いたため、{}分間ログインを制限しました。心当たりがない場合は不正アクセスの可能性があります。",
                            Throttle::WINDOW_SECS / 60
                        ),
                        Some(format!("client address {ip}")),
                    )
                    .await;
            }
            if newly_locked.1 {
                st.ctx
                    .store
                    .record_problem(
                        "console.login",
                        format!(
                            "接続元 {ip} からのログイン失敗が続いたため、{}分間この接続元からのログインを制限しました。",
                            Throttle::WINDOW_SECS / 60
                        ),
                        None,
                    )
                    .await;
            }
            let why = match refusal {
                LoginRefusal::BadCredentials => "bad_credentials",
                LoginRefusal::Disabled => "disabled",
            };
            outcome(why);
            let (n, ip) = (name.clone(), ip.to_string());
            st.ctx
                .store
                .write(move |tx| {
                    crate::store::Store::audit(
                        tx,
                        &n,
                        "console.login_failed",
                        &serde_json::json!({ "ip": ip, "reason": why }),
                    )
                })
                .await?;
            return Ok(login_form(
                &st,
                StatusCode::UNAUTHORIZED,
                None,
                Some("ユーザー名またはパスワードが正しくありません。"),
                &name,
            ));
        }
    };

    st.throttle
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record_success(&user_key);
    let (policy, ip, uid, uname) = (st.policy, ip.to_string(), user.id, user.name.clone());
    let value = st
        .ctx
        .store
        .write(move |tx| {
            session::prune(tx, policy, now)?;
            let (cookie_value, _s) = session::create(tx, uid, now)?;
            crate::store::Store::audit(
                tx,
                &uname,
                "console.login",
                &serde_json::json!({ "ip": ip }),
            )?;
            Ok(cookie_value)
        })
        .await?;
    outcome("ok");
    let next = if user.must_change_password {
        "/console/password"
    } else {
        "/console/"
    };
    let mut res = Redirect::to(next).into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        st.set_cookie(st.session_cookie(), &value, false),
    );
    h.append(
        header::SET_COOKIE,
        st.set_cookie(st.login_csrf_cookie(), "", true),
    );
    Ok(res)
}

pub async fn logout(
    State(st): State<ConsoleState>,
    Authorized { authed: a, .. }: Authorized<SelfService>,
) -> Result<Response, ConsoleError> {
    let (h, name) = (a.session.id_hash.clone(), a.user.name.clone());
    st.ctx
        .store
        .write(move |tx| {
            session::delete(tx, &h)?;
            crate::store::Store::audit(tx, &name, "console.logout", &serde_json::json!({}))
        })
        .await?;
    let mut res = Redirect::to("/console/login?msg=logout").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        st.set_cookie(st.session_cookie(), "", true),
    );
    Ok(res)
}
