//! End-to-end tests in Debian's Chromium: each test starts the real daemon, prepares accounts with the
//! `sonae` command line, and runs one script of `tests/browser/` (Playwright's library driving
//! `/usr/bin/chromium`) that types, clicks and reads the pages. `scripts/install-test-deps` installs Chromium,
//! Node and the script's npm packages. Screenshots go to `target/screenshots/`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::helpers::{free_port, write_config, Daemon, SONAE};

const PASSWORD: &str = "kasumi-ga-seki-2026";

fn add_user(config: &Path, name: &str, role: &str) {
    let mut child = Command::new(SONAE)
        .args(["user", "add", name, "--role", role, "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `tests/browser/<script>` against the daemon; fails the test with the script's output on failure.
fn run_script(script: &str, daemon: &Daemon, env: &[(&str, &str)]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run scripts/install-test-deps"
    );
    let out = Command::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("SONAE_URL", daemon.url(""))
        .env("SONAE_SCREENSHOTS", screenshots_dir())
        .envs(env.iter().copied())
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn staff_log_in_by_typing_hold_and_release_disaster_mode_and_log_out_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(dir.path(), addr, "");
    add_user(&config, "suzuki", "approver");
    let daemon = Daemon::start(&config, addr);
    let out = run_script(
        "console_basics.mjs",
        &daemon,
        &[("SONAE_APPROVER", "suzuki"), ("SONAE_PASSWORD", PASSWORD)],
    );
    assert!(out.contains("[console_basics] ok"), "{out}");
}

#[test]
fn an_admin_adds_resets_and_disables_accounts_and_a_new_user_must_choose_a_password_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(dir.path(), addr, "");
    add_user(&config, "yamada", "admin");
    let daemon = Daemon::start(&config, addr);
    let out = run_script(
        "console_users.mjs",
        &daemon,
        &[("SONAE_ADMIN", "yamada"), ("SONAE_PASSWORD", PASSWORD)],
    );
    assert!(out.contains("[console_users] ok"), "{out}");
}
