//! The LINE side of the opt-in plow notice: the webhook handlers for 「除雪通知」 / 「除雪通知停止」 and the
//! postbacks `action=plow-notice&set=on&district=…` / `…&set=off`. Subscriptions are the residents' topic
//! subscriptions ([`crate::resident::topics`]), which unfollowing the account removes.
//!
//! * Text 「除雪通知」 subscribes the resident to the plow district of their registered district
//!   ([`notice::resolve_district`]); without a registered district the reply asks them to register first.
//! * The postback names the district (a plow district id, or a registration district id mapped the same way).
//! * Stopping removes every subscription of the resident (or the one the postback names), so no later claim can
//!   include them ([`notice::claim_and_enqueue`] reads subscriptions in the ingest transaction).
//! * Each request is answered with the reply API (free, the event's single-use token); nothing is sent in
//!   `standby` mode. Handlers are idempotent (a redelivered event subscribes or unsubscribes again, harmlessly).

use std::sync::Arc;

use super::notice::{self, Command, Outcome};
use super::Plow;
use crate::line::events::{handler_fn, Claim, Event};
use crate::line::LineRuntime;
use crate::place::Districts;
use crate::services::Registry;

/// What the plow-notice service needs.
#[derive(Clone)]
pub struct Deps {
    pub line: LineRuntime,
    pub plow: Arc<Plow>,
    /// The districts residents register with, to map them onto the plow districts (`None` without place
    /// data: then only plow district ids are understood).
    pub place: Option<Arc<crate::place::PlaceData>>,
}

/// Installs the plow-notice service when plow tracking is enabled: text 「除雪通知」/「除雪通知停止」 and the
/// postback `action=plow-notice`. Subscriptions are topic subscriptions, which unfollowing removes.
pub fn install(reg: &mut Registry, deps: Deps) {
    if !deps.plow.config.enabled {
        return;
    }
    let d = deps.clone();
    let text = handler_fn(move |ev: Event| {
        let d = d.clone();
        async move {
            let Some(cmd) = ev
                .message
                .as_ref()
                .and_then(|m| m.text.as_deref())
                .and_then(notice::parse_command)
            else {
                return Ok(Claim::Pass);
            };
            handle(&d, &ev, cmd, None).await?;
            Ok(Claim::Handled)
        }
    });
    let d = deps.clone();
    let postback = handler_fn(move |ev: Event| {
        let d = d.clone();
        async move {
            let Some(pb) = ev.postback.as_ref() else {
                return Ok(Claim::Pass);
            };
            let Some(cmd) = notice::parse_postback(pb) else {
                return Ok(Claim::Pass);
            };
            let district = pb.field("district").filter(|d| !d.is_empty());
            handle(&d, &ev, cmd, district).await?;
            Ok(Claim::Handled)
        }
    });
    reg.service("plow-notice")
        .migrations(400..=499)
        .text("除雪通知 / 除雪通知停止", text)
        .postback(notice::ACTION, postback);
}

async fn handle(ctx: &Deps, ev: &Event, cmd: Command, named: Option<String>) -> anyhow::Result<()> {
    let Some(user) = ev.user_id().cloned() else {
        return Ok(());
    };
    let outcome = match cmd {
        Command::Unsubscribe => {
            // A named district is stored under its plow district id; map a registration district onto it.
            let d = match (named, &ctx.plow.coverage) {
                (Some(id), Some(cov)) => {
                    let net = cov.lock().unwrap_or_else(|p| p.into_inner()).net.clone();
                    Some(
                        plow_district(&net, ctx.place.as_deref().map(|p| &p.districts), &id)
                            .await
                            .map(|i| net.districts[i].id.clone())
                            .unwrap_or(id),
                    )
                }
                (named, _) => named,
            };
            let u = user.clone();
            let removed = ctx
                .line
                .store
                .write(move |tx| notice::unsubscribe(tx, &u, d.as_deref()))
                .await?;
            Outcome::Unsubscribed { removed }
        }
        Command::Subscribe => subscribe(ctx, user, named).await?,
    };
    let label = match &outcome {
        Outcome::Subscribed { .. } => "subscribed",
        Outcome::Unsubscribed { .. } => "unsubscribed",
        Outcome::NoDistrict => "no_district",
        Outcome::UnknownDistrict => "unknown_district",
        Outcome::Unavailable => "unavailable",
    };
    ctx.line.metrics.inc(
        "sonae_plow_notice_requests_total",
        "Residents' plow-notice requests (text or postback) by outcome.",
        &[("outcome", label)],
    );
    crate::line::events::reply(&ctx.line.client, ev, vec![notice::reply_message(&outcome)]).await
}

async fn subscribe(
    ctx: &Deps,
    user: crate::ids::LineUserId,
    named: Option<String>,
) -> anyhow::Result<Outcome> {
    let Some(cov) = &ctx.plow.coverage else {
        return Ok(Outcome::Unavailable);
    };
    let net = cov.lock().unwrap_or_else(|p| p.into_inner()).net.clone();
    let wanted = match named {
        Some(d) => d,
        None => {
            let u = user.clone();
            let registered = ctx
                .line
                .store
                .read(move |c| Ok(crate::resident::get(c, &u)?.and_then(|r| r.district_id)))
                .await?;
            match registered {
                Some(d) => d,
                None => return Ok(Outcome::NoDistrict),
            }
        }
    };
    let Some(i) = plow_district(&net, ctx.place.as_deref().map(|p| &p.districts), &wanted).await
    else {
        return Ok(Outcome::UnknownDistrict);
    };
    let (id, name) = (net.districts[i].id.clone(), net.districts[i].name.clone());
    ctx.line
        .store
        .write(move |tx| notice::subscribe(tx, &user, &id))
        .await?;
    Ok(Outcome::Subscribed {
        district_name: name,
    })
}

/// [`notice::resolve_district`], reading the resident districts only when `id` is not a plow district id itself.
async fn plow_district(
    net: &super::coverage::RoadNetwork,
    districts: Option<&Districts>,
    id: &str,
) -> Option<usize> {
    let towns = match net.districts.iter().any(|d| d.id == id) {
        true => None,
        false => districts,
    };
    notice::resolve_district(net, towns, id)
}
