//! Warning step flows end to end through a local JMA feed server (issue 5, item 11): escalation, lift,
//! correction (訂正) and cancellation (取消); 訓練 to the drill audience only and 試験 to nobody; the same telegram
//! in the regular, extra and `_l` feeds around a daemon restart giving one alert; the legacy twins of the
//! transition period (VPWW54, VXWW50) adding no message; and after downtime, only what is still in force
//! announced, once (item 4).
//!
//! Each flow runs the daemon (the in-process `Application` on a random port, or the real binary for the restart)
//! against the LINE stand-in and [`JmaFeed`], a JMA-style feed server in the test process whose entries the test
//! publishes step by step. Telegrams are the constructed documents in `tests/fixtures/flows/` (see the README
//! there), served with every timestamp moved to yesterday (JST). Every step waits (event-driven, generous
//! deadline) until the outbox has the expected alerts and has drained, then asserts what each resident received
//! at the stand-in (altText, count, nobody else), the outbox rows and the mode.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::InProcess;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{FixedOffset, TimeZone, Utc};
use sonae::ids::LineUserId;
use sonae::line::sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use sonae::store::Store;

// The CAP feed's end-to-end test reuses this file's feed server and city (a child module sees them).
#[path = "cap.rs"]
mod cap;

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn fixture(name: &str) -> PathBuf {
    repo("tests/fixtures/flows").join(name)
}

fn user(tag: u8, n: u32) -> String {
    format!("U{tag:02x}{n:030x}")
}

// ------------------------------------------------------------------------------------------ the feed server

/// One telegram the feed server lists: its URL file name, the feeds listing it, and its (time-shifted) bytes.
struct Listed {
    name: String,
    feeds: Vec<String>,
    updated: String,
    title: String,
    body: String,
}

#[derive(Default)]
struct FeedState {
    listed: Vec<Listed>,
    /// Requests per path (feeds and telegrams), for "downloaded once" and "polled after the restart".
    hits: HashMap<String, usize>,
}

/// A JMA-style feed server: `/developer/xml/feed/{regular,extra}{,_l}.xml` list what the test published, newest
/// first; `/developer/xml/data/{name}` serves the telegram. No `Last-Modified`, so every poll reads the feed.
#[derive(Clone)]
struct JmaFeed {
    addr: SocketAddr,
    state: Arc<Mutex<FeedState>>,
}

/// The fixtures are dated 2026-09-12 (JST); served copies are moved to yesterday, whole days only, so every
/// time of day and the order of the telegrams are kept and the daemon's age check (set to 2 days) accepts them.
fn to_yesterday(xml: &str) -> String {
    let jst = FixedOffset::east_opt(9 * 3600).unwrap();
    let base = jst.with_ymd_and_hms(2026, 9, 12, 0, 0, 0).unwrap();
    let yesterday = Utc::now().with_timezone(&jst).date_naive() - chrono::Days::new(1);
    let start = jst
        .from_local_datetime(&yesterday.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let map = sonae::jma::replay::TimeMap {
        base,
        start,
        speed: 1.0,
    };
    sonae::jma::replay::shift_times(xml, &map)
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let a = s.find(open).map(|i| i + open.len()).unwrap_or(0);
    let b = s[a..].find(close).map(|i| i + a).unwrap_or(a);
    &s[a..b]
}

impl JmaFeed {
    async fn start() -> JmaFeed {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let feed = JmaFeed {
            addr,
            state: Arc::new(Mutex::new(FeedState::default())),
        };
        let me = feed.clone();
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let me = me.clone();
            async move { me.serve(uri.path()) }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        feed
    }

    /// The URL of a feed (`"extra.xml"`, `"regular_l.xml"`, …) for `[jma] feeds`.
    fn url(&self, feed: &str) -> String {
        format!("http://{}/developer/xml/feed/{feed}", self.addr)
    }

    /// Lists the fixture `file` under its own name in `feeds`.
    fn publish(&self, file: &str, feeds: &[&str]) {
        self.publish_as(file, file, feeds);
    }

    /// Lists the fixture `file` under the URL file name `name` in `feeds` (adding feeds if already listed).
    fn publish_as(&self, file: &str, name: &str, feeds: &[&str]) {
        let raw = std::fs::read_to_string(fixture(file)).unwrap();
        let body = to_yesterday(&raw);
        let mut st = self.state.lock().unwrap();
        if let Some(l) = st.listed.iter_mut().find(|l| l.name == name) {
            for f in feeds {
                if !l.feeds.iter().any(|x| x == f) {
                    l.feeds.push(f.to_string());
                }
            }
            return;
        }
        st.listed.push(Listed {
            name: name.to_string(),
            feeds: feeds.iter().map(|f| f.to_string()).collect(),
            updated: between(&body, "<DateTime>", "</DateTime>").to_string(),
            title: between(&body, "<Title>", "</Title>").to_string(),
            body,
        });
    }

    fn hits(&self, path: &str) -> usize {
        let st = self.state.lock().unwrap();
        st.hits.get(path).copied().unwrap_or(0)
    }

    fn serve(&self, path: &str) -> Response {
        let mut st = self.state.lock().unwrap();
        *st.hits.entry(path.to_string()).or_insert(0) += 1;
        if let Some(feed) = path.strip_prefix("/developer/xml/feed/") {
            let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let self_url = format!("http://{}{path}", self.addr);
            let mut xml = format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" lang=\"ja\">\n\
                 <title>高頻度（随時）</title><subtitle>JMAXML publishing feed</subtitle>\n\
                 <updated>{now}</updated><id>{self_url}</id>\n<link rel=\"self\" href=\"{self_url}\"/>\n"
            );
            for l in st
                .listed
                .iter()
                .rev()
                .filter(|l| l.feeds.iter().any(|f| f == feed))
            {
                let u = format!("http://{}/developer/xml/data/{}", self.addr, l.name);
                xml.push_str(&format!(
                    "<entry><title>{}</title><id>{u}</id><updated>{}</updated>\
                     <author><name>札幌管区気象台</name></author><link type=\"application/xml\" href=\"{u}\"/>\
                     <content type=\"text\">【石狩・空知・後志地方気象警報・注意報】</content></entry>\n",
                    l.title, l.updated
                ));
            }
            xml.push_str("</feed>\n");
            return ([("content-type", "application/atom+xml")], xml).into_response();
        }
        if let Some(name) = path.strip_prefix("/developer/xml/data/") {
            if let Some(l) = st.listed.iter().find(|l| l.name == name) {
                return ([("content-type", "application/xml")], l.body.clone()).into_response();
            }
        }
        StatusCode::NOT_FOUND.into_response()
    }
}

