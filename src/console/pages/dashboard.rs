//! `GET /console/` (the dashboard) and `GET /api/status` (the same data as JSON, for monitoring).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::console::auth::Session;
use crate::console::error::ConsoleError;
use crate::console::{
    page_ctx, records, render, seal, ConsoleState, DeliveryRow, PageQuery, Role, ShelterRow,
    ShelterStatus, WarningRow,
};
use crate::mode::{self, ModeState};

/// Warnings of one municipality, for display.
#[derive(Serialize)]
struct MunicipalityWarnings {
    code: String,
    name: String,
    /// Highest 警戒レベル among its warnings (for the row colour).
    level: Option<u8>,
    /// Any warning above 注意報: shown at once; 注意報-only municipalities are folded.
    serious: bool,
    warnings: Vec<WarningRow>,
}

fn group_warnings(rows: Vec<WarningRow>) -> Vec<MunicipalityWarnings> {
    let mut by: BTreeMap<String, MunicipalityWarnings> = BTreeMap::new();
    for w in rows {
        let e = by
            .entry(w.municipality_code.clone())
            .or_insert_with(|| MunicipalityWarnings {
                code: w.municipality_code.clone(),
                name: w.municipality_name.clone(),
                level: None,
                serious: false,
                warnings: vec![],
            });
        e.level = e.level.max(w.level);
        e.serious |= w.severity != "注意報";
        e.warnings.push(w);
    }
    let mut v: Vec<_> = by.into_values().collect();
    for m in &mut v {
        m.warnings
            .sort_by(|a, b| b.level.cmp(&a.level).then(a.kind_code.cmp(&b.kind_code)));
    }
    v
}

#[derive(Serialize)]
struct DeliveryView {
    #[serde(flatten)]
    row: DeliveryRow,
    pending: u64,
    percent_done: u64,
}

/// The counts at the top of the dashboard, so the state of the city reads in one line.
#[derive(Serialize)]
struct Summary {
    /// Warnings above 注意報, and the municipalities they are in.
    serious_warnings: usize,
    serious_municipalities: usize,
    advisories: usize,
    advisory_municipalities: usize,
    /// Deliveries with recipients not yet sent or failed, and those finished (of the recent ones listed).
    in_progress: usize,
    finished: usize,
    pending_recipients: u64,
    failed_recipients: u64,
}

fn summarize(warnings: &[MunicipalityWarnings], deliveries: &[DeliveryView]) -> Summary {
    let all = || warnings.iter().flat_map(|m| &m.warnings);
    let in_progress: Vec<&DeliveryView> = deliveries.iter().filter(|d| d.pending > 0).collect();
    Summary {
        serious_warnings: all().filter(|w| w.severity != "注意報").count(),
        serious_municipalities: warnings.iter().filter(|m| m.serious).count(),
        advisories: all().filter(|w| w.severity == "注意報").count(),
        advisory_municipalities: warnings.iter().filter(|m| !m.serious).count(),
        in_progress: in_progress.len(),
        finished: deliveries.len() - in_progress.len(),
        pending_recipients: in_progress.iter().map(|d| d.pending).sum(),
        failed_recipients: deliveries.iter().map(|d| d.row.failed).sum(),
    }
}

/// 安否: the answers to the latest evacuation alert that asked for them, and the 「助けが必要」 not yet done.
#[derive(Serialize)]
struct SafetySummary {
    /// The alert's summary line (none in the last two days: no alert asks for answers now).
    alert: Option<String>,
    evacuated: i64,
    safe: i64,
    help: i64,
    /// Requests for help still open or in progress, whatever the alert.
    help_open: i64,
}

