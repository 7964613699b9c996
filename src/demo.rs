//! `sonae demo`: the daemon on embedded defaults in a temporary data directory.
//!
//! It prints its own progress on stdout — each start-up step, then what happens while it runs (warnings in
//! force, mode changes, alerts and their delivery) — and logs only warnings and errors of its own; the
//! embedded MQTT broker's log is off (`RUST_LOG` overrides both).
//!
//! Plows need an MQTT broker: the embedded one in a build with the cargo feature `embedded-broker` (what
//! `scripts/demo` builds), else an installed mosquitto started as a child, else the demo runs without them.

use std::path::PathBuf;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address the demo's web server listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Keep data here instead of a fresh temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// How much faster than real time the recorded heavy-rain scenario plays (120: one scenario hour
    /// every 30 seconds, so its 14 hours take 7 minutes).
    #[arg(long, default_value_t = 120.0)]
    pub speed: f64,
}

const DEMO_ROADS: &str = include_str!("../deploy/demo/sapporo-central-authorized-roads.geojson");
const DEMO_WARDS: &str = include_str!("../deploy/demo/sapporo-wards.geojson");

/// The MQTT broker the demo's plows publish to.
enum DemoBroker {
    /// rumqttd in process (a build with the cargo feature `embedded-broker`, as `scripts/demo` makes).
    Embedded(std::net::SocketAddr),
    /// An installed mosquitto, started as a child on a free port and stopped with the demo.
    Mosquitto(crate::plow::broker::ChildMosquitto),
}

impl DemoBroker {
    fn addr(&self) -> std::net::SocketAddr {
        match self {
            DemoBroker::Embedded(a) => *a,
            DemoBroker::Mosquitto(m) => m.listen,
        }
    }

    fn describe(&self) -> String {
        match self {
            DemoBroker::Embedded(a) => format!("embedded MQTT broker {a}"),
            DemoBroker::Mosquitto(m) => format!("mosquitto {}", m.listen),
        }
    }
}

/// Plows in the demo, when a broker is at hand: the embedded one if this build has it, else an installed
/// mosquitto; 札幌市's central road network and wards. Without either the demo runs without plows.
fn configure_plow_demo(
    config: &mut Config,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<DemoBroker>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let broker = if crate::plow::broker::EMBEDDED {
        DemoBroker::Embedded(addr)
    } else if let Some(program) = crate::plow::broker::find_mosquitto() {
        DemoBroker::Mosquitto(crate::plow::broker::ChildMosquitto::start(
            &program, addr, data_dir,
        )?)
    } else {
        return Ok(None);
    };
    let roads = data_dir.join("demo-roads.geojson");
    let wards = data_dir.join("demo-wards.geojson");
    std::fs::write(&roads, DEMO_ROADS)?;
    std::fs::write(&wards, DEMO_WARDS)?;
    let p = &mut config.plow;
    p.enabled = true;
    p.embedded_broker = matches!(broker, DemoBroker::Embedded(_));
    p.embedded_broker_listen = addr;
    p.broker_host = "127.0.0.1".into();
    p.broker_port = port;
    p.roads_file = Some(roads);
    p.districts_file = Some(wards);
    p.service_area = [141.33, 43.045, 141.38, 43.075];
    Ok(Some(broker))
}

/// Simulated residents registered in the demo city (a few thousand, spread over its districts).
pub const DEMO_RESIDENTS: usize = 3000;

/// Registers `n` simulated residents: friends of the account in the stand-in and residents of the demo
/// city's districts in the store (round robin over the districts).
async fn simulate_residents(
    ctx: &crate::app::Context,
    sandbox: &crate::line::sandbox::SandboxHandle,
    n: usize,
) -> anyhow::Result<usize> {
    let place = ctx
        .place
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the demo's place data did not load"))?;
    let ids: Vec<String> = place.districts.all().iter().map(|d| d.id.clone()).collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let users: Vec<String> = (1..=n as u128)
        .map(|i| format!("U{:032x}", 0xde30_0000u128 + i))
        .collect();
    sandbox.with_state(|s| {
        for u in &users {
            s.follow(u, None);
        }
    });
    ctx.infra
        .store
        .write(move |tx| {
            for (i, u) in users.iter().enumerate() {
                let user = crate::ids::LineUserId::new(u.clone());
                crate::resident::follow_tx(tx, &user)?;
                crate::resident::set_district_tx(tx, &user, &ids[(i * 7919) % ids.len()])?;
            }
            Ok(())
        })
        .await?;
    Ok(n)
}

