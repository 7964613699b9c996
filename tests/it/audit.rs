//! `sonae audit verify` as an auditor runs it: the real binary against a real SQLite file whose audit log the
//! test writes and seals through the library, then tampers with straight SQL.

use std::net::SocketAddr;
use std::process::Command;

use crate::helpers::{free_port, write_config, SONAE};
use sonae::store::Store;

fn verify(config: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(SONAE)
        .args(["audit", "verify", "--config"])
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn audit_verify_passes_a_whole_chain_and_names_the_first_tampered_row() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(dir.path(), addr, "");
    let db = dir.path().join("sonae.db");
    let store = Store::open(&db).unwrap();
    store
        .write_blocking(|tx| {
            for i in 0..5 {
                Store::audit(
                    tx,
                    "tanaka",
                    "shelter.status",
                    &serde_json::json!({ "i": i }),
                )?;
            }
            sonae::console::seal::seal(tx)?;
            // Two rows after the last seal: not yet sealed, which is not a break.
            for i in 5..7 {
                Store::audit(tx, "suzuki", "mode.hold", &serde_json::json!({ "i": i }))?;
            }
            Ok(())
        })
        .unwrap();

    let (code, out, err) = verify(&config);
    assert_eq!(code, 0, "whole chain: {out}{err}");
    assert!(out.contains("正常"), "{out}");
    assert!(out.contains("封印済み 5 行"), "{out}");
    assert!(out.contains("未封印 2 行"), "{out}");
    // Verifying wrote nothing: still 5 seals.
    let seals: i64 = store
        .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM audit_seal", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(seals, 5);

    // Someone with access to the file edits the third row.
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute(
        "UPDATE audit_log SET actor = 'someone-else' WHERE id = 3",
        [],
    )
    .unwrap();
    let (code, out, err) = verify(&config);
    assert_eq!(code, 1, "broken chain: {out}{err}");
    assert!(out.contains("監査ID 3 の行で切れています"), "{out}");
    assert!(out.contains("someone-else"), "the bad row is shown: {out}");

    // Put it back and delete the second row instead: the break moves to row 2.
    c.execute_batch(
        "UPDATE audit_log SET actor = 'tanaka' WHERE id = 3; DELETE FROM audit_log WHERE id = 2;",
    )
    .unwrap();
    let (code, out, _) = verify(&config);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("監査ID 2 の行で切れています"), "{out}");
    assert!(out.contains("削除"), "{out}");
}

#[test]
fn audit_verify_on_a_missing_database_says_so_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(SONAE)
        .args(["audit", "verify", "--db"])
        .arg(dir.path().join("nothing.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("がありません"), "{err}");
    assert!(
        !dir.path().join("nothing.db").exists(),
        "nothing was created"
    );
}
