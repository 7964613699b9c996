//! Read models over the core `audit_log` and `problems` tables, paged for the console.

use rusqlite::{Connection, Transaction};
use serde::Serialize;

use crate::store::Store;

/// Rows per page on the 監査ログ and 問題一覧 pages.
pub const PAGE_SIZE: i64 = 50;

#[derive(Clone, Debug, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProblemRow {
    pub id: i64,
    pub at: String,
    pub source: String,
    pub message: String,
    pub detail: Option<String>,
    pub resolved_at: Option<String>,
}

/// One page of rows, newest first, with the total for the pager.
#[derive(Clone, Debug, Serialize)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub page: i64,
    pub pages: i64,
    pub total: i64,
}

fn pages(total: i64) -> i64 {
    ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1)
}

/// `page` counts from 1; out-of-range pages are clamped.
pub fn audit_page(conn: &Connection, page: i64) -> anyhow::Result<Page<AuditRow>> {
    let total: i64 = conn.query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))?;
    let page = page.clamp(1, pages(total));
    let mut st = conn.prepare(
        "SELECT id, at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT ?1 OFFSET ?2",
    )?;
    let rows = st
        .query_map([PAGE_SIZE, (page - 1) * PAGE_SIZE], |r| {
            Ok(AuditRow {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                detail: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        rows,
        page,
        pages: pages(total),
        total,
    })
}

/// Problems, newest first; only unresolved ones unless `all`.
pub fn problem_page(conn: &Connection, page: i64, all: bool) -> anyhow::Result<Page<ProblemRow>> {
    let filter = if all { "" } else { "WHERE resolved_at IS NULL" };
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM problems {filter}"),
        [],
        |r| r.get(0),
    )?;
    let page = page.clamp(1, pages(total));
    let mut st = conn.prepare(&format!(
        "SELECT id, at, source, message, detail, resolved_at FROM problems {filter}
         ORDER BY id DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = st
        .query_map([PAGE_SIZE, (page - 1) * PAGE_SIZE], |r| {
            Ok(ProblemRow {
                id: r.get(0)?,
                at: r.get(1)?,
                source: r.get(2)?,
                message: r.get(3)?,
                detail: r.get(4)?,
                resolved_at: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        rows,
        page,
        pages: pages(total),
        total,
    })
}

pub fn open_problem_count(conn: &Connection) -> anyhow::Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM problems WHERE resolved_at IS NULL",
        [],
        |r| r.get(0),
    )?)
}

/// Marks a problem resolved (audited as `problem.resolve`). `Ok(false)` when it does not exist or was
/// already resolved.
pub fn resolve_problem(
    tx: &Transaction<'_>,
    id: i64,
    actor: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<bool> {
    let n = tx.execute(
        "UPDATE problems SET resolved_at = ?1 WHERE id = ?2 AND resolved_at IS NULL",
        rusqlite::params![now.to_rfc3339(), id],
    )?;
    if n == 1 {
        Store::audit(
            tx,
            actor,
            "problem.resolve",
            &serde_json::json!({ "problem_id": id }),
        )?;
    }
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn problems_page_newest_first_and_resolving_hides_them_and_audits() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        for i in 0..(PAGE_SIZE + 3) {
            s.record_problem("jma.feed", format!("問題 {i}"), None)
                .await;
        }
        let p1 = s.read_blocking(|c| problem_page(c, 1, false)).unwrap();
        assert_eq!(p1.total, PAGE_SIZE + 3);
        assert_eq!(p1.pages, 2);
        assert_eq!(p1.rows.len() as i64, PAGE_SIZE);
        assert_eq!(p1.rows[0].message, format!("問題 {}", PAGE_SIZE + 2));
        let p2 = s.read_blocking(|c| problem_page(c, 99, false)).unwrap();
        assert_eq!(p2.page, 2);
        assert_eq!(p2.rows.len(), 3);

        let id = p1.rows[0].id;
        let now = chrono::Utc::now();
        assert!(s
            .write_blocking(|tx| resolve_problem(tx, id, "sato", now))
            .unwrap());
        assert!(!s
            .write_blocking(|tx| resolve_problem(tx, id, "sato", now))
            .unwrap());
        assert_eq!(s.read_blocking(open_problem_count).unwrap(), PAGE_SIZE + 2);
        let all = s.read_blocking(|c| problem_page(c, 1, true)).unwrap();
        assert_eq!(all.total, PAGE_SIZE + 3);
        let audit = s.read_blocking(|c| audit_page(c, 1)).unwrap();
        assert_eq!(audit.total, 1);
        assert_eq!(audit.rows[0].action, "problem.resolve");
        assert_eq!(audit.rows[0].actor, "sato");
    }
}