/// The demo's log filter: its own warnings and errors only, nothing from the embedded broker (which logs
/// every connection at INFO and every disconnection as an ERROR).
pub const LOG_FILTER: &str = "warn,rumqttd=off";

/// One progress line on stdout, flushed at once (the demo's output is often piped).
fn step(text: impl std::fmt::Display) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let _ = crate::telemetry::init(
        &crate::config::LogConfig {
            filter: LOG_FILTER.into(),
            ..Default::default()
        },
        std::io::stderr,
    );
    let (data_dir, _guard) = match args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            (d, None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("sonae-demo-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    step(format!(
        "Sonae demo: 札幌市, data in {}",
        data_dir.display()
    ));
    let mut config = Config::default();
    config.server.listen = args.listen;
    // Health and metrics on a free loopback port, so two demos (or a demo and a daemon) do not collide.
    config.server.admin_listen = "127.0.0.1:0".parse().expect("valid address");
    config.server.public_url = format!("http://{}", args.listen);
    config.store.path = data_dir.join("sonae.db");
    let broker = configure_plow_demo(&mut config, &data_dir)?;
    // The demo city (札幌市): districts and GSI shelters from deploy/demo, so the disaster runtime, the
    // registration flow and the shelter page run.
    config.place.city_name = "札幌市".into();
    config.place.districts = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/demo/sapporo-districts.geojson"
    )
    .into();
    config.place.shelters = vec![concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv"
    )
    .into()];
    // The recorded (constructed) heavy-rain scenario, served over local HTTP exactly like JMA's feeds, with
    // every timestamp shifted so it happens now.
    let scenario_dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/feeds/demo-heavy-rain"
    ));
    step("  starting the JMA feed replay (feeds/demo-heavy-rain) …");
    let scenario = crate::jma::replay::Scenario::load(scenario_dir)?;
    let replay = crate::jma::replay::ReplayServer::start(
        scenario,
        "127.0.0.1:0".parse().expect("valid address"),
        args.speed,
        chrono::Utc::now(),
        // Runs as long as the demo process.
        tokio_util::sync::CancellationToken::new(),
    )
    .await?;
    config.jma.feeds = vec![replay.feed_url("extra")];
    config.jma.poll_interval_secs = 10;
    // Leave disaster mode one minute after the last trigger, so the whole cycle shows in a few minutes.
    config.disaster.quiet_period_secs = 60;

    // The LINE stand-in in process: the daemon's client talks to it, its simulated residents' events go to
    // the daemon's webhook.
    step("  starting the LINE stand-in …");
    let sandbox_cfg = crate::line::sandbox::SandboxConfig::default();
    let secrets = crate::app::sandbox_secrets(&sandbox_cfg);
    let sandbox = crate::line::sandbox::Sandbox::start(sandbox_cfg).await?;
    config.line.api_base = sandbox.url();
    config.line.api_data_base = sandbox.url();

    step("  loading 札幌市's districts and shelters, opening the database …");
    let app = crate::app::Application::build(config, secrets).await?;
    let addr = app.local_addr();
    let admin = app.admin_addr();
    if let Some(place) = &app.context().place {
        step(format!(
            "  {} districts, {} shelters loaded",
            place.districts.len(),
            place.shelters.len()
        ));
    }
    let ctx = app.context().clone();
    sandbox.set_webhook_url(&format!("http://{addr}/webhook"));
    // The built-in rich menus (normal tabs + emergency) on the stand-in, so the mode switch has menus to show.
    step("  creating the rich menus on the stand-in …");
    let menus = crate::line::richmenu::embedded_templates(&ctx.config.server.public_url)?;
    if let Err(e) = crate::line::richmenu::sync(&ctx.line.client, &ctx.infra.store, &menus).await {
        tracing::warn!(error = %format!("{e:#}"), "rich-menu sync on the stand-in failed; menus will not switch");
    }
    step(format!(
        "  registering {DEMO_RESIDENTS} simulated residents …"
    ));
    let residents = simulate_residents(&ctx, &sandbox, DEMO_RESIDENTS).await?;
    let roads = ctx
        .plow
        .coverage
        .as_ref()
        .map(|c| c.lock().unwrap_or_else(|p| p.into_inner()).net.clone());
    if let (Some(roads), Some(broker)) = (roads, &broker) {
        // The fleet connects with retries, so it may start before the embedded broker listens.
        step("  starting 4 demo plows on 札幌市 roads …");
        crate::plow::replay::spawn_demo_fleet(broker.addr(), roads, ctx.infra.shutdown.clone());
    }
    let (console_user, console_password) =
        crate::console::users::demo_account(&app.context().infra.store)?;
    step("Sonae demo is running");
    step(format!("  console        : http://{addr}/console/  (user {console_user}, password {console_password})"));
    step(format!(
        "  LINE stand-in  : {}   ({residents} simulated residents; /sandbox/users/ID/messages shows what each received)",
        sandbox.url()
    ));
    step(format!(
        "  shelters       : http://{addr}/shelters?district=ID&hazard=flood"
    ));
    step(match &broker {
        Some(b) => format!(
            "  plow map       : http://{addr}/plows   (demo fleet on 札幌市 roads, {})",
            b.describe()
        ),
        None => "  plow map       : off — no MQTT broker: install mosquitto (apt install mosquitto) or build \
                 with `--features embedded-broker` (scripts/demo does)"
            .to_string(),
    });
    step(format!(
        "  plow dispatch  : http://{addr}/console/plows  (console login above)"
    ));
    step(format!(
        "  health, metrics: http://{admin}/healthz, http://{admin}/metrics  (admin listener)"
    ));
    step(format!(
        "  JMA feed       : {}   (constructed scenario feeds/demo-heavy-rain at {}x speed)",
        replay.feed_url("extra"),
        args.speed
    ));
    step("Press Ctrl-C to stop. What happens from now on:");
    ctx.infra
        .tasks
        .spawn(narrate(ctx.infra.store.clone(), ctx.infra.shutdown.clone()));
    let result = app.run_until_stopped(crate::app::stop_signal()).await;
    // A child mosquitto stops with the demo.
    drop(broker);
    result
}

