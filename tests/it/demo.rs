//! `sonae demo`, the README's first command, run as a person runs it: the real binary, its printed
//! addresses, the maps with Leaflet from the binary, and the plow fleet moving through an MQTT broker — the
//! embedded one in a build with the `embedded-broker` feature (as `scripts/demo` builds), else an installed
//! mosquitto started by the demo and stopped with it.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{free_port, reqwest::get_full, Daemon, SONAE};

#[test]
fn the_demo_prints_where_to_look_and_its_plows_move_on_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = Command::new(SONAE)
        .args(["demo", "--listen", &addr.to_string(), "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut printed = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let admin: std::net::SocketAddr = printed
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("health, metrics: http://"))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no admin address in:\n{printed}"))
        .parse()
        .unwrap();
    let demo = Daemon { child, addr, admin };
    assert!(
        printed.contains(&format!("http://{addr}/console/")),
        "{printed}"
    );
    let broker_line = printed
        .lines()
        .find(|l| l.trim_start().starts_with("plow map"))
        .unwrap_or_else(|| panic!("no plow map line in:\n{printed}"));
    let expected = if cfg!(feature = "embedded-broker") {
        "embedded MQTT broker 127.0.0.1:"
    } else {
        "mosquitto 127.0.0.1:"
    };
    assert!(broker_line.contains(expected), "{broker_line}");
    let broker: std::net::SocketAddr = broker_line
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .parse()
        .unwrap();

    let (code, js) = get_full(&demo.url("/assets/leaflet/leaflet.js")).unwrap();
    assert_eq!(code, 200);
    assert!(js.contains("Leaflet 1.9.4"));
    // The demo fleet publishes positions; the map's API shows the vehicles.
    let start = Instant::now();
    loop {
        let (code, body) = get_full(&demo.url("/api/plows/vehicles")).unwrap();
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["vehicles"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no plow reached the map: {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    demo.signal("TERM");
    let mut demo = demo;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = demo.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "the demo did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    if !cfg!(feature = "embedded-broker") {
        // The demo's mosquitto stopped with it.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            TcpStream::connect(broker).is_err(),
            "mosquitto still listens on {broker}"
        );
    }
}
