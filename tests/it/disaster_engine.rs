//! The disaster pipeline in-process, over a real SQLite file: engine → compose → one transaction with the
//! outbox → sender → a fake LINE that keeps retry keys. Checks who receives what across a whole warning's
//! life, and that repeating a decision or restarting sends nothing twice.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sonae::delivery::{self, DeliveryConfig, Enqueued, Recipients, SendOutcome, Sender};
use sonae::disaster::compose::{HazardLinks, ShelterRef, Templates};
use sonae::disaster::engine::{Family, WarningChange};
use sonae::disaster::*;
use sonae::health::Health;
use sonae::metrics::Metrics;
use sonae::store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const YAMAGATA: &str = "0620100";
const TENDO: &str = "0621000";

#[derive(Default)]
struct FakeLine {
    keys: Mutex<HashSet<uuid::Uuid>>,
    inbox: Mutex<BTreeMap<String, Vec<String>>>,
}

struct Fake(Arc<FakeLine>);

impl Sender for Fake {
    async fn multicast(&self, key: uuid::Uuid, to: &[String], messages: &[Value]) -> SendOutcome {
        if !self.0.keys.lock().unwrap().insert(key) {
            return SendOutcome::AlreadyAccepted { request_id: None };
        }
        let alt = messages[0]["altText"].as_str().unwrap_or("").to_string();
        let mut inbox = self.0.inbox.lock().unwrap();
        for u in to {
            inbox.entry(u.clone()).or_default().push(alt.clone());
        }
        SendOutcome::Accepted { request_id: None }
    }
}

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, h, m, 0).unwrap()
}

fn uid(tag: &str, i: usize) -> String {
    format!("U{tag}{i:0width$x}", width = 32 - tag.len())
}

struct City {
    districts: Vec<DistrictRef>,
    /// district id → (user id, opted in)
    residents: BTreeMap<String, Vec<(String, bool)>>,
    staff: Vec<String>,
}

fn city() -> City {
    let districts = vec![
        DistrictRef {
            id: "chuo".into(),
            name: "中央地区".into(),
            municipality: YAMAGATA.into(),
        },
        DistrictRef {
            id: "minami".into(),
            name: "南部地区".into(),
            municipality: YAMAGATA.into(),
        },
        DistrictRef {
            id: "tendo".into(),
            name: "天童北部".into(),
            municipality: TENDO.into(),
        },
    ];
    let mut residents = BTreeMap::new();
    for (d, tag, n) in [
        ("chuo", "a", 700),
        ("minami", "b", 300),
        ("tendo", "c", 200),
    ] {
        residents.insert(
            d.to_string(),
            (0..n).map(|i| (uid(tag, i), i % 4 == 0)).collect(),
        );
    }
    City {
        districts,
        residents,
        staff: vec![uid("f", 1), uid("f", 2)],
    }
}

fn rain(
    code: &str,
    name: &str,
    sev: Severity,
    level: u8,
    issued: DateTime<Utc>,
    reported: DateTime<Utc>,
) -> ActiveWarning {
    ActiveWarning {
        status: ReportStatus::Actual,
        municipality: YAMAGATA.into(),
        municipality_name: "山形市".into(),
        phenomenon: Phenomenon::HeavyRain,
        family: Family::Weather,
        code: code.into(),
        name: name.into(),
        severity: sev,
        level: Some(level),
        issued_at: issued,
        report_datetime: reported,
        report_key: format!("{code}-{}", reported.timestamp()),
    }
}

