//! `sonae demo`: the daemon on embedded defaults in a temporary data directory.

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

/// Plows in the demo: the embedded broker on a free local port, 札幌市's central road network and wards,
/// and Leaflet from this checkout's `templates/web/node_modules`. Returns the broker address.
fn configure_plow_demo(
    config: &mut Config,
    data_dir: &std::path::Path,
) -> anyhow::Result<std::net::SocketAddr> {
    let roads = data_dir.join("demo-roads.geojson");
    let wards = data_dir.join("demo-wards.geojson");
    std::fs::write(&roads, DEMO_ROADS)?;
    std::fs::write(&wards, DEMO_WARDS)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let broker: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let p = &mut config.plow;
    p.enabled = true;
    p.embedded_broker = true;
    p.embedded_broker_listen = broker;
    p.broker_host = "127.0.0.1".into();
    p.broker_port = port;
    p.roads_file = Some(roads);
    p.districts_file = Some(wards);
    p.service_area = [141.33, 43.045, 141.38, 43.075];
    p.leaflet_dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/web/node_modules/leaflet/dist"
    )
    .into();
    Ok(broker)
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

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
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
    let mut config = Config::default();
    config.server.listen = args.listen;
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
    let sandbox_cfg = crate::line::sandbox::SandboxConfig::default();
    let secrets = crate::app::sandbox_secrets(&sandbox_cfg);
    let sandbox = crate::line::sandbox::Sandbox::start(sandbox_cfg).await?;
    config.line.api_base = sandbox.url();
    config.line.api_data_base = sandbox.url();

    let app = crate::app::Application::build(config, secrets).await?;
    let addr = app.local_addr();
    let ctx = app.context().clone();
    sandbox.set_webhook_url(&format!("http://{addr}/webhook"));
    // The built-in rich menus (normal tabs + emergency) on the stand-in, so the mode switch has menus to show.
    let menus = crate::line::richmenu::embedded_templates(&ctx.config.server.public_url)?;
    if let Err(e) = crate::line::richmenu::sync(&ctx.line.client, &ctx.infra.store, &menus).await {
        tracing::warn!(error = %format!("{e:#}"), "rich-menu sync on the stand-in failed; menus will not switch");
    }
    let residents = simulate_residents(&ctx, &sandbox, DEMO_RESIDENTS).await?;
    let roads = ctx
        .plow
        .coverage
        .as_ref()
        .map(|c| c.lock().unwrap_or_else(|p| p.into_inner()).net.clone());
    if let Some(roads) = roads {
        // The fleet connects with retries, so it may start before the embedded broker listens.
        crate::plow::replay::spawn_demo_fleet(broker, roads, ctx.infra.shutdown.clone());
    }
    let (console_user, console_password) =
        crate::console::users::demo_account(&app.context().infra.store)?;
    println!("Sonae demo");
    println!("  data directory : {}", data_dir.display());
    println!("  health         : http://{addr}/healthz");
    println!("  metrics        : http://{addr}/metrics");
    println!(
        "  plow map       : http://{addr}/plows   (demo fleet on 札幌市 roads, MQTT {broker})"
    );
    println!("  plow dispatch  : http://{addr}/console/plows  (console login below)");
    println!("  console        : http://{addr}/console/  (user {console_user}, password {console_password})");
    println!(
        "  LINE stand-in  : {}   ({residents} simulated residents; /sandbox/users/ID/messages shows what each received)",
        sandbox.url()
    );
    println!("  shelters       : http://{addr}/shelters?district=ID&hazard=flood");
    println!(
        "  JMA feed       : {}   (constructed scenario feeds/demo-heavy-rain at {}x speed)",
        replay.feed_url("extra"),
        args.speed
    );
    println!("Press Ctrl-C to stop.");
    app.run_until_stopped(crate::app::stop_signal()).await
}
