//! The foundation: CLI, config, graceful shutdown of the real binary, backup, systemd unit hardening.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::*;

#[test]
fn config_default_prints_exactly_the_deploy_example() {
    let out = Command::new(SONAE)
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/sonae.example.toml"
    ))
    .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), example);
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["check", "--help"],
        vec!["config", "default", "--help"],
        vec!["demo", "--help"],
        vec!["db", "backup", "--help"],
        vec!["residents", "import", "--help"],
        vec!["completions", "--help"],
        vec!["man", "--help"],
        vec!["line-sandbox", "--help"],
    ] {
        let out = Command::new(SONAE).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

#[test]
fn help_lists_production_commands_first_and_developer_commands_apart() {
    let out = Command::new(SONAE).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        !help.contains('\x1b'),
        "no colour codes when not on a terminal"
    );
    let (production, developer) = help
        .split_once("Developer and demo commands:")
        .expect("a section for developer commands");
    for c in [
        "run",
        "check",
        "db",
        "user",
        "richmenu",
        "residents",
        "completions",
        "man",
    ] {
        assert!(
            production.contains(&format!("\n  {c} ")),
            "{c} in:\n{production}"
        );
    }
    for c in ["demo", "demo-data", "line-sandbox"] {
        assert!(
            developer.contains(&format!("\n  {c} ")),
            "{c} in:\n{developer}"
        );
        assert!(
            !production.contains(&format!("\n  {c} ")),
            "{c} listed twice"
        );
    }
    assert!(production.contains("-c, --config <FILE>") && production.contains("SONAE_CONFIG"));
}

