//! `GET /console/audit`: the audit log, with the hash chain verified on every view.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::console::auth::Session;
use crate::console::error::ConsoleError;
use crate::console::{page_ctx, records, render, seal, ConsoleState, PageQuery};

pub async fn page(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let page = q.page.unwrap_or(1);
    st.ctx.store.write(seal::seal).await?;
    let (rows, verification, reported) = st
        .ctx
        .store
        .read(move |c| {
            let reported: bool = c.query_row(
                "SELECT count(*) > 0 FROM problems WHERE source = 'console.audit' AND resolved_at IS NULL",
                [],
                |r| r.get(0),
            )?;
            Ok((records::audit_page(c, page)?, seal::verify(c)?, reported))
        })
        .await?;
    // Reported once until an operator resolves it, however often the page is opened.
    if let (Some(id), false) = (verification.first_break, reported) {
        st.ctx
            .store
            .record_problem(
                "console.audit",
                format!(
                    "監査ログの改ざん検知で、記録番号 {id} 以降に不一致が見つかりました。システム管理者に連絡してください。"
                ),
                None,
            )
            .await;
    }
    let ctx = page_ctx(&st, &a, "audit", q.msg.as_deref());
    let ctx = minijinja::context! {
        page => minijinja::Value::from_serialize(&rows),
        seal => minijinja::Value::from_serialize(&verification),
        ..ctx
    };
    Ok(render(&st, StatusCode::OK, "audit.html", ctx))
}