/// One engine cycle, written in one transaction, as the lead's runner will do it.
fn cycle(
    store: &Store,
    c: &City,
    config: &DisasterConfig,
    now: DateTime<Utc>,
    warnings: &[ActiveWarning],
    changes: &[WarningChange],
) -> Decision {
    let templates = Templates::embedded().unwrap();
    let (decision, enqueued) = run_cycle_blocking(
        store,
        config,
        &templates,
        "https://bousai.example.lg.jp",
        EngineInput {
            now,
            warnings,
            changes,
            holds: &[],
            districts: &c.districts,
        },
        |_, _| {
            vec![ShelterRef {
                name: "第一小学校".into(),
                distance_m: 420.0,
                map_url: "https://maps.gsi.go.jp/#17/38.25/140.33/".into(),
                opened: true,
            }]
        },
        |_, _| HazardLinks::default(),
        |d, a| {
            // This city's friends have all registered a district.
            let Some(d) = d else {
                return Ok(Recipients::nobody());
            };
            Ok(c.residents[&d.id]
                .iter()
                .filter(|(_, opted)| a == Audience::Everyone || *opted)
                .map(|(u, _)| u.clone())
                .collect())
        },
    )
    .unwrap();
    assert_eq!(enqueued.len(), decision.steps.len());
    decision
}

async fn drain(store: &Store, line: &Arc<FakeLine>) {
    let shutdown = CancellationToken::new();
    let h = tokio::spawn(delivery::run_sender(
        store.clone(),
        Arc::new(Fake(line.clone())),
        DeliveryConfig::default(),
        Arc::new(Metrics::new()),
        Arc::new(Health::new()),
        Arc::new(Notify::new()),
        shutdown.clone(),
    ));
    for _ in 0..3000 {
        let left: i64 = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM delivery_batches WHERE status IN ('pending','in_flight')",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    h.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warnings_whole_life_reaches_the_right_residents_exactly_once_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sonae.db");
    let mut store = Store::open(&db).unwrap();
    let c = city();
    let config = DisasterConfig {
        drill_audience: c.staff.clone(),
        ..DisasterConfig::default()
    };
    let line = Arc::new(FakeLine::default());

    // 1. レベル3 大雨警報: opted-in residents of 山形市 only.
    let w3 = rain("03", "大雨警報", Severity::Warning, 3, t(5, 0), t(5, 0));
    let d = cycle(&store, &c, &config, t(5, 0), std::slice::from_ref(&w3), &[]);
    assert_eq!(d.mode, Mode::Normal);
    drain(&store, &line).await;

    // 2. 大雨特別警報: everyone in 山形市, disaster mode. The same cycle twice sends nothing more.
    let w5 = rain(
        "33",
        "大雨特別警報",
        Severity::Emergency,
        5,
        t(6, 0),
        t(6, 0),
    );
    let d = cycle(&store, &c, &config, t(6, 0), std::slice::from_ref(&w5), &[]);
    assert_eq!(d.mode, Mode::Disaster);
    let again = cycle(&store, &c, &config, t(6, 1), std::slice::from_ref(&w5), &[]);
    assert!(again.steps.is_empty());
    drain(&store, &line).await;

    // 3. Restart: reopen the database; the continuing telegram sends nothing.
    drop(store);
    store = Store::open(&db).unwrap();
    let w5b = rain(
        "33",
        "大雨特別警報",
        Severity::Emergency,
        5,
        t(6, 0),
        t(6, 30),
    );
    let d = cycle(
        &store,
        &c,
        &config,
        t(6, 30),
        std::slice::from_ref(&w5b),
        &[],
    );
    assert!(d.steps.is_empty());
    assert_eq!(d.mode, Mode::Disaster);

    // 4. 訓練 telegram meanwhile: staff only. 試験: nobody.
    let mut drill = w5b.clone();
    drill.status = ReportStatus::Exercise;
    let mut test = rain("03", "大雨警報", Severity::Warning, 3, t(6, 40), t(6, 40));
    test.municipality = YAMAGATA.into();
    test.status = ReportStatus::Test;
    test.phenomenon = Phenomenon::Landslide;
    cycle(
        &store,
        &c,
        &config,
        t(6, 40),
        &[w5b.clone(), drill.clone(), test],
        &[],
    );
    drain(&store, &line).await;

    // The runner decides again every minute; at 08:59 the warning is still in force.
    let d = cycle(&store, &c, &config, t(8, 59), &[w5b.clone(), drill], &[]);
    assert!(d.steps.is_empty());

    // 5. Lifted at 09:00: everyone alerted hears it; the mode waits out the quiet hour.
    let d = cycle(&store, &c, &config, t(9, 0), &[], &[]);
    assert_eq!(d.steps.len(), 2, "the real lift and the drill lift");
    assert_eq!(d.mode, Mode::Disaster);
    drain(&store, &line).await;
    let d = cycle(&store, &c, &config, t(10, 1), &[], &[]);
    assert_eq!(d.mode, Mode::Normal);

    let inbox = line.inbox.lock().unwrap().clone();
    for (district, people) in &c.residents {
        for (u, opted) in people {
            let got = inbox.get(u).cloned().unwrap_or_default();
            if district == "tendo" {
                assert!(got.is_empty(), "天童市 is not affected: {got:?}");
                continue;
            }
            let mut expected = vec![];
            if *opted {
                expected.push("【大雨警報】山形市");
            }
            expected.push("【大雨特別警報】山形市");
            expected.push("【大雨特別警報 解除】山形市");
            assert_eq!(got.len(), expected.len(), "{got:?}");
            for (g, e) in got.iter().zip(&expected) {
                assert!(g.starts_with(e), "{g} should start with {e}");
            }
        }
    }
    for s in &c.staff {
        let got = &inbox[s];
        assert_eq!(got.len(), 2, "drill issue and drill lift: {got:?}");
        assert!(got.iter().all(|g| g.starts_with("【訓練】")), "{got:?}");
    }
    // Every resident message and every batch is accounted for.
    let alerts = store
        .read_blocking(|c| delivery::recent_alerts(c, 50))
        .unwrap();
    assert_eq!(alerts.len(), 5);
    for a in &alerts {
        assert_eq!(a.progress.sent, a.progress.planned, "{}", a.summary);
        assert_eq!(a.progress.failed, 0);
    }
    store.integrity_check().unwrap();
}