// ------------------------------------------------------------------------------------------ the city

/// The districts of `tests/fixtures/flows/districts.geojson`: three 札幌市 town districts and one 江別市 district.
const SAPPORO: [&str; 3] = ["01101-0001", "01102-0001", "01103-0001"];
const EBETSU: &str = "ebetsu-test-1";

/// Who lives where: 札幌市 residents with and without the レベル3 opt-in, 江別市 residents (never affected by the
/// 札幌市 warnings), and staff in the drill audience who are not residents.
struct People {
    opted: Vec<String>,
    others: Vec<String>,
    ebetsu: Vec<String>,
    staff: Vec<String>,
}

impl People {
    fn new() -> People {
        let mut p = People {
            opted: Vec::new(),
            others: Vec::new(),
            ebetsu: Vec::new(),
            staff: vec![user(0xf0, 1), user(0xf0, 2)],
        };
        for (i, _) in SAPPORO.iter().enumerate() {
            for n in 0..4u32 {
                let id = user(i as u8 + 1, n);
                if n % 2 == 0 {
                    p.opted.push(id);
                } else {
                    p.others.push(id);
                }
            }
        }
        p.ebetsu = (0..3u32).map(|n| user(0xeb, n)).collect();
        p
    }

    fn sapporo(&self) -> Vec<String> {
        self.opted.iter().chain(&self.others).cloned().collect()
    }

    fn everyone(&self) -> Vec<String> {
        self.sapporo()
            .into_iter()
            .chain(self.ebetsu.iter().cloned())
            .chain(self.staff.iter().cloned())
            .collect()
    }