fn safety_summary(
    c: &rusqlite::Connection,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<SafetySummary> {
    let help_open = c.query_row(
        "SELECT count(*) FROM safety_replies WHERE answer = 'help' AND follow_up != 'done'",
        [],
        |r| r.get(0),
    )?;
    let mut out = SafetySummary {
        alert: None,
        evacuated: 0,
        safe: 0,
        help: 0,
        help_open,
    };
    if let Some((reference, summary)) = crate::disaster::safety::latest(c, now)? {
        for d in crate::disaster::safety::counts(c, &reference)? {
            out.evacuated += d.evacuated;
            out.safe += d.safe;
            out.help += d.help;
        }
        out.alert = Some(summary);
    }
    Ok(out)
}

#[derive(Serialize)]
struct ShelterSummary {
    open: usize,
    full: usize,
    closed: usize,
    /// No status set: designated, not announced as open.
    unknown: usize,
}

/// Everything the dashboard and `/api/status` show, gathered once.
#[derive(Serialize)]
struct Status {
    generated_at: String,
    mode: serde_json::Value,
    summary: Summary,
    safety: SafetySummary,
    warnings: Vec<MunicipalityWarnings>,
    deliveries: Vec<DeliveryView>,
    shelters: ShelterSummary,
    open_shelters: Vec<ShelterRow>,
    open_problems: i64,
    recent_problems: Vec<records::ProblemRow>,
}

async fn gather(st: &ConsoleState, mode: &ModeState) -> anyhow::Result<Status> {
    let warnings = st.providers.warnings.active_warnings().await?;
    let deliveries = st.providers.deliveries.deliveries().await?;
    let shelters = st.providers.shelters.shelters().await?;
    let now = st.now();
    let (open_problems, recent, safety) = st
        .ctx
        .store
        .read(move |c| {
            let n = records::open_problem_count(c)?;
            let mut p = records::problem_page(c, 1, false)?;
            p.rows.truncate(5);
            Ok((n, p.rows, safety_summary(c, now)?))
        })
        .await?;
    let count = |s: ShelterStatus| shelters.iter().filter(|x| x.status == s).count();
    let warnings = group_warnings(warnings);
    let deliveries: Vec<DeliveryView> = deliveries
        .into_iter()
        .map(|row| DeliveryView {
            pending: row.pending(),
            percent_done: row.percent_done(),
            row,
        })
        .collect();
    Ok(Status {
        summary: summarize(&warnings, &deliveries),
        safety,
        generated_at: st.now().to_rfc3339(),
        mode: serde_json::json!({
            "mode": mode.effective(),
            "label": mode.effective().label_ja(),
            "stored_mode": mode.mode,
            "manual_hold": mode.manual_hold,
            "since": mode.mode_since,
            "changed_by": mode.changed_by,
            "reason": mode.reason,
            "hold_by": mode.hold_by,
            "hold_since": mode.hold_since,
        }),
        warnings,
        deliveries,
        shelters: ShelterSummary {
            open: count(ShelterStatus::Open),
            full: count(ShelterStatus::Full),
            closed: count(ShelterStatus::Closed),
            unknown: count(ShelterStatus::Unknown),
        },
        // Opened by the city (and full): a shelter without a status is not open.
        open_shelters: shelters
            .iter()
            .filter(|s| matches!(s.status, ShelterStatus::Open | ShelterStatus::Full))
            .cloned()
            .collect(),
        open_problems,
        recent_problems: recent,
    })
}

/// Seconds between live refreshes of the dashboard (by `console.js`; without JavaScript, reload by hand).
const DASHBOARD_REFRESH_SECS: u32 = 15;

pub async fn page(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let status = gather(&st, &a.mode).await?;
    let mut ctx = page_ctx(&st, &a, "dashboard", q.msg.as_deref());
    ctx = minijinja::context! {
        status => minijinja::Value::from_serialize(&status),
        can_hold => a.user.role >= Role::Approver,
        refresh => DASHBOARD_REFRESH_SECS,
        ..ctx
    };
    Ok(render(&st, StatusCode::OK, "dashboard.html", ctx))
}

/// `GET /api/status`: the dashboard as JSON, for monitoring. 404 when `console.api_token` is not configured,
/// 401 on a missing or wrong bearer token. The token is compared as SHA-256 digests in constant time, so
/// neither its content nor its length leaks through timing.
pub async fn api_status(State(st): State<ConsoleState>, headers: HeaderMap) -> Response {
    let Some(expected) = st.ctx.api_token.as_ref() else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(expected.expose().as_bytes()))
        .into();
    if given.is_empty() || !ok {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "unauthorized",
        )
            .into_response();
    }
    let result = async {
        let mode = st.ctx.store.read(mode::current_mode).await?;
        gather(&st, &mode).await
    }
    .await;
    match result {
        Ok(s) => {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("version".into(), env!("CARGO_PKG_VERSION").into());
                let head = st.ctx.store.read(seal::head).await.ok().flatten();
                o.insert(
                    "audit_head".into(),
                    serde_json::json!(
                        head.map(|(id, hash)| serde_json::json!({ "audit_id": id, "hash": hash }))
                    ),
                );
                o.insert(
                    "health".into(),
                    serde_json::json!({
                        "status": st.ctx.health.overall(),
                        "components": st.ctx.health.snapshot(),
                    }),
                );
            }
            Json(v).into_response()
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "api/status failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "error": "internal error; see the daemon log" })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(code: &str, kind: &str, level: Option<u8>) -> WarningRow {
        WarningRow {
            municipality_code: code.into(),
            municipality_name: format!("市{code}"),
            kind_code: kind.into(),
            kind_name: format!("種別{kind}"),
            severity: "警報".into(),
            level,
            status: "発表".into(),
            issued_at: None,
        }
    }

    #[test]
    fn warnings_are_grouped_by_municipality_with_the_highest_level_first() {
        let g = group_warnings(vec![
            w("0620100", "03", Some(3)),
            w("0610000", "10", Some(2)),
            w("0620100", "33", Some(5)),
            w("0610000", "03", Some(3)),
        ]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].code, "0610000");
        assert_eq!(g[0].level, Some(3));
        assert_eq!(g[1].level, Some(5));
        assert_eq!(g[1].warnings[0].kind_code, "33");
    }

    #[test]
    fn the_summary_counts_serious_warnings_apart_from_advisories_and_deliveries_in_progress() {
        let mut adv = w("0121700", "10", Some(2));
        adv.severity = "注意報".into();
        let g = group_warnings(vec![w("0110000", "03", Some(3)), adv]);
        let row = |id: &str, planned, sent, failed| DeliveryView {
            row: DeliveryRow {
                alert_id: id.into(),
                title: id.into(),
                started_at: None,
                planned,
                sent,
                failed,
                drill: false,
            },
            pending: planned - sent - failed,
            percent_done: 0,
        };
        let s = summarize(&g, &[row("a", 10, 4, 1), row("b", 5, 5, 0)]);
        assert_eq!((s.serious_warnings, s.serious_municipalities), (1, 1));
        assert_eq!((s.advisories, s.advisory_municipalities), (1, 1));
        assert_eq!((s.in_progress, s.finished), (1, 1));
        assert_eq!((s.pending_recipients, s.failed_recipients), (5, 1));
        assert!(g.iter().any(|m| m.code == "0110000" && m.serious));
        assert!(g.iter().any(|m| m.code == "0121700" && !m.serious));
    }
}