/// One engine cycle as the daemon's runtime does it (`disaster::runtime::Runtime::cycle_tx`), with the
/// shelters, links and recipients given by the test: load memory → [`decide`] → [`plan_step`] for every step → [`commit`] in one transaction.
/// Returns the decision and one [`Enqueued`] per step; wake the sender afterwards. A compose or recipient
/// error aborts the whole cycle before anything is written, so the next cycle decides again.
#[allow(clippy::too_many_arguments)]
fn run_cycle_blocking(
    store: &Store,
    config: &DisasterConfig,
    templates: &compose::Templates,
    public_url: &str,
    input: EngineInput<'_>,
    mut shelters_for: impl FnMut(&DistrictRef, Phenomenon) -> Vec<compose::ShelterRef>,
    mut links_for: impl FnMut(&str, Option<&DistrictRef>) -> compose::HazardLinks,
    mut recipients_for: impl FnMut(Option<&DistrictRef>, Audience) -> anyhow::Result<Recipients>,
) -> anyhow::Result<(Decision, Vec<Enqueued>)> {
    let memory = store.read_blocking(load_state)?;
    let decision = decide(config, &memory, input);
    let mut planned = Vec::with_capacity(decision.steps.len());
    for step in &decision.steps {
        let plans = plan_step(
            templates,
            step,
            public_url,
            &config.drill_audience,
            config.shelter_max_km,
            &mut shelters_for,
            &mut links_for,
            &mut recipients_for,
        )?;
        planned.push((step.clone(), plans));
    }
    let enqueued = store.write_blocking(|tx| {
        // The memory must not have moved since it was read (a second cycle running concurrently would
        // otherwise announce the same step twice; the unique step key would still stop the duplicate).
        let now_state = load_state(tx)?;
        anyhow::ensure!(
            now_state == memory,
            "disaster engine memory changed during the cycle; run cycles from one task"
        );
        commit(tx, &decision, &planned, delivery::now_ms())
    })?;
    Ok((decision, enqueued))
}
