//! The `line-sandbox` program: bad flags are a usage error; it serves until SIGTERM and then exits cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_line-sandbox");

#[test]
fn a_share_outside_0_to_1_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["--error-rate", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--error-rate"));
}

#[test]
fn it_serves_until_sigterm_and_exits_cleanly() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kept open until the end, so the program never prints into a closed pipe (that would panic).
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    // The second line ("point the daemon at it …") is printed just before the signal handlers are installed.
    let mut second = String::new();
    stdout.read_line(&mut second).unwrap();
    assert!(second.starts_with("point the daemon at it"), "{second:?}");
    let url = first
        .trim()
        .strip_prefix("LINE stand-in listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));

    let mut conn = TcpStream::connect(url).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /sandbox/stats HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    drop(stdout);
}