#[test]
fn version_names_the_git_commit_it_was_built_from() {
    let out = Command::new(SONAE).arg("--version").output().unwrap();
    assert!(out.status.success());
    let version = String::from_utf8(out.stdout).unwrap();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        version.trim(),
        format!("sonae {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_config_file_comes_from_c_or_sonae_config_before_or_after_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "127.0.0.1:1".parse().unwrap(), "");
    let ok = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8(out.stdout).unwrap();
        assert!(
            said.starts_with(&format!("{}: ok", cfg.display())),
            "{said}"
        );
    };
    ok(Command::new(SONAE).arg("-c").arg(&cfg).arg("check"));
    ok(Command::new(SONAE).args(["check", "--config"]).arg(&cfg));
    ok(Command::new(SONAE).arg("check").env("SONAE_CONFIG", &cfg));
    // The option wins over the environment; a missing file is a configuration error (2) naming it.
    let out = Command::new(SONAE)
        .args(["check", "-c", "/nonexistent/sonae.toml"])
        .env("SONAE_CONFIG", &cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/sonae.toml"));
}

#[test]
fn bash_completes_commands_and_options_from_the_generated_script() {
    let out = Command::new(SONAE)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("sonae.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // What bash does on TAB: call the completion function with the words typed so far.
    let complete = |words: &str| {
        let w: Vec<&str> = words.split(' ').collect();
        let (cur, prev) = (w[w.len() - 1], w[w.len() - 2]);
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD={}; COMP_LINE='{words}'; \
                 COMP_POINT=${{#COMP_LINE}}; _sonae sonae '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script.display(),
                w.len() - 1
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let got = complete("sonae resi");
    assert_eq!(got.trim(), "residents");
    let got = complete("sonae residents import --d");
    assert!(got.lines().any(|l| l == "--dry-run"), "{got}");
    for shell in ["zsh", "fish"] {
        let out = Command::new(SONAE)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("line-sandbox"),
            "{shell}"
        );
    }
}

#[test]
fn the_manual_page_documents_every_command() {
    let out = Command::new(SONAE).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH sonae 1"));
    assert!(
        page.contains("\\-\\-config") && page.contains("SONAE_CONFIG"),
        "{page}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(SONAE)
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "sonae.1",
        "sonae-residents-import.1",
        "sonae-line-sandbox.1",
        "sonae-db-backup.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.contains(".SH NAME"), "{page}");
    }
    let import = std::fs::read_to_string(dir.path().join("sonae-residents-import.1")).unwrap();
    assert!(import.contains("dry\\-run"), "{import}");
}

/// `cargo tree` of the sonae package: every crate its build compiles, by name and version.
fn dependency_tree(features: &[&str]) -> std::collections::BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "sonae",
            "-e",
            "normal,build",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches(" (*)").to_string())
        .collect()
}

#[test]
fn the_default_build_has_no_embedded_mqtt_broker_and_the_feature_brings_it() {
    let default = dependency_tree(&[]);
    let demo = dependency_tree(&["--features", "embedded-broker"]);
    let has = |tree: &std::collections::BTreeSet<String>, name: &str| {
        tree.iter().any(|p| p.starts_with(&format!("{name} v")))
    };
    assert!(!has(&default, "rumqttd"), "rumqttd is off by default");
    assert!(has(&default, "rumqttc"), "the MQTT client stays");
    assert!(has(&demo, "rumqttd"), "the feature adds the broker");
    // One JST helper (no time-zone database); the LINE spec is embedded as JSON (no YAML parser).
    assert!(!has(&default, "chrono-tz") && !has(&default, "serde_yaml"));
    println!(
        "dependency tree of sonae: {} crates by default, {} with --features embedded-broker",
        default.len(),
        demo.len()
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let out = Command::new(SONAE)
        .args(["no-such-command"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_reports_a_bad_config_with_exit_code_2_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:8080\"\nshutdown_deadline_secs = 99\n",
    )
    .unwrap();
    let out = Command::new(SONAE)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.shutdown_deadline_secs: 99 is out of range"),
        "{err}"
    );
}

#[test]
fn check_accepts_a_complete_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "127.0.0.1:1".parse().unwrap(), "");
    let out = Command::new(SONAE)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn daemon_serves_health_and_metrics_and_stops_on_sigterm_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = write_config(dir.path(), addr, "");
    let mut d = Daemon::start(&cfg, addr);

    let (code, body) = reqwest::get_full(&d.admin_url("/healthz")).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("\"components\""), "{body}");
    assert!(body.contains("\"store\""), "{body}");
    let (code, body) = reqwest::get_full(&d.admin_url("/metrics")).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("# TYPE sonae_uptime_seconds gauge"), "{body}");

    let sent = Instant::now();
    d.signal("TERM");
    let deadline = Duration::from_secs(5); // server.shutdown_deadline_secs in write_config
    loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "clean exit after SIGTERM");
            break;
        }
        assert!(
            sent.elapsed() < deadline + Duration::from_secs(2),
            "sonae did not exit within its deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_sigterm_the_moment_health_answers_still_stops_the_daemon_cleanly() {
    // systemd may stop the unit right after READY=1, which is sent when /healthz starts answering: the stop
    // handlers must already be installed then, or SIGTERM's default action kills the process (exit 143)
    // instead of draining it. The window is a few milliseconds wide, so try several times.
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = write_config(dir.path(), addr, "");
    let url = format!("http://{}/healthz", admin_of(&cfg));
    for attempt in 0..12 {
        let mut child = Command::new(SONAE)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while reqwest::blocking_get(&url).ok() != Some(200) {
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("not healthy within 20 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Straight from this process: spawning `kill` would take longer than the window lasts.
        extern "C" {
            fn kill(pid: i32, sig: i32) -> i32;
        }
        const SIGTERM: i32 = 15;
        // SAFETY: kill(2) on our own child's pid; no memory is shared.
        let sent = unsafe { kill(child.id() as i32, SIGTERM) };
        assert_eq!(sent, 0);
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "attempt {attempt}: SIGTERM as soon as /healthz answered: {status}"
        );
    }
}

#[test]
fn daemon_refuses_to_start_on_a_database_from_a_newer_sonae() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = write_config(dir.path(), addr, "");
    {
        let store = sonae::store::Store::open(&dir.path().join("sonae.db")).unwrap();
        store
            .write_blocking(|tx| {
                tx.execute(
                    "INSERT INTO schema_version VALUES (100000, 'future', 'x')",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
    }
    let out = Command::new(SONAE)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer than this sonae knows"));
}

#[test]
fn db_backup_copies_a_live_database() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = write_config(dir.path(), addr, "");
    let _d = Daemon::start(&cfg, addr);
    let dest = dir.path().join("backup.db");
    // Under the usual umask 022, which would make a plain new file world-readable.
    let out = Command::new("sh")
        .args([
            "-c",
            "umask 022 && exec \"$0\" db backup \"$1\" --config \"$2\"",
        ])
        .arg(SONAE)
        .arg(&dest)
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // LINE ids and password hashes: readable by the owner only, whatever the umask.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "backup mode {mode:o}");
    let copy = sonae::store::Store::open(&dest).unwrap();
    copy.integrity_check().unwrap();
    assert_eq!(
        copy.schema_version().unwrap(),
        sonae::store::MIGRATIONS.last().unwrap().0
    );
}

#[test]
fn systemd_unit_exposure_is_at_most_2() {
    for unit in ["sonae.service", "sonae-backup.service"] {
        let path = format!("{}/systemd/{unit}", env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager", &path])
            .output()
            .expect("systemd-analyze is installed by scripts/install-test-deps");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let line = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or_else(|| panic!("no exposure line in:\n{text}"));
        let value: f64 = line
            .split(':')
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("cannot read exposure from {line:?}"));
        assert!(value <= 2.0, "{unit}: exposure {value} > 2.0:\n{text}");
    }
}
