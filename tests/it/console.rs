//! Operator console over real HTTP on random ports: login, throttling, session expiry on a moved clock,
//! CSRF, audited hold/release, roles, `/api/status`, the `sonae user` commands, and the login page rendered
//! by headless Chromium.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use sonae::config::{Config, Secrets};
use sonae::console::{
    self, Board, DeliveryRow, Providers, Role, ShelterRow, ShelterStatus, WarningRow,
};
use sonae::secret::Secret;
use sonae::store::Store;

use crate::helpers::{free_port, write_config, Daemon, SONAE};

const PASSWORD: &str = "kasumi-ga-seki-2026";

/// A console served in-process on a random port, with a clock the test moves.
struct Console {
    addr: SocketAddr,
    /// The admin listener, serving `/api/status`.
    admin: SocketAddr,
    _admin_server: tokio::task::JoinHandle<()>,
    store: Store,
    now: Arc<Mutex<DateTime<Utc>>>,
    shelters: Arc<Board<ShelterRow>>,
    plow: Arc<sonae::plow::Plow>,
    _dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

impl Console {
    async fn start(public_url: Option<&str>, api_token: Option<&str>) -> Console {
        Console::start_with(public_url, api_token, |_| {}).await
    }

    /// [`Console::start`] with a config changed by `tweak` (e.g. plows enabled).
    async fn start_with(
        public_url: Option<&str>,
        api_token: Option<&str>,
        tweak: impl FnOnce(&mut Config),
    ) -> Console {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::helpers::test_config(&dir.path().join("sonae.db"));
        if let Some(u) = public_url {
            config.server.public_url = u.to_string();
        }
        tweak(&mut config);
        let secrets = Secrets {
            line_channel_secret: Secret::new("s"),
            line_channel_access_token: Secret::new("t"),
            api_token: api_token.map(Secret::new),
        };
        let app = sonae::app::Application::build(config, secrets)
            .await
            .unwrap();
        let ctx = app.console_deps();
        let store = ctx.store.clone();
        let plow = ctx.plow.clone();

        let now = Arc::new(Mutex::new(
            DateTime::parse_from_rfc3339("2026-09-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        ));
        let clock_now = now.clone();
        let clock: console::Clock = Arc::new(move || *clock_now.lock().unwrap());
        let shelters = Board::new(vec![
            ShelterRow {
                id: "06201-001".into(),
                name: "第一小学校".into(),
                area: "中央地区".into(),
                status: ShelterStatus::Closed,
                hazards: vec!["洪水".into(), "土砂災害".into()],
                needs: vec!["flood".into(), "landslide".into()],
                areas: vec!["all".into(), "district:chuo".into()],
            },
            ShelterRow {
                id: "06201-002".into(),
                name: "市民体育館".into(),
                area: "東部地区".into(),
                status: ShelterStatus::Open,
                hazards: vec!["地震".into()],
                needs: vec!["earthquake".into()],
                areas: vec!["all".into(), "district:tobu".into()],
            },
        ]);
        let providers = Providers {
            warnings: Board::new(vec![WarningRow {
                municipality_code: "0620100".into(),
                municipality_name: "山形市".into(),
                kind_code: "33".into(),
                kind_name: "大雨特別警報".into(),
                severity: "特別警報".into(),
                level: Some(5),
                status: "発表".into(),
                issued_at: Some(Utc::now()),
            }]),
            deliveries: Board::new(vec![DeliveryRow {
                alert_id: "alert-7".into(),
                title: "【大雨特別警報】山形市".into(),
                started_at: Some(Utc::now()),
                planned: 20_000,
                sent: 12_500,
                failed: 3,
                drill: false,
            }]),
            shelters: shelters.clone(),
        };
        // Served as the daemon serves them: the pages on one listener, /api/status on another, both
        // through the daemon's layers (security headers, timeout, access log).
        let routers = console::router_with(ctx, providers, clock);
        let timeout = std::time::Duration::from_secs(15);
        let serve = |router: axum::Router, listener: tokio::net::TcpListener| {
            let router = sonae::app::http_layers(router, timeout);
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await
                .unwrap();
            })
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = admin_listener.local_addr().unwrap();
        let server = serve(routers.public, listener);
        let admin_server = serve(routers.admin, admin_listener);
        Console {
            addr,
            admin,
            _admin_server: admin_server,
            store,
            now,
            shelters,
            plow,
            _dir: dir,
            _server: server,
        }
    }

    fn advance(&self, d: Duration) {
        *self.now.lock().unwrap() += d;
    }

    fn add_user(&self, name: &str, role: Role) {
        let hash = console::users::hash_password(PASSWORD).unwrap();
        let name = console::users::UserName::parse(name).unwrap();
        self.store
            .write_blocking(|tx| {
                Ok(console::users::add_user(
                    tx,
                    &name,
                    role,
                    &hash,
                    "test",
                    Utc::now(),
                )?)
            })
            .unwrap();
    }

    fn browser(&self) -> Browser {
        Browser {
            base: format!("http://{}", self.addr),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn audit(&self) -> Vec<(String, String, String)> {
        self.store
            .read_blocking(|c| {
                let mut st =
                    c.prepare("SELECT actor, action, detail FROM audit_log ORDER BY id")?;
                let v = st
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(v)
            })
            .unwrap()
    }

    fn mode(&self) -> sonae::mode::ModeState {
        self.store.read_blocking(sonae::mode::current_mode).unwrap()
    }
}

/// A minimal browser: keeps cookies, does not follow redirects.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let i = self.body.find(marker).expect("page has a CSRF field") + marker.len();
        self.body[i..].split('"').next().unwrap().to_string()
    }
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, res: reqwest::Response) -> Page {
        let set_cookies: Vec<String> = res
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status: res.status().as_u16(),
            location: res
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| v.to_str().unwrap().to_string()),
            set_cookies,
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.get_with(path, &[]).await
    }