/// Prints what happens while the demo runs, every 2 s: warnings coming into force and lifted, mode changes,
/// alerts queued and delivered. Reads the same tables the console does.
async fn narrate(store: crate::store::Store, stop: tokio_util::sync::CancellationToken) {
    use crate::console::providers::{DeliverySource as _, WarningSource as _};
    use std::collections::{BTreeSet, HashMap};
    let warnings = crate::console::live::LiveWarnings(store.clone());
    let deliveries = crate::console::live::LiveDeliveries(store.clone());
    let mut mode: Option<(crate::mode::Mode, bool)> = None;
    let mut active: BTreeSet<(String, String)> = BTreeSet::new();
    let mut done: HashMap<String, bool> = HashMap::new();
    let mut first = true;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        // Cancel-safety: both branches only wait.
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = chrono::Local::now().format("%H:%M:%S");
        if let Ok(m) = store.read(crate::mode::current_mode).await {
            let seen = (m.effective(), m.manual_hold);
            if mode != Some(seen) {
                let how = if m.manual_hold {
                    "（手動保持）"
                } else {
                    ""
                };
                step(format!("[{now}] mode: {}{how}", m.effective().label_ja()));
                mode = Some(seen);
            }
        }
        if let Ok(rows) = warnings.active_warnings().await {
            let now_active: BTreeSet<(String, String)> = rows
                .iter()
                .map(|w| (w.municipality_name.clone(), w.kind_name.clone()))
                .collect();
            for (muni, kind) in now_active.difference(&active) {
                step(format!("[{now}] 気象庁: {muni} {kind} 発表"));
            }
            for (muni, kind) in active.difference(&now_active) {
                step(format!("[{now}] 気象庁: {muni} {kind} 解除"));
            }
            active = now_active;
        }
        if let Ok(rows) = deliveries.deliveries().await {
            for d in rows {
                let finished = d.pending() == 0;
                let before = done.insert(d.alert_id.clone(), finished);
                // Alerts from before the demo started (a reused --data-dir) are not news.
                if first {
                    continue;
                }
                if before.is_none() {
                    step(format!(
                        "[{now}] alert queued: {} → {} residents",
                        d.title, d.planned
                    ));
                }
                if finished && before != Some(true) {
                    step(format!(
                        "[{now}] alert delivered: {} ({} sent, {} failed)",
                        d.title, d.sent, d.failed
                    ));
                }
            }
        }
        first = false;
    }
}