    /// Registers the residents in the store (district from the user id's tag; 江別市 user 0 opted in too) and
    /// makes everyone a friend of the account at the stand-in.
    async fn register(&self, store: &Store, sandbox: &SandboxHandle) {
        let (opted, others, ebetsu) =
            (self.opted.clone(), self.others.clone(), self.ebetsu.clone());
        store
            .write(move |tx| {
                for (u, on) in opted
                    .iter()
                    .map(|u| (u, true))
                    .chain(others.iter().map(|u| (u, false)))
                {
                    let tag = usize::from_str_radix(&u[1..3], 16)?;
                    let id = LineUserId::new(u.clone());
                    sonae::resident::follow_tx(tx, &id)?;
                    sonae::resident::set_district_tx(tx, &id, SAPPORO[tag - 1])?;
                    sonae::resident::set_opt_level3_tx(tx, &id, on)?;
                }
                for (i, u) in ebetsu.iter().enumerate() {
                    let id = LineUserId::new(u.clone());
                    sonae::resident::follow_tx(tx, &id)?;
                    sonae::resident::set_district_tx(tx, &id, EBETSU)?;
                    sonae::resident::set_opt_level3_tx(tx, &id, i == 0)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let all = self.everyone();
        sandbox.with_state(|s| {
            for u in &all {
                s.follow(u, None);
            }
        });
    }
}

fn sandbox_config() -> SandboxConfig {
    SandboxConfig {
        channel_secret: "test-channel-secret".into(),
        access_token: "test-access-token".into(),
        ..Default::default()
    }
}

/// The daemon in process: the whole `Application` (feed poller, pipeline, disaster runtime, outbox sender)
/// on a random port and its own SQLite file.
struct App {
    store: Store,
    daemon: InProcess,
}

async fn start_app(
    dir: &Path,
    sandbox: &SandboxHandle,
    feed: &JmaFeed,
    feeds: &[&str],
    people: &People,
) -> App {
    start_app_with(dir, sandbox, feed, feeds, people, |_| {}).await
}

/// [`start_app`] with a last change to the config.
async fn start_app_with(
    dir: &Path,
    sandbox: &SandboxHandle,
    feed: &JmaFeed,
    feeds: &[&str],
    people: &People,
    tweak: impl FnOnce(&mut sonae::config::Config),
) -> App {
    let mut config = crate::helpers::test_config(&dir.join("sonae.db"));
    config.place.enabled = true;
    config.jma.feeds = feeds.iter().map(|f| feed.url(f)).collect();
    // One poll a second: below the 10 s the config file allows (politeness to JMA), fine for a local feed, and
    // it keeps each step of a flow to about a second.
    config.jma.poll_interval_secs = 1;
    config.line.api_base = sandbox.url();
    config.line.api_data_base = sandbox.url();
    config.place.districts = fixture("districts.geojson");
    config.place.shelters = vec![repo(
        "deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv",
    )];
    config.disaster.max_report_age_secs = 2 * 86400;
    config.disaster.quiet_period_secs = 2;
    config.disaster.drill_audience = people.staff.clone();
    tweak(&mut config);
    let app =
        sonae::app::Application::build(config, sonae::app::sandbox_secrets(&sandbox_config()))
            .await
            .unwrap();
    let store = app.context().infra.store.clone();
    people.register(&store, sandbox).await;
    App {
        store,
        daemon: InProcess::run(app),
    }
}

impl App {
    async fn stop(self) {
        self.daemon.stop().await;
    }
}

// ------------------------------------------------------------------------------------------ observations

/// Waits until `check` returns Ok (polled every 50 ms), or fails the test with its last complaint after 30 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = match check().await {
            Ok(()) => return,
            Err(e) => e,
        };
        assert!(Instant::now() < deadline, "{what}: {last}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One outbox alert.
#[derive(Clone, Debug)]
struct Alert {
    source: String,
    kind: String,
    audience: String,
    planned: i64,
}

/// (alerts in id order, batches not yet accepted).
fn outbox(c: &rusqlite::Connection) -> anyhow::Result<(Vec<Alert>, i64)> {
    let mut st =
        c.prepare("SELECT source, kind, detail, planned FROM delivery_alerts ORDER BY id")?;
    let alerts = st
        .query_map([], |r| {
            let detail: String = r.get(2)?;
            let detail: serde_json::Value = serde_json::from_str(&detail).unwrap_or_default();
            Ok(Alert {
                source: r.get(0)?,
                kind: r.get(1)?,
                audience: detail["audience"].as_str().unwrap_or("?").to_string(),
                planned: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let open: i64 = c.query_row(
        "SELECT count(*) FROM delivery_batches WHERE status != 'accepted'",
        [],
        |r| r.get(0),
    )?;
    Ok((alerts, open))
}

/// Waits until the outbox holds exactly `n` alerts, all of their batches accepted by the stand-in; returns them.
async fn settled(store: &Store, n: usize) -> Vec<Alert> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (alerts, open) = store.read(outbox).await.unwrap();
        assert!(
            alerts.len() <= n,
            "more alerts than the {n} expected: {alerts:#?}"
        );
        if alerts.len() == n && open == 0 {
            return alerts;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for {n} alerts sent: {} alerts, {open} batches not accepted: {alerts:#?}",
            alerts.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the telegram `file` has been processed (archive status no longer `stored`); returns the status.
async fn processed(store: &Store, file: &str) -> String {
    let pattern = format!("%/{file}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = pattern.clone();
        let st: Option<String> = store
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT (SELECT status FROM jma_archive WHERE url LIKE ?1)",
                    [p],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        match st {
            Some(st) if st != "stored" => return st,
            _ => assert!(
                Instant::now() < deadline,
                "{file}: not processed within 30 s"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the telegram `file` has been processed (archive status no longer `stored`) and a disaster cycle
/// has run on the state after it (`disaster_state.updated_at` is the cycle's `now`, taken inside its transaction).
/// Returns the archive status. After this, a telegram that should send nothing has had its chance to.
async fn decided_after(store: &Store, file: &str) -> String {
    let pattern = format!("%/{file}");
    let mut status = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut processed_at: Option<chrono::DateTime<Utc>> = None;
    loop {
        let p = pattern.clone();
        let (st, decided): (Option<String>, Option<String>) = store
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT (SELECT status FROM jma_archive WHERE url LIKE ?1),
                            (SELECT updated_at FROM disaster_state WHERE id = 1)",
                    [p],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await
            .unwrap();
        match (processed_at, st) {
            (None, Some(st)) if st != "stored" => {
                status = st;
                processed_at = Some(Utc::now());
            }
            (Some(t), _) => {
                let decided = decided
                    .and_then(|d| chrono::DateTime::parse_from_rfc3339(&d).ok())
                    .map(|d| d.with_timezone(&Utc));
                if decided.is_some_and(|d| d > t) {
                    return status;
                }
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "{file}: not processed and decided on within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn mode(store: &Store) -> sonae::mode::Mode {
    store.read(sonae::mode::current_mode).await.unwrap().mode
}

/// altText of every message a user received at the stand-in, oldest first.
fn inbox(sandbox: &SandboxHandle, u: &str) -> Vec<String> {
    sandbox.with_state(|s| {
        s.received(u)
            .into_iter()
            .map(|r| r.message["altText"].as_str().unwrap_or("").to_string())
            .collect()
    })
}

/// Asserts that each of `users` received exactly messages whose altTexts start with `want`, in this order.
fn assert_inboxes(sandbox: &SandboxHandle, users: &[String], want: &[&str], what: &str) {
    for u in users {
        let got = inbox(sandbox, u);
        assert_eq!(
            got.len(),
            want.len(),
            "{what}: {u} received {} messages, expected {}: {got:#?}",
            got.len(),
            want.len()
        );
        for (g, w) in got.iter().zip(want) {
            assert!(
                g.starts_with(w),
                "{what}: {u}: «{g}» should start with «{w}»"
            );
        }
    }
}

/// Every delivery the stand-in recorded for `users`, as a set of (user, altText): no user twice per message.
fn assert_no_repeats(sandbox: &SandboxHandle, users: &[String]) {
    for u in users {
        let got = inbox(sandbox, u);
        let set: BTreeSet<&String> = got.iter().collect();
        assert_eq!(
            set.len(),
            got.len(),
            "{u} received a message twice: {got:#?}"
        );
    }
}

fn kinds(alerts: &[Alert]) -> Vec<(String, String, String)> {
    alerts
        .iter()
        .map(|a| (a.source.clone(), a.kind.clone(), a.audience.clone()))
        .collect()
}

fn k(source: &str, kind: &str, audience: &str) -> (String, String, String) {
    (source.into(), kind.into(), audience.into())
}

// ------------------------------------------------------------------------------------------ (b) escalation, lift

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_from_a_level3_warning_to_a_special_warning_and_its_lift_reach_each_resident_once_per_step(
) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(sandbox_config()).await.unwrap();
    let feed = JmaFeed::start().await;
    let people = People::new();
    let app = start_app(dir.path(), &sandbox, &feed, &["extra.xml"], &people).await;
    let (sapporo, nobody) = (people.sapporo(), {
        let mut v = people.ebetsu.clone();
        v.extend(people.staff.clone());
        v
    });

    // 1. レベル3 大雨警報: the policy alerts only those who opted in; the mode stays normal.
    feed.publish("esc1_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 1).await;
    assert_eq!(kinds(&alerts), [k("disaster", "issue", "opted_in")]);
    assert_eq!(alerts[0].planned, people.opted.len() as i64);
    assert_inboxes(
        &sandbox,
        &people.opted,
        &["【レベル３大雨警報】札幌市"],
        "警報",
    );
    assert_inboxes(&sandbox, &people.others, &[], "警報, not opted in");
    assert_inboxes(&sandbox, &nobody, &[], "警報, 江別市 and staff");
    assert_eq!(mode(&app.store).await, sonae::mode::Mode::Normal);

    // 2. レベル4 土砂災害危険警報: everyone in 札幌市, and the city enters disaster mode.
    feed.publish("esc2_VPWW56.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 2).await;
    assert_eq!(alerts[1].kind, "issue");
    assert_eq!(alerts[1].audience, "everyone");
    assert_eq!(alerts[1].planned, sapporo.len() as i64);
    assert_eq!(mode(&app.store).await, sonae::mode::Mode::Disaster);

    // 3. 大雨特別警報: an escalation of the 大雨 thread, now to everyone.
    feed.publish("esc3_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 3).await;
    assert_eq!(
        kinds(&alerts)[2],
        k("disaster", "escalation", "everyone"),
        "{alerts:#?}"
    );
    assert_eq!(alerts[2].planned, sapporo.len() as i64);
    let so_far = [
        "【レベル３大雨警報】札幌市",
        "【レベル４土砂災害危険警報】札幌市",
        "【レベル５大雨特別警報】札幌市",
    ];
    assert_inboxes(&sandbox, &people.opted, &so_far, "特別警報");
    assert_inboxes(&sandbox, &people.others, &so_far[1..], "特別警報");
    assert_inboxes(&sandbox, &nobody, &[], "特別警報, 江別市 and staff");
    assert_eq!(mode(&app.store).await, sonae::mode::Mode::Disaster);

    // 4. Both lifted in the same minute: one 解除 message per thread to everyone alerted; the mode returns to
    //    normal once the quiet period (2 s here) has passed with no trigger.
    feed.publish("esc4_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    feed.publish("esc5_VPWW56.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 5).await;
    let lifts: Vec<_> = alerts[3..]
        .iter()
        .map(|a| (a.kind.as_str(), a.audience.as_str(), a.planned))
        .collect();
    assert_eq!(
        lifts,
        [("lift", "everyone", sapporo.len() as i64); 2],
        "{alerts:#?}"
    );
    eventually("back to normal mode after the quiet period", || {
        let store = app.store.clone();
        async move {
            match mode(&store).await {
                sonae::mode::Mode::Normal => Ok(()),
                m => Err(format!("mode is {m:?}")),
            }
        }
    })
    .await;
    for u in &sapporo {
        let got = inbox(&sandbox, u);
        let skip = usize::from(!people.opted.contains(u));
        assert_eq!(got.len(), 5 - skip, "{u}: {got:#?}");
        for (g, w) in got.iter().zip(&so_far[skip..]) {
            assert!(g.starts_with(w), "{u}: «{g}» should start with «{w}»");
        }
        // The two lifts may arrive in either order.
        let mut lifted: Vec<&str> = got[3 - skip..]
            .iter()
            .map(|g| g.split('】').next().unwrap_or(""))
            .collect();
        lifted.sort();
        assert_eq!(
            lifted,
            [
                "【レベル４土砂災害危険警報 解除",
                "【レベル５大雨特別警報 解除"
            ],
            "{u}: {got:#?}"
        );
    }
    assert_inboxes(&sandbox, &nobody, &[], "解除, 江別市 and staff");
    assert_no_repeats(&sandbox, &sapporo);
    // The quiet period ended with nothing new to send.
    assert_eq!(settled(&app.store, 5).await.len(), 5);
    app.stop().await;
}

// ------------------------------------------------------------------------------------------ (b) 訂正 and 取消

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_reaches_those_alerted_and_a_cancellation_only_those_who_received_the_withdrawn_alert(
) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(sandbox_config()).await.unwrap();
    let feed = JmaFeed::start().await;
    let people = People::new();
    let app = start_app(dir.path(), &sandbox, &feed, &["extra.xml"], &people).await;
    let sapporo = people.sapporo();
    let mut nobody = people.ebetsu.clone();
    nobody.extend(people.staff.clone());

    // 1. レベル4 大雨危険警報: everyone in 札幌市, disaster mode.
    feed.publish("cor1_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 1).await;
    assert_eq!(kinds(&alerts), [k("disaster", "issue", "everyone")]);
    assert_eq!(mode(&app.store).await, sonae::mode::Mode::Disaster);

    // 2. 訂正 (same ReportDateTime): it was a レベル3 大雨警報. Everyone who was alerted hears the correction,
    //    although a レベル3 warning alone would only reach those who opted in; the city leaves disaster mode after
    //    the quiet period, as no trigger remains.
    feed.publish("cor2_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 2).await;
    assert_eq!(kinds(&alerts)[1], k("disaster", "correction", "everyone"));
    assert_eq!(alerts[1].planned, sapporo.len() as i64);
    let corrected = [
        "【レベル４大雨危険警報】札幌市",
        "【レベル３大雨警報 訂正】札幌市",
    ];
    assert_inboxes(&sandbox, &sapporo, &corrected, "訂正");
    assert_inboxes(&sandbox, &nobody, &[], "訂正, 江別市 and staff");
    eventually("normal mode after the correction's quiet period", || {
        let store = app.store.clone();
        async move {
            match mode(&store).await {
                sonae::mode::Mode::Normal => Ok(()),
                m => Err(format!("mode is {m:?}")),
            }
        }
    })
    .await;

    // 3. レベル3 土砂災害警報: those who opted in.
    feed.publish("can1_VPWW56.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 3).await;
    assert_eq!(kinds(&alerts)[2], k("disaster", "issue", "opted_in"));
    assert_eq!(alerts[2].planned, people.opted.len() as i64);

    // 4. 取消 of that telegram: the withdrawal reaches exactly those who received it, and nobody else.
    feed.publish("can2_VPWW56.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 4).await;
    assert_eq!(kinds(&alerts)[3], k("disaster", "cancellation", "opted_in"));
    assert_eq!(alerts[3].planned, people.opted.len() as i64);
    let opted = [
        corrected[0],
        corrected[1],
        "【レベル３土砂災害警報】札幌市",
        "【レベル３土砂災害警報 取消】札幌市",
    ];
    assert_inboxes(&sandbox, &people.opted, &opted, "取消");
    assert_inboxes(&sandbox, &people.others, &corrected, "取消, not opted in");
    assert_inboxes(&sandbox, &nobody, &[], "取消, 江別市 and staff");
    assert_eq!(mode(&app.store).await, sonae::mode::Mode::Normal);
    let withdrawal = sandbox.with_state(|s| s.received(&people.opted[0]).pop().unwrap().message);
    assert!(
        withdrawal.to_string().contains("取り消されました"),
        "the withdrawal says so: {withdrawal}"
    );

    // 5. 大雨特別警報 over the corrected 大雨警報: an escalation to everyone, disaster mode again.
    feed.publish("can3_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 5).await;
    assert_eq!(kinds(&alerts)[4], k("disaster", "escalation", "everyone"));
    assert_eq!(mode(&app.store).await, sonae::mode::Mode::Disaster);

    // 6. 取消 of the 特別警報: everyone it reached hears it was withdrawn and that the 大雨警報 it replaced is in
    //    force again; no new 警報 issue is sent, and the mode returns to normal after the quiet period.
    feed.publish("can4_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 6).await;
    assert_eq!(kinds(&alerts)[5], k("disaster", "cancellation", "everyone"));
    assert_eq!(alerts[5].planned, sapporo.len() as i64);
    let special = [
        "【レベル５大雨特別警報】札幌市",
        "【レベル５大雨特別警報 取消】札幌市",
    ];
    let all_opted: Vec<&str> = opted.iter().chain(&special).copied().collect();
    let all_others: Vec<&str> = corrected.iter().chain(&special).copied().collect();
    assert_inboxes(&sandbox, &people.opted, &all_opted, "特別警報 取消");
    assert_inboxes(&sandbox, &people.others, &all_others, "特別警報 取消");
    assert_inboxes(&sandbox, &nobody, &[], "特別警報 取消, 江別市 and staff");
    let withdrawal = sandbox.with_state(|s| s.received(&people.others[0]).pop().unwrap().message);
    assert!(
        withdrawal.to_string().contains("現在は"),
        "the withdrawal names the warning in force again: {withdrawal}"
    );
    eventually("normal mode after the withdrawn 特別警報", || {
        let store = app.store.clone();
        async move {
            match mode(&store).await {
                sonae::mode::Mode::Normal => Ok(()),
                m => Err(format!("mode is {m:?}")),
            }
        }
    })
    .await;
    assert_eq!(settled(&app.store, 6).await.len(), 6);

    // 7. 大雨危険警報 over the 大雨警報: an escalation to everyone. 8. A 訂正 saying no 大雨 warning is in force
    //    at all: everyone alerted is told the warning was withdrawn — not that it was lifted (解除), which would
    //    say it had been real.
    feed.publish("cor3_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 7).await;
    assert_eq!(kinds(&alerts)[6], k("disaster", "escalation", "everyone"));
    feed.publish("cor4_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 8).await;
    assert_eq!(
        kinds(&alerts)[7],
        k("disaster", "cancellation", "everyone"),
        "{alerts:#?}"
    );
    assert_eq!(alerts[7].planned, sapporo.len() as i64);
    let wrong = [
        "【レベル４大雨危険警報】札幌市",
        "【レベル４大雨危険警報 取消】札幌市",
    ];
    let all_opted: Vec<&str> = all_opted.iter().chain(&wrong).copied().collect();
    let all_others: Vec<&str> = all_others.iter().chain(&wrong).copied().collect();
    assert_inboxes(&sandbox, &people.opted, &all_opted, "訂正 to nothing");
    assert_inboxes(&sandbox, &people.others, &all_others, "訂正 to nothing");
    assert_inboxes(&sandbox, &nobody, &[], "訂正 to nothing, 江別市 and staff");

    // 9. レベル3 大雨警報: those who opted in. 10. A 訂正 to a 大雨注意報, which alone would reach nobody: those
    //    alerted hear it was a mistake — a correction, not "the warning was downgraded".
    feed.publish("cor5_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 9).await;
    assert_eq!(kinds(&alerts)[8], k("disaster", "issue", "opted_in"));
    feed.publish("cor6_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 10).await;
    assert_eq!(
        kinds(&alerts)[9],
        k("disaster", "correction", "opted_in"),
        "{alerts:#?}"
    );
    assert_eq!(alerts[9].planned, people.opted.len() as i64);
    let all_opted: Vec<&str> = all_opted
        .iter()
        .copied()
        .chain([
            "【レベル３大雨警報】札幌市",
            "【レベル２大雨注意報 訂正】札幌市",
        ])
        .collect();
    assert_inboxes(&sandbox, &people.opted, &all_opted, "訂正 to 注意報");
    assert_inboxes(&sandbox, &people.others, &all_others, "訂正 to 注意報");
    assert_inboxes(&sandbox, &nobody, &[], "訂正 to 注意報, 江別市 and staff");
    assert_no_repeats(&sandbox, &sapporo);
    app.stop().await;
}

// ------------------------------------------------------------------------------------------ (c) 訓練 and 試験

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_reaches_only_the_drill_audience_marked_as_a_drill_and_a_test_telegram_reaches_nobody(
) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(sandbox_config()).await.unwrap();
    let feed = JmaFeed::start().await;
    let people = People::new();
    let app = start_app(dir.path(), &sandbox, &feed, &["extra.xml"], &people).await;
    let mut residents = people.sapporo();
    residents.extend(people.ebetsu.clone());

    // 1. A 試験 大雨特別警報 and, listed after it, a 訓練 土砂災害危険警報: only the drill produces an alert, for the
    //    staff of the drill audience; the real mode does not move.
    feed.publish("tst1_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    feed.publish("drl1_VPWW56.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 1).await;
    assert_eq!(alerts[0].kind, "issue");
    assert_eq!(alerts[0].audience, "drill");
    assert_eq!(alerts[0].planned, people.staff.len() as i64);
    assert_inboxes(
        &sandbox,
        &people.staff,
        &["【訓練】【レベル４土砂災害危険警報】札幌市"],
        "訓練",
    );
    assert_inboxes(&sandbox, &residents, &[], "訓練 and 試験, residents");
    assert_eq!(mode(&app.store).await, sonae::mode::Mode::Normal);
    let test_status: String = app
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT status FROM jma_archive WHERE url LIKE '%tst1_VPWW55.xml'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(
        test_status, "ignored",
        "the 試験 telegram was read and set aside"
    );

    // 2. The drill's 解除: again the staff only, again marked.
    feed.publish("drl2_VPWW56.xml", &["extra.xml", "extra_l.xml"]);
    let alerts = settled(&app.store, 2).await;
    assert_eq!(alerts[1].kind, "lift");
    assert_eq!(alerts[1].audience, "drill");
    assert_inboxes(
        &sandbox,
        &people.staff,
        &[
            "【訓練】【レベル４土砂災害危険警報】札幌市",
            "【訓練】【レベル４土砂災害危険警報 解除】札幌市",
        ],
        "訓練 解除",
    );
    assert_inboxes(&sandbox, &residents, &[], "訓練 解除, residents");
    for s in &people.staff {
        for r in sandbox.with_state(|st| st.received(s)) {
            let heading = r.message["contents"]["header"]["contents"][0]["text"]
                .as_str()
                .unwrap_or("");
            assert!(
                heading.starts_with("【訓練】"),
                "the bubble starts with 【訓練】 too: {}",
                r.message
            );
            assert!(
                r.message.to_string().contains("これは訓練です"),
                "every drill message says it is a drill: {}",
                r.message
            );
        }
    }
    assert!(alerts.iter().all(|a| a.audience == "drill"), "{alerts:#?}");
    assert_eq!(mode(&app.store).await, sonae::mode::Mode::Normal);
    app.stop().await;
}

// ------------------------------------------------------------------------------------------ (d) one alert

/// Config for the real binary against the stand-in and the feed server (10 s polls: the first poll of each feed
/// is at start, which is all this test needs).
fn binary_config(dir: &Path, addr: SocketAddr, sandbox: &SandboxHandle, feed: &JmaFeed) -> PathBuf {
    let extra = format!(
        r#"api_base = "{line}"
api_data_base = "{line}"

[jma]
feeds = ["{regular}", "{extra}"]
poll_interval_secs = 10

[disaster]
# The served telegrams are dated yesterday (see `to_yesterday`).
max_report_age_secs = 172800

[place]
districts = "{districts}"
shelters = ["{shelters}"]
"#,
        line = sandbox.url(),
        regular = feed.url("regular.xml"),
        extra = feed.url("extra.xml"),
        districts = fixture("districts.geojson").display(),
        shelters = repo("deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv").display(),
    );
    crate::helpers::write_config(dir, addr, &extra)
}

/// The daemon's `/healthz` (on its admin listener) reports a disaster component only after its first cycle
/// in this process.
fn disaster_cycle_ran(admin: SocketAddr) -> Result<(), String> {
    let (_, body) = crate::helpers::reqwest::get_full(&format!("http://{admin}/healthz"))
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    match v["components"]["disaster"]["status"].as_str() {
        Some("ok") => Ok(()),
        _ => Err(format!("no disaster cycle yet: {body}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_telegram_in_the_regular_extra_and_long_feeds_around_a_restart_gives_one_alert() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(sandbox_config()).await.unwrap();
    let feed = JmaFeed::start().await;
    let people = People::new();
    let store = Store::open(&dir.path().join("sonae.db")).unwrap();
    people.register(&store, &sandbox).await;
    let addr: SocketAddr = format!("127.0.0.1:{}", crate::helpers::free_port())
        .parse()
        .unwrap();
    let config = binary_config(dir.path(), addr, &sandbox, &feed);
    let sapporo = people.sapporo();
    let mut nobody = people.ebetsu.clone();
    nobody.extend(people.staff.clone());
    let telegram = "/developer/xml/data/dup1_VPWW55.xml";

    // The operator's installation step: the rich menus exist before the first start.
    let sync = std::process::Command::new(crate::helpers::SONAE)
        .args(["richmenu", "sync", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        sync.status.success(),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );
    let emergency =
        sonae::line::richmenu::entry_menu(&store, sonae::line::richmenu::Mode::Disaster)
            .await
            .unwrap()
            .unwrap();

    // 1. The 大雨危険警報 is in the extra feed and its long twin; the first start reads both (catch-up).
    feed.publish("dup1_VPWW55.xml", &["extra.xml", "extra_l.xml"]);
    let daemon = crate::helpers::Daemon::start(&config, addr);
    let alerts = settled(&store, 1).await;
    assert_eq!(kinds(&alerts), [k("disaster", "issue", "everyone")]);
    assert_eq!(alerts[0].planned, sapporo.len() as i64);
    assert_inboxes(
        &sandbox,
        &sapporo,
        &["【レベル４大雨危険警報】札幌市"],
        "first start",
    );
    assert_eq!(
        feed.hits("/developer/xml/feed/extra_l.xml"),
        1,
        "caught up at start"
    );

    // 2. Restart. Meanwhile the same telegram (same URL) appears in the regular feed and its long twin, and a
    //    byte-identical copy under another URL in the regular feed.
    let mut daemon = daemon;
    daemon.signal("TERM");
    let stopped = daemon.child.wait().unwrap();
    assert_eq!(stopped.code(), Some(0), "a clean stop: {stopped}");
    drop(daemon);
    feed.publish("dup1_VPWW55.xml", &["regular.xml", "regular_l.xml"]);
    feed.publish_as("dup1_VPWW55.xml", "dup1copy_VPWW55.xml", &["regular.xml"]);
    let polled = feed.hits("/developer/xml/feed/regular.xml");
    let _daemon = crate::helpers::Daemon::start(&config, addr);
    let admin = crate::helpers::admin_of(&config);
    eventually("the copy read and set aside as a duplicate", || {
        let (store, feed) = (store.clone(), feed.clone());
        async move {
            if feed.hits("/developer/xml/feed/regular.xml") <= polled {
                return Err("regular feed not polled since the restart".into());
            }
            disaster_cycle_ran(admin)?;
            let (copy, cursor, last_event): (String, i64, i64) = store
                .read(|c| {
                    Ok(c.query_row(
                        "SELECT (SELECT status FROM jma_archive WHERE url LIKE '%dup1copy_VPWW55.xml'),
                                (SELECT coalesce(max(last_event_id), 0) FROM disaster_runtime),
                                (SELECT coalesce(max(id), 0) FROM jma_events)",
                        [],
                        |r| Ok((r.get::<_, Option<String>>(0)?.unwrap_or_default(), r.get(1)?, r.get(2)?)),
                    )?)
                })
                .await
                .map_err(|e| e.to_string())?;
            if copy != "duplicate" {
                return Err(format!("copy status «{copy}»"));
            }
            // Had the copy changed the state, its events would be waiting for the disaster cycle.
            if cursor < last_event {
                return Err(format!("events up to {last_event}, disaster cycle at {cursor}"));
            }
            Ok(())
        }
    })
    .await;

    // One alert, one message per 札幌市 resident, nothing to anyone else, and the telegram's URL downloaded once
    // over both feeds, both long twins and both runs.
    let alerts = settled(&store, 1).await;
    assert_eq!(alerts[0].planned, sapporo.len() as i64);
    assert_inboxes(
        &sandbox,
        &sapporo,
        &["【レベル４大雨危険警報】札幌市"],
        "after the restart",
    );
    assert_inboxes(&sandbox, &nobody, &[], "江別市 and staff");
    assert_eq!(feed.hits(telegram), 1, "the telegram was downloaded once");
    assert_eq!(feed.hits("/developer/xml/data/dup1copy_VPWW55.xml"), 1);
    let entries: i64 = store
        .read(|c| Ok(c.query_row("SELECT count(*) FROM jma_archive", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(
        entries, 2,
        "the telegram and its copy are archived once each"
    );
    assert_eq!(mode(&store).await, sonae::mode::Mode::Disaster);
    eventually("residents see the emergency rich menu", || {
        let (sandbox, u, want) = (&sandbox, sapporo[0].clone(), emergency.clone());
        async move {
            match sandbox.with_state(|s| s.shown(&u)) {
                sonae::line::sandbox::state::Shown::Default(m) if m == want => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
}

// ------------------------------------------------------------------------------------------ legacy twins

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_twins_of_each_telegram_add_no_message_whichever_arrives_first() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(sandbox_config()).await.unwrap();
    let feed = JmaFeed::start().await;
    let people = People::new();
    let app = start_app(dir.path(), &sandbox, &feed, &["extra.xml"], &people).await;
    let sapporo = people.sapporo();
    let mut nobody = people.ebetsu.clone();
    nobody.extend(people.staff.clone());
    let publish = |file: &str| feed.publish(file, &["extra.xml", "extra_l.xml"]);

    // A twin that sends nothing is only waited for until it is processed: the alerts of the next step are
    // decided after it (archive order), and `settled` refuses any alert beyond the expected count, so a message
    // a twin caused would fail the next step; the last twins are waited for until a cycle has decided on them.

    // 1. The legacy VPWW54 大雨警報 first: those who opted in hear it. 2. Its R06 twin (VPWW55) takes over
    //    the 大雨 state without a message.
    publish("twn1_VPWW54.xml");
    let alerts = settled(&app.store, 1).await;
    assert_eq!(kinds(&alerts), [k("disaster", "issue", "opted_in")]);
    publish("esc1_VPWW55.xml");
    assert_eq!(processed(&app.store, "esc1_VPWW55.xml").await, "applied");

    // 3. 土砂災害警戒情報 (VXWW50) before any R06 土砂 telegram: everyone, disaster mode. 4. Its R06 twin
    //    (VPWW56 レベル4土砂災害危険警報) and 5. the legacy 大雨 telegram showing the 危険警報 as a 警報: nothing.
    publish("twn2_VXWW50.xml");
    let alerts = settled(&app.store, 2).await;
    assert_eq!(kinds(&alerts)[1], k("disaster", "issue", "everyone"));
    assert_eq!(mode(&app.store).await, sonae::mode::Mode::Disaster);
    publish("esc2_VPWW56.xml");
    processed(&app.store, "esc2_VPWW56.xml").await;
    publish("twn3_VPWW54.xml");
    processed(&app.store, "twn3_VPWW54.xml").await;

    // 6. R06 大雨特別警報 first: the escalation. 7. Its legacy twin: nothing.
    publish("esc3_VPWW55.xml");
    let alerts = settled(&app.store, 3).await;
    assert_eq!(kinds(&alerts)[2], k("disaster", "escalation", "everyone"));
    publish("twn4_VPWW54.xml");
    processed(&app.store, "twn4_VPWW54.xml").await;

    // 8. The R06 土砂 解除: one lift. 9. The legacy 土砂災害警戒情報 解除: nothing.
    publish("esc5_VPWW56.xml");
    let alerts = settled(&app.store, 4).await;
    assert_eq!(kinds(&alerts)[3], k("disaster", "lift", "everyone"));
    publish("twn5_VXWW50.xml");
    processed(&app.store, "twn5_VXWW50.xml").await;

    // 10. Both 大雨 解除 telegrams in the same poll: one lift.
    publish("twn6_VPWW54.xml");
    publish("esc4_VPWW55.xml");
    let alerts = settled(&app.store, 5).await;
    assert_eq!(kinds(&alerts)[4], k("disaster", "lift", "everyone"));
    decided_after(&app.store, "twn6_VPWW54.xml").await;
    assert_eq!(settled(&app.store, 5).await.len(), 5);

    let steps = [
        "【大雨警報】札幌市",
        "【レベル４土砂災害危険警報】札幌市",
        "【レベル５大雨特別警報】札幌市",
        "【レベル４土砂災害危険警報 解除】札幌市",
        "【レベル５大雨特別警報 解除】札幌市",
    ];
    assert_inboxes(&sandbox, &people.opted, &steps, "twins");
    assert_inboxes(&sandbox, &people.others, &steps[1..], "twins, not opted in");
    assert_inboxes(&sandbox, &nobody, &[], "twins, 江別市 and staff");
    assert_no_repeats(&sandbox, &sapporo);
    eventually("normal mode after the lifts", || {
        let store = app.store.clone();
        async move {
            match mode(&store).await {
                sonae::mode::Mode::Normal => Ok(()),
                m => Err(format!("mode is {m:?}")),
            }
        }
    })
    .await;
    app.stop().await;
}

// ------------------------------------------------------------------------------------------ downtime

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_downtime_only_the_warnings_still_in_force_are_announced_once() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(sandbox_config()).await.unwrap();
    let feed = JmaFeed::start().await;
    let people = People::new();
    // The short feed covers 1 s here (JMA's: 10 minutes), so a restart after a longer stop reads the long feed.
    let window = |c: &mut sonae::config::Config| c.jma.short_feed_window_secs = 1;
    let app = start_app_with(dir.path(), &sandbox, &feed, &["extra.xml"], &people, window).await;
    eventually("a first poll", || {
        let feed = feed.clone();
        async move {
            match feed.hits("/developer/xml/feed/extra.xml") {
                0 => Err("not polled yet".into()),
                _ => Ok(()),
            }
        }
    })
    .await;
    app.stop().await;

    // While the daemon is stopped: 大雨警報 → 大雨特別警報, and a 土砂災害危険警報 issued and lifted; by the
    // restart they have scrolled out of the short feed and are only in its long twin.
    for f in [
        "esc1_VPWW55.xml",
        "esc2_VPWW56.xml",
        "esc3_VPWW55.xml",
        "esc5_VPWW56.xml",
    ] {
        feed.publish(f, &["extra_l.xml"]);
    }
    let store = Store::open(&dir.path().join("sonae.db")).unwrap();
    eventually("a stop longer than the short feed's window", || {
        let store = store.clone();
        async move {
            let last: String = store
                .read(|c| {
                    Ok(
                        c.query_row("SELECT max(last_success_at) FROM jma_feeds", [], |r| {
                            r.get(0)
                        })?,
                    )
                })
                .await
                .map_err(|e| e.to_string())?;
            let last = chrono::DateTime::parse_from_rfc3339(&last).map_err(|e| e.to_string())?;
            match Utc::now().signed_duration_since(last) > chrono::Duration::milliseconds(1500) {
                true => Ok(()),
                false => Err(format!("last poll at {last}")),
            }
        }
    })
    .await;
    drop(store);
    let catchups = feed.hits("/developer/xml/feed/extra_l.xml");
    let app = start_app_with(dir.path(), &sandbox, &feed, &["extra.xml"], &people, window).await;
    decided_after(&app.store, "esc5_VPWW56.xml").await;
    assert!(
        feed.hits("/developer/xml/feed/extra_l.xml") > catchups,
        "caught up from the long feed"
    );

    // One alert: the 大雨特別警報 still in force, as an issue to everyone. Nothing about the 土砂 warning that
    // came and went, no separate 警報 or escalation.
    let alerts = settled(&app.store, 1).await;
    assert_eq!(kinds(&alerts), [k("disaster", "issue", "everyone")]);
    assert_inboxes(
        &sandbox,
        &people.sapporo(),
        &["【レベル５大雨特別警報】札幌市"],
        "after downtime",
    );
    assert_eq!(mode(&app.store).await, sonae::mode::Mode::Disaster);
    app.stop().await;
}