    async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = self
            .client
            .get(format!("{}{}", self.base, path))
            .header(reqwest::header::COOKIE, self.cookie_header());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        self.finish(res).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, &[]).await
    }

    async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .client
            .post(format!("{}{}", self.base, path))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        self.finish(res).await
    }

    async fn try_login(&mut self, name: &str, password: &str) -> Page {
        self.try_login_via(name, password, &[]).await
    }

    async fn try_login_via(
        &mut self,
        name: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> Page {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        self.post_with(
            "/console/login",
            &[("csrf", &csrf), ("name", name), ("password", password)],
            headers,
        )
        .await
    }

    async fn login(&mut self, name: &str) -> Page {
        let p = self.try_login(name, PASSWORD).await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(p.location.as_deref(), Some("/console/"));
        let dash = self.get("/console/").await;
        assert_eq!(dash.status, 200);
        dash
    }
}

#[tokio::test]
async fn login_with_the_right_password_opens_the_dashboard_with_a_strict_httponly_cookie() {
    let c = Console::start(None, None).await;
    c.add_user("tanaka", Role::Operator);
    let mut b = c.browser();

    // Not logged in: sent to the login page.
    let p = b.get("/console/").await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/console/login"));

    let p = b.try_login("tanaka", PASSWORD).await;
    assert_eq!(p.status, 303);
    let cookie = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("sonae_session="))
        .expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain-http public_url: {cookie}"
    );
    let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert_eq!(value.len(), 43, "256-bit id in base64url");

    // Only the hash of the id is stored.
    let stored: Vec<String> = c
        .store
        .read_blocking(|conn| {
            let mut st = conn.prepare("SELECT id_hash FROM console_sessions")?;
            let v = st
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], value);
    assert_eq!(stored[0], console::session::hash_id(value));

    let dash = b.get("/console/").await;
    assert_eq!(dash.status, 200);
    for text in [
        "ダッシュボード",
        "災害モード",
        "山形市",
        "大雨特別警報",
        "レベル5",
        "12500",
        "tanaka（担当者）",
    ] {
        assert!(dash.body.contains(text), "dashboard lacks {text}");
    }
    assert!(dash.body.contains("市民体育館"), "open shelter listed");
    assert!(
        !dash.body.contains("第一小学校"),
        "closed shelter not listed on dashboard"
    );
    assert!(dash.body.contains("平常時"));
    // An operator does not get the hold form.
    assert!(!dash.body.contains("action\" value=\"hold\""));

    let headers = &dash.headers;
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    // `same-origin`: nothing leaks to other sites, and the browser's own form POSTs carry a real Origin.
    assert_eq!(headers["referrer-policy"], "same-origin");

    assert!(c
        .audit()
        .iter()
        .any(|(a, act, _)| a == "tanaka" && act == "console.login"));

    // Logout ends the session on the server, not only in the browser.
    let old = b.cookies.clone();
    let csrf = dash.csrf();
    let out = b.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    b.cookies = old;
    let p = b.get("/console/").await;
    assert_eq!(p.status, 303, "a logged-out session id is useless");
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_refused_and_audited() {
    let c = Console::start(None, None).await;
    c.add_user("tanaka", Role::Operator);
    let mut b = c.browser();
    let p = b.try_login("tanaka", "not-the-password").await;
    assert_eq!(p.status, 401);
    assert!(p
        .body
        .contains("ユーザー名またはパスワードが正しくありません"));
    assert!(!b.cookies.contains_key("sonae_session"));
    let p = b.try_login("nobody", PASSWORD).await;
    assert_eq!(p.status, 401);
    // Same message for an unknown name: nothing tells which part was wrong.
    assert!(p
        .body
        .contains("ユーザー名またはパスワードが正しくありません"));
    let failed: Vec<_> = c
        .audit()
        .into_iter()
        .filter(|(_, act, _)| act == "console.login_failed")
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0].0, "tanaka");
    assert!(failed[0].2.contains("127.0.0.1"));
}

