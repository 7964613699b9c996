//! Disaster path from real JMA telegrams to the LINE stand-in: the runtime's cycle on a real SQLite file
//! (real parser, real code table, the 札幌市 demo districts and GSI shelters), then the outbox sender over the
//! real `LineClient` into the in-process stand-in, counting what each resident received.

use std::path::PathBuf;
use std::sync::Arc;

use crate::helpers::InProcess;
use chrono::{DateTime, Utc};
use sonae::delivery::LineSender;
use sonae::disaster::engine::{DistrictRef, Mode};
use sonae::disaster::runtime::{districts_of, Runtime};
use sonae::ids::LineUserId;
use sonae::line::sandbox::{Sandbox, SandboxConfig};
use sonae::store::Store;

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn user(n: u128) -> String {
    format!("U{n:032x}")
}

async fn apply(store: &Store, files: &[&str]) {
    let parse = sonae::jma::daemon_parser().unwrap();
    let table = sonae::jma::daemon_code_table();
    let mut states = store.read(sonae::jma::pipeline::load_states).await.unwrap();
    for f in files {
        let bytes = std::fs::read(repo(&format!("feeds/demo-heavy-rain/telegrams/{f}"))).unwrap();
        states.apply(&parse(&bytes).unwrap(), table.as_ref());
    }
    store
        .write(move |tx| {
            for (code, muni) in &states.real.munis {
                tx.execute(
                    "INSERT OR REPLACE INTO jma_state (scope, municipality, json) VALUES ('real', ?1, ?2)",
                    rusqlite::params![code, serde_json::to_string(muni)?],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// Waits until the in-process daemon answers `/healthz` (on its admin listener `admin`): it serves only once its components are up (the
/// 札幌市 districts take seconds to load in a debug build on a busy machine), and a webhook the stand-in sends
/// before that waits in the listen backlog and can outlast the stand-in's 10 s timeout — the event is then
/// lost, as it would be at LINE without redelivery.
async fn serving(admin: std::net::SocketAddr) {
    let url = format!("http://{admin}/healthz");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let ok = reqwest::Client::new()
            .get(&url)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not serve within 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level4_warning_reaches_each_sapporo_resident_exactly_once_and_nobody_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("sonae.db")).unwrap();

    let mut config = sonae::config::Config::default();
    config.place.districts = repo("deploy/demo/sapporo-districts.geojson");
    config.place.shelters = vec![repo(
        "deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv",
    )];
    let place = Arc::new(sonae::place::PlaceData::load(&config.place).unwrap());
    let mut districts = districts_of(&place);
    // A district of another municipality (山形市) the warning does not name.
    districts.push(DistrictRef {
        id: "yamagata-1".into(),
        name: "山形市 第一地区".into(),
        municipality: "0620100".into(),
    });
    let sapporo: Vec<String> = districts[..3].iter().map(|d| d.id.clone()).collect();
    let rt = Arc::new(Runtime {
        config: config.disaster.clone(),
        public_url: config.server.public_url.clone(),
        links: config.place.links.clone(),
        districts,
        place,
        templates: sonae::disaster::compose::Templates::embedded().unwrap(),
    });

    // 30 residents in three 札幌市 districts, 10 in 山形市.
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let (s2, y) = (sapporo.clone(), "yamagata-1".to_string());
    store
        .write(move |tx| {
            for n in 1..=40u128 {
                let u = LineUserId::new(user(n));
                sonae::resident::follow_tx(tx, &u)?;
                let d = if n <= 30 { &s2[(n % 3) as usize] } else { &y };
                sonae::resident::set_district_tx(tx, &u, d)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    sandbox.with_state(|s| {
        for n in 1..=40u128 {
            s.follow(&user(n), None);
        }
    });

    apply(&store, &["01_VPWW55.xml", "02_VPWW55.xml", "03_VPWW56.xml"]).await;
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-09-12T10:15:00+09:00")
        .unwrap()
        .with_timezone(&Utc);
    let rt2 = rt.clone();
    let report = store.write(move |tx| rt2.cycle_tx(tx, now)).await.unwrap();
    assert_eq!(report.mode, Some(Mode::Disaster));
    assert!(report.alerts_created >= 1, "{report:?}");
    // The same state again: nothing new is enqueued.
    let rt3 = rt.clone();
    let again = store
        .write(move |tx| rt3.cycle_tx(tx, now + chrono::Duration::minutes(2)))
        .await
        .unwrap();
    assert_eq!(again.alerts_created, 0);

    // Alerts whose audience is everyone in the affected districts.
    let everyone: Vec<(i64, i64)> = store
        .read(|c| {
            let mut st = c.prepare("SELECT id, planned FROM delivery_alerts WHERE detail LIKE '%\"audience\":\"everyone\"%'")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap();
    assert!(!everyone.is_empty(), "a レベル4 warning alerts everyone");

    let client = sonae::line::client::LineClient::new(sonae::line::client::ClientConfig {
        api_base: sandbox.url(),
        api_data_base: sandbox.url(),
        access_token: sonae::secret::Secret::new("sandbox-access-token"),
        retry: Default::default(),
    })
    .unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let sender = tokio::spawn(sonae::delivery::sender::run_sender(
        store.clone(),
        Arc::new(LineSender { client }),
        config.delivery.clone(),
        Arc::new(sonae::metrics::Metrics::new()),
        Arc::new(sonae::health::Health::new()),
        Arc::new(tokio::sync::Notify::new()),
        token.clone(),
    ));
    // Wait until the outbox has nothing left (bounded, so a broken sender fails the test instead of hanging).
    let mut left = i64::MAX;
    for _ in 0..600 {
        left = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM delivery_batches WHERE status IN ('pending', 'in_flight')",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    token.cancel();
    sender.await.unwrap().unwrap();
    assert_eq!(left, 0, "outbox not drained");
    let rejected: i64 = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM delivery_batches WHERE status != 'accepted'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(rejected, 0);

    // What each resident should have received: the messages of every batch that lists them, once.
    let expected: std::collections::HashMap<String, usize> = store
        .read(|c| {
            let mut st = c.prepare(
                "SELECT b.recipients, m.body FROM delivery_batches b JOIN delivery_messages m ON m.id = b.message_id",
            )?;
            let mut out = std::collections::HashMap::new();
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (rec, body) = row?;
                let n = serde_json::from_str::<Vec<serde_json::Value>>(&body)?.len();
                for u in rec.lines() {
                    *out.entry(u.to_string()).or_insert(0) += n;
                }
            }
            Ok(out)
        })
        .await
        .unwrap();
    sandbox.with_state(|s| {
        for n in 1..=40u128 {
            let got = s.received(&user(n)).len();
            if n <= 30 {
                let want = expected.get(&user(n)).copied().unwrap_or(0);
                assert!(want > 0, "resident {n} was not planned");
                assert_eq!(got, want, "resident {n}: received {got}, planned {want}");
            } else {
                assert_eq!(got, 0, "山形市 resident {n} received a 札幌市 alert");
                assert!(!expected.contains_key(&user(n)));
            }
        }
    });
    for (_, planned) in &everyone {
        assert_eq!(*planned, 30, "every 札幌市 resident planned once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_through_the_webhook_gets_a_welcome_and_a_shared_location_registers_the_district()
{
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut config = crate::helpers::test_config(&dir.path().join("sonae.db"));
    config.line.api_base = sandbox.url();
    config.line.api_data_base = sandbox.url();
    config.place.enabled = true;
    config.place.districts = repo("deploy/demo/sapporo-districts.geojson");
    config.place.shelters = vec![repo(
        "deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv",
    )];
    let app = sonae::app::Application::build(
        config,
        sonae::app::sandbox_secrets(&SandboxConfig::default()),
    )
    .await
    .unwrap();
    let addr = app.local_addr();
    let admin = app.admin_addr();
    let store = app.context().infra.store.clone();
    let daemon = InProcess::run(app);
    serving(admin).await;
    sandbox.set_webhook_url(&format!("http://{addr}/webhook"));

    let who = user(7);
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        http.post(format!("{}/sandbox/users/{who}/events", sandbox.url()))
            .json(&body)
            .send()
    };
    assert!(post(serde_json::json!({"type": "follow"}))
        .await
        .unwrap()
        .status()
        .is_success());
    let wait_for = |n: usize| {
        let (sandbox, who) = (&sandbox, who.clone());
        async move {
            for _ in 0..300 {
                if sandbox.with_state(|s| s.received(&who).len()) >= n {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            false
        }
    };
    assert!(wait_for(1).await, "no welcome reply");
    let welcome = sandbox.with_state(|s| s.received(&who).len());

    // 大通公園 (中央区): the location reply registers a 札幌市 district.
    assert!(post(
        serde_json::json!({"type": "location", "latitude": 43.0597, "longitude": 141.3468})
    )
    .await
    .unwrap()
    .status()
    .is_success());
    assert!(
        wait_for(welcome + 1).await,
        "no reply to the shared location"
    );
    let u = LineUserId::new(who.clone());
    let mut district = None;
    for _ in 0..100 {
        let u2 = u.clone();
        district = store
            .read(move |c| Ok(sonae::resident::get(c, &u2)?.and_then(|r| r.district_id)))
            .await
            .unwrap();
        if district.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let place = sonae::place::PlaceData::load(&sonae::place::PlaceConfig {
        districts: repo("deploy/demo/sapporo-districts.geojson"),
        shelters: vec![repo(
            "deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv",
        )],
        ..Default::default()
    })
    .unwrap();
    let expected = place
        .districts
        .locate(sonae::place::LatLon::new(43.0597, 141.3468).unwrap())
        .map(|d| d.id.clone());
    assert!(expected.is_some());
    assert_eq!(district, expected);

    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rich_menu_residents_see_follows_the_mode_with_and_without_per_user_links() {
    use sonae::line::richmenu;
    use sonae::line::sandbox::state::Shown;

    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut config = crate::helpers::test_config(&dir.path().join("sonae.db"));
    config.line.api_base = sandbox.url();
    config.line.api_data_base = sandbox.url();
    config.place.enabled = true;
    config.place.districts = repo("deploy/demo/sapporo-districts.geojson");
    config.place.shelters = vec![repo(
        "deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv",
    )];
    // The recorded scenario is dated 2026-09-12: accept its age, and leave disaster mode soon after 解除.
    config.disaster.max_report_age_secs = 7 * 86400 * 52;
    config.disaster.quiet_period_secs = 1;
    let app = sonae::app::Application::build(
        config,
        sonae::app::sandbox_secrets(&SandboxConfig::default()),
    )
    .await
    .unwrap();
    let addr = app.local_addr();
    let admin = app.admin_addr();
    let ctx = app.context().clone();
    let menus = richmenu::embedded_templates(&format!("http://{addr}")).unwrap();
    richmenu::sync(&ctx.line.client, &ctx.infra.store, &menus)
        .await
        .unwrap();
    let normal = richmenu::entry_menu(&ctx.infra.store, richmenu::Mode::Normal)
        .await
        .unwrap()
        .unwrap();
    let emergency = richmenu::entry_menu(&ctx.infra.store, richmenu::Mode::Disaster)
        .await
        .unwrap()
        .unwrap();
    let daemon = InProcess::run(app);
    serving(admin).await;
    sandbox.set_webhook_url(&format!("http://{addr}/webhook"));

    // A: a friend without a per-user link; B: follows through the webhook and is linked to the normal menu.
    let (a, b) = (user(0xa), user(0xb));
    sandbox.with_state(|s| s.follow(&a, None));
    let http = reqwest::Client::new();
    http.post(format!("{}/sandbox/users/{b}/events", sandbox.url()))
        .json(&serde_json::json!({"type": "follow"}))
        .send()
        .await
        .unwrap();
    let wait_shown = |want_a: Shown, want_b: Shown| {
        let (sandbox, a, b) = (&sandbox, a.clone(), b.clone());
        async move {
            let mut last = (Shown::None, Shown::None);
            for _ in 0..900 {
                last = sandbox.with_state(|s| (s.shown(&a), s.shown(&b)));
                if last == (want_a.clone(), want_b.clone()) {
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(last)
        }
    };
    wait_shown(Shown::Default(normal.clone()), Shown::User(normal.clone()))
        .await
        .expect("normal menu before any warning");

    apply(
        &ctx.infra.store,
        &["01_VPWW55.xml", "02_VPWW55.xml", "03_VPWW56.xml"],
    )
    .await;
    wait_shown(
        Shown::Default(emergency.clone()),
        Shown::User(emergency.clone()),
    )
    .await
    .expect("emergency menu in disaster mode");
    let mode = ctx
        .infra
        .store
        .read(sonae::mode::current_mode)
        .await
        .unwrap();
    assert_eq!(mode.mode, sonae::mode::Mode::Disaster);

    let all: Vec<String> = std::fs::read_dir(repo("feeds/demo-heavy-rain/telegrams"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    let mut all = all;
    all.sort();
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    apply(&ctx.infra.store, &names).await;
    wait_shown(Shown::Default(normal.clone()), Shown::User(normal.clone()))
        .await
        .expect("normal menu again after 解除");

    daemon.stop().await;
}
