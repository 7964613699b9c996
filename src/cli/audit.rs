//! `sonae audit verify`: checks the audit log's hash chain (`console::seal`) from the command line, so a
//! monitor or an auditor can run it without a console session. Exit 0 with a short summary when the chain is
//! whole, 1 naming the first bad row when it is broken, 2 on a configuration error.
//!
//! The database is opened read-only: verifying never seals, migrates or otherwise writes anything, so it is
//! safe next to the running daemon (WAL readers never block its writer).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{load_config, runtime_error, EXIT_RUNTIME};
use crate::console::seal;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's SHA-256 hash chain: exit 0 with a summary when it is whole, 1 naming the first
    /// row that was edited, deleted or slipped in.
    Verify {
        /// Check this database file instead of the one named in the configuration.
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

pub fn run(config: &Path, cmd: AuditCommand) -> ExitCode {
    let AuditCommand::Verify { db } = cmd;
    let path = match db {
        Some(p) => p,
        None => match load_config(config) {
            Ok(c) => c.store.path,
            Err(code) => return code,
        },
    };
    match verify_file(&path) {
        Ok(Outcome::Whole(lines)) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Ok(Outcome::Broken(lines)) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::from(EXIT_RUNTIME)
        }
        Err(e) => runtime_error(e),
    }
}

enum Outcome {
    Whole(Vec<String>),
    Broken(Vec<String>),
}

fn verify_file(path: &Path) -> anyhow::Result<Outcome> {
    if !path.is_file() {
        anyhow::bail!(
            "データベース {} がありません（store.path か --db を確認してください）",
            path.display()
        );
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening database {} read-only", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let has_seal: bool = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_seal'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_seal {
        anyhow::bail!(
            "{} に監査ログの封印（audit_seal）がありません。Sonae のデータベースではないか、古い版のままです（sonae run で更新されます）",
            path.display()
        );
    }
    // One read transaction, so the chain and the rows it is compared with are one snapshot.
    conn.execute_batch("BEGIN")?;
    let v = seal::verify(&conn)?;
    let (rows, max_id): (i64, Option<i64>) =
        conn.query_row("SELECT count(*), max(id) FROM audit_log", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let head_id = seal::head(&conn)?.map(|(id, _)| id);
    let outcome = match v.first_break {
        None => {
            let mut lines = vec![format!(
                "監査ログのハッシュチェーンは正常です: 封印済み {} 行を確認しました（監査ログ全体 {rows} 行）。",
                v.sealed
            )];
            if let Some(h) = head_id {
                lines.push(format!("先頭: 監査ID {h}、ハッシュ {}", v.head));
            }
            let unsealed = match (head_id, max_id) {
                (Some(h), Some(m)) if m > h => m - h,
                (None, Some(_)) => rows,
                _ => 0,
            };
            if unsealed > 0 {
                lines.push(format!(
                    "未封印 {unsealed} 行（監査ID {} 以降）: 稼働中のデーモンが {} 秒ごとに封印します。",
                    head_id.map_or(1, |h| h + 1),
                    seal::SEAL_INTERVAL_SECS
                ));
            }
            Outcome::Whole(lines)
        }
        Some(id) => {
            let (what, row) = describe_break(&conn, id)?;
            Outcome::Broken(vec![
                format!("監査ログのハッシュチェーンが監査ID {id} の行で切れています: {what}。"),
                match row {
                    Some(r) => format!("その行: {r}"),
                    None => "その行: （監査ログにありません）".into(),
                },
                format!(
                    "この行以降の記録は改ざん・削除・挿入された可能性があります（封印済み {} 行を確認）。データベースのバックアップと /api/status の audit_head の控えと照合してください。",
                    v.sealed
                ),
            ])
        }
    };
    conn.execute_batch("COMMIT")?;
    Ok(outcome)
}

/// Why the chain breaks at `id`, and the row as it is now (when it still exists).
fn describe_break(conn: &Connection, id: i64) -> anyhow::Result<(&'static str, Option<String>)> {
    let row: Option<String> = conn
        .query_row(
            "SELECT at || ' ' || actor || ' ' || action || ' ' || detail FROM audit_log WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    let sealed: bool = conn.query_row(
        "SELECT count(*) FROM audit_seal WHERE audit_id = ?1",
        [id],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    let what = match (&row, sealed) {
        (None, _) => "封印された行が監査ログから削除されています",
        (Some(_), false) => "封印のない行が封印済みの範囲に入っています（挿入、または封印の削除）",
        (Some(_), true) => {
            "行の内容（またはその封印）が封印した時点と一致しません（書き換え、または手前の行の削除）"
        }
    };
    Ok((what, row))
}