#[tokio::test]
async fn five_failures_lock_the_account_even_for_the_right_password_until_the_window_passes() {
    let c = Console::start(None, None).await;
    c.add_user("tanaka", Role::Operator);
    let mut b = c.browser();
    for _ in 0..5 {
        assert_eq!(b.try_login("tanaka", "guess-guess-guess").await.status, 401);
    }
    let p = b.try_login("tanaka", PASSWORD).await;
    assert_eq!(p.status, 429, "locked even with the right password");
    assert!(p.body.contains("一時的にログインを制限しています"));
    assert!(!b.cookies.contains_key("sonae_session"));

    // Operators see the lock once on the problem list.
    let problems: Vec<String> = c
        .store
        .read_blocking(|conn| {
            let mut st =
                conn.prepare("SELECT message FROM problems WHERE source = 'console.login'")?;
            let v = st
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("ユーザー「tanaka」のログイン失敗が続いた"),
        "{problems:?}"
    );

    c.advance(Duration::minutes(14));
    assert_eq!(b.try_login("tanaka", PASSWORD).await.status, 429);
    c.advance(Duration::minutes(1));
    b.login("tanaka").await;
}

#[tokio::test]
async fn twenty_failures_from_one_address_lock_every_name_from_it() {
    let c = Console::start(None, None).await;
    c.add_user("sato", Role::Operator);
    let mut b = c.browser();
    for i in 0..20 {
        let p = b.try_login(&format!("user{i}"), "guess-guess-guess").await;
        assert_eq!(p.status, 401);
    }
    assert_eq!(b.try_login("sato", PASSWORD).await.status, 429);
}

#[tokio::test]
async fn behind_the_local_reverse_proxy_failures_count_per_forwarded_client_address() {
    let c = Console::start(None, None).await;
    c.add_user("sato", Role::Operator);
    let mut b = c.browser();
    let attacker = [("X-Forwarded-For", "203.0.113.9, 198.51.100.7")];
    for i in 0..20 {
        let p = b
            .try_login_via(&format!("user{i}"), "guess-guess-guess", &attacker)
            .await;
        assert_eq!(p.status, 401);
    }
    assert_eq!(
        b.try_login_via("sato", PASSWORD, &attacker).await.status,
        429
    );
    // Another client behind the same proxy is not locked out.
    let p = b
        .try_login_via("sato", PASSWORD, &[("X-Forwarded-For", "198.51.100.8")])
        .await;
    assert_eq!(p.status, 303);
    let failed = c
        .audit()
        .into_iter()
        .find(|(_, a, _)| a == "console.login_failed")
        .unwrap();
    assert!(failed.2.contains("198.51.100.7"), "{failed:?}");
}

#[tokio::test]
async fn a_session_expires_after_thirty_idle_minutes_and_twelve_hours_in_all() {
    let c = Console::start(None, None).await;
    c.add_user("tanaka", Role::Operator);
    let mut b = c.browser();
    b.login("tanaka").await;

    // Activity every 29 minutes keeps it alive...
    for _ in 0..3 {
        c.advance(Duration::minutes(29));
        assert_eq!(b.get("/console/").await.status, 200);
    }
    // ...30 idle minutes end it.
    c.advance(Duration::minutes(30));
    let p = b.get("/console/").await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/console/login?msg=expired"));
    assert_eq!(
        b.get("/console/").await.status,
        303,
        "the expired row is gone"
    );

    // Absolute timeout: busy for 12 hours, then out.
    b.login("tanaka").await;
    for _ in 0..24 {
        c.advance(Duration::minutes(29));
        assert_eq!(b.get("/console/audit").await.status, 200);
    }
    c.advance(Duration::minutes(25)); // 24×29 + 25 = 721 min > 12 h
    assert_eq!(b.get("/console/audit").await.status, 303);

    // The dashboard's background refresh is served but is not activity: the session still idles out.
    b.login("tanaka").await;
    let live = [("X-Sonae-Live-Refresh", "1")];
    c.advance(Duration::minutes(20));
    assert_eq!(b.get_with("/console/", &live).await.status, 200);
    c.advance(Duration::minutes(9));
    assert_eq!(b.get_with("/console/", &live).await.status, 200);
    c.advance(Duration::minutes(1));
    assert_eq!(b.get_with("/console/", &live).await.status, 303);
}

#[tokio::test]
async fn posts_without_the_sessions_csrf_token_or_from_another_site_change_nothing() {
    let c = Console::start(None, None).await;
    c.add_user("suzuki", Role::Approver);
    let mut b = c.browser();
    let dash = b.login("suzuki").await;
    let csrf = dash.csrf();

    let p = b
        .post("/console/mode", &[("action", "hold"), ("reason", "x")])
        .await;
    assert_eq!(p.status, 403);
    let p = b
        .post(
            "/console/mode",
            &[
                ("csrf", "forged-token"),
                ("action", "hold"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(p.body.contains("不正な送信"));
    // The right token sent from a foreign page is refused too.
    let p = b
        .post_with(
            "/console/mode",
            &[("csrf", &csrf), ("action", "hold"), ("reason", "x")],
            &[("Origin", "https://evil.example")],
        )
        .await;
    assert_eq!(p.status, 403);
    let p = b
        .post_with(
            "/console/mode",
            &[("csrf", &csrf), ("action", "hold"), ("reason", "x")],
            &[("Sec-Fetch-Site", "cross-site")],
        )
        .await;
    assert_eq!(p.status, 403);
    // An opaque origin (a sandboxed frame, a data: page) is not ours either.
    let p = b
        .post_with(
            "/console/mode",
            &[("csrf", &csrf), ("action", "hold"), ("reason", "x")],
            &[("Origin", "null")],
        )
        .await;
    assert_eq!(p.status, 403);
    // A token from another session does not work here.
    let mut other = c.browser();
    let other_csrf = other.login("suzuki").await.csrf();
    assert_ne!(other_csrf, csrf);
    let p = b
        .post(
            "/console/mode",
            &[("csrf", &other_csrf), ("action", "hold"), ("reason", "x")],
        )
        .await;
    assert_eq!(p.status, 403);

    assert!(!c.mode().manual_hold);
    assert!(!c.audit().iter().any(|(_, a, _)| a.starts_with("mode.")));

    // The login form has its own token, bound to a cookie.
    let mut fresh = c.browser();
    let p = fresh
        .post(
            "/console/login",
            &[("name", "suzuki"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(!fresh.cookies.contains_key("sonae_session"));
}

#[tokio::test]
async fn hold_and_release_of_disaster_mode_are_audited_and_need_an_approver() {
    let c = Console::start(None, None).await;
    c.add_user("tanaka", Role::Operator);
    c.add_user("suzuki", Role::Approver);

    // An operator may not hold disaster mode.
    let mut op = c.browser();
    let csrf = op.login("tanaka").await.csrf();
    let p = op
        .post(
            "/console/mode",
            &[
                ("csrf", &csrf),
                ("action", "hold"),
                ("reason", "大雨のため"),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(p.body.contains("承認者"));
    assert!(!c.mode().manual_hold);

    let mut ap = c.browser();
    let dash = ap.login("suzuki").await;
    assert!(dash.body.contains("災害モードを手動で保持する"));
    let csrf = dash.csrf();
    // A reason is required.
    let p = ap
        .post(
            "/console/mode",
            &[("csrf", &csrf), ("action", "hold"), ("reason", "  ")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(!c.mode().manual_hold);

    // So is the explicit confirmation that every resident's menu will switch.
    let p = ap
        .post(
            "/console/mode",
            &[
                ("csrf", &csrf),
                ("action", "hold"),
                ("reason", "台風第10号の接近に備えて"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("確認"));
    assert!(!c.mode().manual_hold);

    let p = ap
        .post(
            "/console/mode",
            &[
                ("csrf", &csrf),
                ("action", "hold"),
                ("reason", "台風第10号の接近に備えて"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/console/?msg=held"));
    let m = c.mode();
    assert!(m.manual_hold);
    assert_eq!(m.effective(), sonae::mode::Mode::Disaster);
    assert_eq!(m.hold_by.as_deref(), Some("suzuki"));

    let dash = ap.get("/console/?msg=held").await;
    assert!(dash.body.contains("災害モードを手動で保持しました"));
    assert!(dash.body.contains("mode-disaster"));
    assert!(dash.body.contains("手動保持を解除する"));

    // Holding twice changes nothing and writes no second audit row.
    let p = ap
        .post(
            "/console/mode",
            &[
                ("csrf", &csrf),
                ("action", "hold"),
                ("reason", "再送"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(p.location.as_deref(), Some("/console/?msg=unchanged"));

    let p = ap
        .post(
            "/console/mode",
            &[
                ("csrf", &csrf),
                ("action", "release"),
                ("reason", "警報解除を確認"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(!c.mode().manual_hold);

    let modes: Vec<_> = c
        .audit()
        .into_iter()
        .filter(|(_, a, _)| a.starts_with("mode."))
        .collect();
    assert_eq!(modes.len(), 2, "{modes:?}");
    assert_eq!(modes[0].0, "suzuki");
    assert_eq!(modes[0].1, "mode.hold");
    assert!(modes[0].2.contains("台風第10号の接近に備えて"));
    assert_eq!(modes[1].1, "mode.release");
    assert!(modes[1].2.contains("警報解除を確認"));

    // The audit page shows them, newest first.
    let audit = ap.get("/console/audit").await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let rel = audit.body.find("mode.release").unwrap();
    let hold = audit.body.find("mode.hold").unwrap();
    assert!(rel < hold);
    assert!(audit.body.contains("異常はありません"), "{}", audit.body);

    // Someone edits the hold's reason directly in the database: the audit page says so, and the problem
    // list gets it once.
    let db = rusqlite::Connection::open(c.store.path()).unwrap();
    db.execute(
        "UPDATE audit_log SET detail = replace(detail, '台風第10号', '訓練') WHERE action = 'mode.hold'",
        [],
    )
    .unwrap();
    for _ in 0..2 {
        let audit = ap.get("/console/audit").await;
        assert!(
            audit.body.contains("記録時の内容と一致しません"),
            "{}",
            audit.body
        );
    }
    let n: i64 = c
        .store
        .read_blocking(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM problems WHERE source = 'console.audit'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn shelters_open_and_problems_resolve_from_the_console_with_audit() {
    let c = Console::start(None, None).await;
    c.add_user("tanaka", Role::Operator);
    c.store
        .record_problem(
            "jma.feed",
            "気象庁フィードの取得に失敗しています".into(),
            Some("HTTP 500".into()),
        )
        .await;
    let mut b = c.browser();
    let dash = b.login("tanaka").await;
    assert!(dash.body.contains("未対応の問題が <strong>1</strong> 件"));
    let csrf = dash.csrf();

    let page = b.get("/console/shelters").await;
    assert!(page.body.contains("第一小学校"));
    let p = b
        .post(
            "/console/shelters/status",
            &[("csrf", &csrf), ("id", "06201-001"), ("status", "open")],
        )
        .await;
    assert_eq!(p.status, 303);
    let rows = c.shelters.snapshot();
    assert_eq!(rows[0].status, ShelterStatus::Open);
    let p = b
        .post(
            "/console/shelters/status",
            &[("csrf", &csrf), ("id", "06201-001"), ("status", "burning")],
        )
        .await;
    assert_eq!(p.status, 400);
    let p = b
        .post(
            "/console/shelters/status",
            &[("csrf", &csrf), ("id", "nope"), ("status", "open")],
        )
        .await;
    assert_eq!(p.status, 404);

    let problems = b.get("/console/problems").await;
    assert!(problems
        .body
        .contains("気象庁フィードの取得に失敗しています"));
    let id: i64 = c
        .store
        .read_blocking(|conn| Ok(conn.query_row("SELECT id FROM problems", [], |r| r.get(0))?))
        .unwrap();
    let p = b
        .post(
            "/console/problems/resolve",
            &[("csrf", &csrf), ("id", &id.to_string())],
        )
        .await;
    assert_eq!(p.status, 303);
    let problems = b.get("/console/problems").await;
    assert!(problems.body.contains("未対応の問題はありません"));

    // Bulk per hazard: every flood shelter in the district closes; bad forms change nothing.
    let page = b.get("/console/shelters").await;
    assert!(page.body.contains("まとめて変更") && page.body.contains("市内全域"));
    for (need, area, status, code) in [
        ("meteor", "all", "closed", 400),
        ("flood", "district:nowhere", "closed", 404),
        ("flood", "all", "burning", 400),
        ("flood", "district:tobu", "closed", 400), // no flood shelter there
    ] {
        let form = [
            ("csrf", csrf.as_str()),
            ("need", need),
            ("area", area),
            ("status", status),
        ];
        let p = b.post("/console/shelters/bulk", &form).await;
        assert_eq!(p.status, code, "{need} {area} {status}: {}", p.body);
        assert!(p.body.contains("何も変更していません"), "{}", p.body);
    }
    assert_eq!(c.shelters.snapshot()[0].status, ShelterStatus::Open);
    let form = [
        ("csrf", csrf.as_str()),
        ("need", "flood"),
        ("area", "district:chuo"),
        ("status", "closed"),
    ];
    let p = b.post("/console/shelters/bulk", &form).await;
    assert_eq!(p.status, 303);
    let rows = c.shelters.snapshot();
    assert_eq!(rows[0].status, ShelterStatus::Closed);
    assert_eq!(
        rows[1].status,
        ShelterStatus::Open,
        "an earthquake site stays"
    );

    // The shelter source audits its own change (the in-memory board here audits nothing); the console does
    // not write a second row.
    let actions: Vec<String> = c.audit().into_iter().map(|(_, a, _)| a).collect();
    assert!(
        !actions.contains(&"shelter.status".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"problem.resolve".to_string()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn https_public_url_gives_host_prefixed_secure_cookies() {
    let c = Console::start(Some("https://bousai.example.lg.jp"), None).await;
    c.add_user("tanaka", Role::Operator);
    let mut b = c.browser();
    let form = b.get("/console/login").await;
    let login_cookie = form
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-sonae_login="))
        .unwrap();
    assert!(
        login_cookie.contains("; Secure") && login_cookie.contains("Path=/"),
        "{login_cookie}"
    );
    let csrf = form.csrf();
    let p = b
        .post(
            "/console/login",
            &[("csrf", &csrf), ("name", "tanaka"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, 303);
    let s = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-sonae_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(s.contains(attr), "{s} lacks {attr}");
    }
    assert!(!s.contains("Domain"), "{s}");
}

#[tokio::test]
async fn api_status_needs_the_configured_bearer_token() {
    let none = Console::start(None, None).await;
    let r = reqwest::get(format!("http://{}/api/status", none.admin))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "no token configured: the endpoint does not exist"
    );

    let c = Console::start(None, Some("monitoring-token-0123456789")).await;
    let client = reqwest::Client::new();
    // Only on the admin listener: the public one (behind the reverse proxy) does not know it.
    let public = client
        .get(format!("http://{}/api/status", c.addr))
        .bearer_auth("monitoring-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let url = format!("http://{}/api/status", c.admin);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    for wrong in [
        "Bearer monitoring-token-012345678",
        "Bearer x",
        "monitoring-token-0123456789",
    ] {
        let r = client
            .get(&url)
            .header("Authorization", wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{wrong}");
    }
    let r = client
        .get(&url)
        .bearer_auth("monitoring-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["mode"]["mode"], "normal");
    assert_eq!(v["mode"]["manual_hold"], false);
    assert_eq!(v["warnings"][0]["code"], "0620100");
    assert_eq!(v["warnings"][0]["warnings"][0]["kind_code"], "33");
    assert_eq!(v["deliveries"][0]["alert_id"], "alert-7");
    assert_eq!(v["deliveries"][0]["planned"], 20_000);
    assert_eq!(v["deliveries"][0]["pending"], 7_497);
    assert_eq!(v["shelters"]["open"], 1);
    assert_eq!(v["shelters"]["closed"], 1);
    assert_eq!(v["open_problems"], 0);
    assert!(v["health"]["status"].is_string());
    assert!(v.get("audit_head").is_some());

    // The JSON follows the stored mode.
    c.store
        .write_blocking(|tx| sonae::mode::set_manual_hold(tx, true, "suzuki", "test", Utc::now()))
        .unwrap();
    let v: serde_json::Value = client
        .get(&url)
        .bearer_auth("monitoring-token-0123456789")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["mode"]["mode"], "disaster");
    assert_eq!(v["mode"]["hold_by"], "suzuki");
}

fn user_cmd(config: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(SONAE)
        .arg("user")
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command refused before it reads its password (a bad name) exits without reading stdin.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.unwrap(),
    }
    child.wait_with_output().unwrap()
}

#[test]
fn user_commands_add_list_and_disable_accounts_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "127.0.0.1:1".parse().unwrap(), "");

    // Commands never create or migrate the database: that is the daemon's or `sonae db migrate`'s job.
    let out = user_cmd(&config, &["list"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run `sonae db migrate`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("sonae.db").exists());
    let out = Command::new(SONAE)
        .args(["db", "migrate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created; schema version"));

    let out = user_cmd(
        &config,
        &["add", "tanaka", "--role", "approver"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = user_cmd(&config, &["add", "tanaka"], &format!("{PASSWORD}\n"));
    assert_eq!(out.status.code(), Some(2), "duplicate name");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = user_cmd(&config, &["add", "short"], "abc\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shorter than 12"));
    let out = user_cmd(&config, &["add", "bad name"], &format!("{PASSWORD}\n"));
    assert_eq!(out.status.code(), Some(2));
    let out = user_cmd(&config, &["add", "x", "--role", "boss"], "");
    assert_eq!(out.status.code(), Some(2), "unknown role is a usage error");

    let out = user_cmd(&config, &["list"], "");
    assert!(out.status.success());
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("tanaka") && l.contains("approver") && l.contains("active")),
        "{listed}"
    );
    assert!(!listed.contains("short"));

    let store = Store::open(&dir.path().join("sonae.db")).unwrap();
    let hash: String = store
        .read_blocking(|c| {
            Ok(c.query_row(
                "SELECT password_hash FROM console_users WHERE name='tanaka'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(console::users::verify_password(PASSWORD, &hash));
    drop(store);

    let out = user_cmd(&config, &["disable", "tanaka"], "");
    assert!(out.status.success());
    let out = user_cmd(&config, &["disable", "nobody"], "");
    assert_eq!(out.status.code(), Some(2));
    let listed = String::from_utf8(user_cmd(&config, &["list"], "").stdout).unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("tanaka") && l.contains("disabled")),
        "{listed}"
    );
}

#[test]
fn the_daemon_serves_the_login_page_that_headless_chromium_renders() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(dir.path(), addr, "");
    let daemon = Daemon::start(&config, addr);
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--disable-quic",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(daemon.url("/console/login"))
        .output()
        .expect("running chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dom.contains("<h1>運用コンソールへのログイン</h1>"), "{dom}");
    assert!(dom.contains("name=\"password\""), "{dom}");
    assert!(dom.contains("action=\"/console/login\""), "{dom}");
    // The stylesheet and script load under the CSP (same origin, no inline code).
    let (code, css) =
        crate::helpers::reqwest::get_full(&daemon.url("/console/static/console.css")).unwrap();
    assert_eq!(code, 200);
    assert!(css.contains(".mode-disaster"));
    let (code, _) =
        crate::helpers::reqwest::get_full(&daemon.url("/console/static/../sonae.toml")).unwrap();
    assert_eq!(code, 404);
}

#[test]
fn every_user_command_has_help() {
    for args in [
        vec!["user", "--help"],
        vec!["user", "add", "--help"],
        vec!["user", "list", "--help"],
        vec!["user", "disable", "--help"],
    ] {
        let out = Command::new(SONAE).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage:"), "{args:?}");
        if args[1] == "add" {
            assert!(
                text.contains("--role") && text.contains("approver"),
                "{text}"
            );
        }
    }
}

#[test]
fn a_city_edits_a_console_template_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("tpl");
    std::fs::create_dir(&tpl).unwrap();
    let login = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/console/login.html"
    ))
    .unwrap()
    .replace(
        "防災担当職員専用の画面です。",
        "山形市 防災安全課 専用の画面です。",
    );
    std::fs::write(tpl.join("login.html"), login).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let extra = format!("\n[console]\ntemplates_dir = \"{}\"\n", tpl.display());
    let config = write_config(dir.path(), addr, &extra);
    let daemon = Daemon::start(&config, addr);
    let (code, body) = crate::helpers::reqwest::get_full(&daemon.url("/console/login")).unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("山形市 防災安全課 専用の画面です。"),
        "{body}"
    );
    // Files the city did not copy come from the binary.
    let (code, css) =
        crate::helpers::reqwest::get_full(&daemon.url("/console/static/console.css")).unwrap();
    assert_eq!(code, 200);
    assert!(css.contains(".mode-banner"));
}

/// A Sonae JSON position publish (topic, payload) for the plow pipeline.
fn plow_fix(
    vehicle: &str,
    lat: f64,
    lon: f64,
    at: DateTime<Utc>,
    blade: &str,
) -> (String, bytes::Bytes) {
    (
        format!("sonae/plows/{vehicle}/position"),
        bytes::Bytes::from(format!(
            r#"{{"vehicle":"{vehicle}","lat":{lat},"lon":{lon},"ts":"{}","speed_kmh":20,"heading":259,"blade":"{blade}"}}"#,
            at.to_rfc3339()
        )),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plow_dispatcher_view_needs_a_session_and_an_operator_starts_and_ends_storms_with_audit(
) {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let c = Console::start_with(None, None, |cfg| {
        cfg.plow.enabled = true;
        cfg.plow.service_area = [141.33, 43.045, 141.38, 43.075];
        cfg.plow.roads_file =
            Some(format!("{manifest}/tests/fixtures/plow/sapporo-odori-excerpt.geojson").into());
        cfg.plow.districts_file =
            Some(format!("{manifest}/deploy/demo/sapporo-wards.geojson").into());
    })
    .await;
    c.add_user("sato", Role::Operator);
    let storm_audits = |c: &Console| {
        c.audit()
            .into_iter()
            .filter(|(_, a, _)| a.starts_with("plow.storm"))
            .collect::<Vec<_>>()
    };

    // Without a session: the page sends to the login, the JSON and the form are refused, nothing changes.
    let mut anon = c.browser();
    let p = anon.get("/console/plows").await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/console/login"));
    let p = anon.get("/api/plows/dispatch").await;
    assert_eq!(p.status, 401, "{}", p.body);
    let p = anon
        .post(
            "/console/plows/storm",
            &[("action", "start"), ("note", "x")],
        )
        .await;
    assert_eq!(p.status, 401);
    let p = anon.post("/api/plows/storm", &[("action", "start")]).await;
    assert!(
        p.status == 404 || p.status == 405,
        "the unauthenticated storm endpoint is gone: {}",
        p.status
    );
    let p = anon.get("/plows/dispatch").await;
    assert_eq!(p.status, 308);
    assert_eq!(p.location.as_deref(), Some("/console/plows"));
    assert!(c.plow.storm.lock().unwrap().is_none());
    assert!(storm_audits(&c).is_empty());

    // A vehicle silent for ten minutes (blade up), through the real ingest pipeline.
    let mut pipe = sonae::plow::ingest::Pipeline::new(
        c.plow.clone(),
        c.store.clone(),
        Arc::new(sonae::metrics::Metrics::new()),
    )
    .await
    .unwrap();
    let now = Utc::now();
    pipe.handle(
        &[plow_fix(
            "OLD-7",
            43.0570,
            141.3500,
            now - Duration::minutes(10),
            "up",
        )],
        now.timestamp_millis(),
    )
    .await
    .unwrap();

    let mut b = c.browser();
    let dash = b.login("sato").await;
    assert!(
        dash.body.contains(r#"<a href="/console/plows">除雪</a>"#),
        "除雪 is in the console nav"
    );
    let page = b.get("/console/plows").await;
    assert_eq!(page.status, 200);
    for text in [
        "除雪車の配車状況",
        r#"href="/console/plows" aria-current="page""#,
        "現在、降雪対応は開始されていません。",
        r#"data-vehicle="OLD-7" data-state="stale""#,
        "⚠ 更新停止",
        "10分前",
        "上げ",
        "車両が 1 台あります",
        r#"data-district="01101""#,
        "中央区",
        "降雪対応を開始する",
        "⚠ 位置情報の受信サーバー（MQTT）に接続できていません",
    ] {
        assert!(page.body.contains(text), "the page lacks {text}");
    }
    let csrf = page.csrf();

    // A forged token is refused and changes nothing.
    let p = b
        .post(
            "/console/plows/storm",
            &[("csrf", "forged"), ("action", "start")],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(c.plow.storm.lock().unwrap().is_none());

    // Start: audited with the operator's name, and coverage counts from now.
    let p = b
        .post(
            "/console/plows/storm",
            &[("csrf", &csrf), ("action", "start"), ("note", "大雪警報")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        p.location.as_deref(),
        Some("/console/plows?msg=storm_started")
    );
    let audits = storm_audits(&c);
    assert_eq!(audits.len(), 1);
    assert_eq!(
        (audits[0].0.as_str(), audits[0].1.as_str()),
        ("sato", "plow.storm.start")
    );
    assert!(audits[0].2.contains("大雪警報"), "{}", audits[0].2);

    // D-1 drives west along 大通 with the blade down.
    let base = Utc::now();
    let fixes: Vec<_> = (0..12)
        .map(|i| {
            plow_fix(
                "D-1",
                43.06057 - 0.0000215 * i as f64,
                141.3553 - 0.00016 * i as f64,
                base + Duration::seconds(2 * i),
                "down",
            )
        })
        .collect();
    pipe.handle(&fixes, base.timestamp_millis() + 30_000)
        .await
        .unwrap();

    let page = b.get("/console/plows?msg=storm_started").await;
    for text in [
        "降雪対応を開始しました。",
        "降雪対応中：",
        "（大雪警報）",
        r#"data-vehicle="D-1" data-state="active""#,
        "下げ（作業中）",
        r#"<td class="num">20</td>"#,
        "降雪対応を終了する",
    ] {
        assert!(page.body.contains(text), "the page lacks {text}");
    }
    let p = b.get("/api/plows/dispatch").await;
    assert_eq!(p.status, 200);
    let d: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    assert_eq!(d["vehicles"].as_array().unwrap().len(), 2);
    assert_eq!(d["stale_count"], 1);
    let chuo = d["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "中央区")
        .cloned()
        .unwrap();
    assert!(chuo["plowed_km"].as_f64().unwrap() > 0.1, "{chuo}");
    assert!(
        page.body
            .contains(&format!("{:.1}%", chuo["share"].as_f64().unwrap() * 100.0)),
        "the page shows 中央区's share {chuo}"
    );

    // A second start changes nothing; end is audited too.
    let p = b
        .post(
            "/console/plows/storm",
            &[("csrf", &csrf), ("action", "start")],
        )
        .await;
    assert_eq!(p.location.as_deref(), Some("/console/plows?msg=unchanged"));
    let p = b
        .post(
            "/console/plows/storm",
            &[("csrf", &csrf), ("action", "end")],
        )
        .await;
    assert_eq!(
        p.location.as_deref(),
        Some("/console/plows?msg=storm_ended")
    );
    assert!(c.plow.storm.lock().unwrap().is_none());
    let audits = storm_audits(&c);
    assert_eq!(audits.len(), 2);
    assert_eq!(
        (audits[1].0.as_str(), audits[1].1.as_str()),
        ("sato", "plow.storm.end")
    );
}

/// The console with 札幌市's demo districts loaded (for the evacuation-information forms).
async fn console_with_districts() -> Console {
    Console::start_with(None, None, |c| {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        c.place.enabled = true;
        c.place.districts = repo.join("deploy/demo/sapporo-districts.geojson");
        c.place.shelters =
            vec![repo.join("deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv")];
    })
    .await
}

fn manual_alerts(c: &Console) -> Vec<(i64, String)> {
    c.store
        .read_blocking(|conn| {
            let mut s = conn.prepare("SELECT id, status FROM manual_alerts ORDER BY id")?;
            let v = s
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_evacuation_forms_get_a_japanese_message_and_change_nothing() {
    let c = console_with_districts().await;
    c.add_user("sato", Role::Drafter);
    c.add_user("suzuki", Role::Approver);
    c.add_user("kato", Role::Viewer);
    let district = "01101-0001";

    // A viewer may not draft.
    let mut v = c.browser();
    let csrf = v.login("kato").await.csrf();
    let p = v
        .post(
            "/console/alerts",
            &[
                ("csrf", &csrf),
                ("level", "4"),
                ("hazard", "flood"),
                ("district", district),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(p.body.contains("「起案者」以上の権限"), "{}", p.body);

    let mut b = c.browser();
    let csrf = b.login("sato").await.csrf();
    for (form, expect) in [
        (
            vec![
                ("level", "4"),
                ("hazard", "flood"),
                ("district", "99999-9999"),
            ],
            "この市の地区にありません",
        ),
        (
            vec![
                ("level", "4"),
                ("hazard", "flood"),
                ("ward", "存在しない区"),
            ],
            "この市の区にありません",
        ),
        (vec![("level", "4"), ("hazard", "flood")], "地区を1つ以上"),
        (
            vec![("level", "7"), ("hazard", "flood"), ("district", district)],
            "避難情報の種類",
        ),
        (
            vec![
                ("level", "4"),
                ("hazard", "volcano"),
                ("district", district),
            ],
            "対象の災害",
        ),
    ] {
        let mut f = vec![("csrf", csrf.as_str())];
        f.extend(form);
        let p = b.post("/console/alerts", &f).await;
        assert_eq!(p.status, 400, "{f:?}");
        assert!(p.body.contains(expect), "{f:?}: {}", p.body);
    }
    // An expired or forged CSRF token.
    let p = b
        .post(
            "/console/alerts",
            &[
                ("csrf", "stale"),
                ("level", "4"),
                ("hazard", "flood"),
                ("district", district),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(manual_alerts(&c).is_empty(), "nothing stored half-way");

    // A good draft, submitted.
    let p = b
        .post(
            "/console/alerts",
            &[
                ("csrf", &csrf),
                ("level", "4"),
                ("hazard", "flood"),
                ("district", district),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let id = manual_alerts(&c)[0].0;
    // Another drafter cannot submit or withdraw someone else's draft.
    c.add_user("ito", Role::Drafter);
    let mut o = c.browser();
    let ocsrf = o.login("ito").await.csrf();
    for action in ["submit", "cancel"] {
        let p = o
            .post(
                &format!("/console/alerts/{id}/{action}"),
                &[("csrf", &ocsrf)],
            )
            .await;
        assert_eq!(p.status, 403, "{action}");
        assert!(p.body.contains("他の職員が作成した"), "{}", p.body);
    }
    assert_eq!(manual_alerts(&c)[0].1, "draft");
    let p = b
        .post(&format!("/console/alerts/{id}/submit"), &[("csrf", &csrf)])
        .await;
    assert_eq!(p.status, 303);
    // The drafter role cannot approve at all; an id that does not exist is not found.
    let p = b
        .post(
            &format!("/console/alerts/{id}/approve"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, 403);
    let mut a = c.browser();
    let acsrf = a.login("suzuki").await.csrf();
    let p = a
        .post(
            "/console/alerts/9999/approve",
            &[("csrf", &acsrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, 404);
    assert!(p.body.contains("見つかりません"));
    // Without the confirmation nothing happens; with it, the second person approves; a replay is refused.
    let p = a
        .post(
            &format!("/console/alerts/{id}/approve"),
            &[("csrf", &acsrf)],
        )
        .await;
    assert_eq!(p.status, 400);
    assert_eq!(manual_alerts(&c)[0].1, "submitted");
    let p = a
        .post(
            &format!("/console/alerts/{id}/approve"),
            &[("csrf", &acsrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, 303);
    let p = a
        .post(
            &format!("/console/alerts/{id}/approve"),
            &[("csrf", &acsrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, 409);
    assert!(p.body.contains("承認済み"), "{}", p.body);
    let approvals = c
        .audit()
        .iter()
        .filter(|(_, act, _)| act == "alert.approve")
        .count();
    assert_eq!(approvals, 1);
}
