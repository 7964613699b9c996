//! The `line-sandbox` program.

use std::process::Command;

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
