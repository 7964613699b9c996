//! The LINE side of the opt-in plow notice: the webhook handlers for 「除雪通知」 / 「除雪通知停止」 and the
//! postbacks `plow-notice=on&district=…` / `plow-notice=off`, and removing a resident's subscriptions when they
//! unfollow the account.
//!
//! * Text 「除雪通知」 subscribes the resident to the plow district of their registered district
//!   ([`notice::resolve_district`]); without a registered district the reply asks them to register first.
//! * The postback names the district (a plow district id, or a registration district id mapped the same way).
//! * Stopping removes every subscription of the resident (or the one the postback names), so no later claim can
//!   include them ([`notice::claim_notices`] reads subscriptions in the ingest transaction).
//! * Each request is answered with the reply API (free, the event's single-use token); nothing is sent in
//!   `standby` mode. Handlers are idempotent (a redelivered event subscribes or unsubscribes again, harmlessly).

use std::sync::Arc;

use anyhow::Context as _;
use serde_json::Value;

use super::notice::{self, Command, Outcome};
use crate::app::Context;
use crate::line::events::{handler_fn, Event, Route};
use crate::line::message::Message;
use crate::place::Districts;

/// Registers the handlers on the webhook router when plow tracking is enabled. Call before the webhook worker
/// starts, so no event is dispatched before they are in place.
pub fn register_handlers(ctx: &Context) {
    if !ctx.plow.config.enabled {
        return;
    }
    let districts = ResidentDistricts {
        path: ctx.config.place.districts.clone(),
        cell: Arc::default(),
    };
    let router = ctx.line.events.clone();
    {
        let districts = districts.clone();
        router.register(
            Route::Text,
            handler_fn(move |ctx: Context, ev: Event| {
                let districts = districts.clone();
                async move {
                    let Some(cmd) = ev
                        .message
                        .as_ref()
                        .and_then(|m| m.text.as_deref())
                        .and_then(notice::parse_command)
                    else {
                        return Ok(());
                    };
                    handle(&ctx, &ev, &districts, cmd, None).await
                }
            }),
        );
    }
    router.register(
        Route::Postback,
        handler_fn(move |ctx: Context, ev: Event| {
            let districts = districts.clone();
            async move {
                let Some(pb) = ev.postback.as_ref() else {
                    return Ok(());
                };
                if !pb.data.starts_with("plow-notice=") {
                    return Ok(());
                }
                let Some(cmd) = notice::parse_command(&pb.data) else {
                    return Ok(());
                };
                let district = pb.field("district").filter(|d| !d.is_empty());
                handle(&ctx, &ev, &districts, cmd, district).await
            }
        }),
    );
    router.register(
        Route::Unfollow,
        handler_fn(|ctx: Context, ev: Event| async move {
            let Some(user) = ev.user_id().cloned() else {
                return Ok(());
            };
            ctx.store
                .write(move |tx| notice::unsubscribe(tx, &user, None))
                .await?;
            Ok(())
        }),
    );
}

/// The districts residents register with (`place.districts`), to map them onto the plow districts. Loaded on
/// the first request that needs them (the file is megabytes; the daemon's start-up does not wait for it).
/// `None` when the file is not configured or does not load (then only plow district ids are understood).
#[derive(Clone)]
struct ResidentDistricts {
    path: std::path::PathBuf,
    cell: Arc<tokio::sync::OnceCell<Option<Arc<Districts>>>>,
}

impl ResidentDistricts {
    async fn get(&self) -> Option<Arc<Districts>> {
        let path = self.path.clone();
        self.cell
            .get_or_init(|| async move {
                if !path.is_file() {
                    return None;
                }
                let loaded = tokio::task::spawn_blocking(move || Districts::load(&path)).await;
                match loaded {
                    Ok(Ok((d, _))) => Some(Arc::new(d)),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "place.districts did not load; plow notices accept plow district ids only");
                        None
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "loading place.districts panicked");
                        None
                    }
                }
            })
            .await
            .clone()
    }
}

async fn handle(
    ctx: &Context,
    ev: &Event,
    districts: &ResidentDistricts,
    cmd: Command,
    named: Option<String>,
) -> anyhow::Result<()> {
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
                        plow_district(&net, districts, &id)
                            .await
                            .map(|i| net.districts[i].id.clone())
                            .unwrap_or(id),
                    )
                }
                (named, _) => named,
            };
            let u = user.clone();
            let removed = ctx
                .store
                .write(move |tx| notice::unsubscribe(tx, &u, d.as_deref()))
                .await?;
            Outcome::Unsubscribed { removed }
        }
        Command::Subscribe => subscribe(ctx, districts, user, named).await?,
    };
    let label = match &outcome {
        Outcome::Subscribed { .. } => "subscribed",
        Outcome::Unsubscribed { .. } => "unsubscribed",
        Outcome::NoDistrict => "no_district",
        Outcome::UnknownDistrict => "unknown_district",
        Outcome::Unavailable => "unavailable",
    };
    ctx.metrics.inc(
        "sonae_plow_notice_requests_total",
        "Residents' plow-notice requests (text or postback) by outcome.",
        &[("outcome", label)],
    );
    reply(ctx, ev, notice::reply_message(&outcome)).await
}

async fn subscribe(
    ctx: &Context,
    districts: &ResidentDistricts,
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
                .store
                .read(move |c| Ok(crate::resident::get(c, &u)?.and_then(|r| r.district_id)))
                .await?;
            match registered {
                Some(d) => d,
                None => return Ok(Outcome::NoDistrict),
            }
        }
    };
    let Some(i) = plow_district(&net, districts, &wanted).await else {
        return Ok(Outcome::UnknownDistrict);
    };
    let (id, name) = (net.districts[i].id.clone(), net.districts[i].name.clone());
    ctx.store
        .write(move |tx| notice::subscribe(tx, &user, &id))
        .await?;
    Ok(Outcome::Subscribed {
        district_name: name,
    })
}

/// [`notice::resolve_district`], reading the resident districts only when `id` is not a plow district id itself.
async fn plow_district(
    net: &super::coverage::RoadNetwork,
    districts: &ResidentDistricts,
    id: &str,
) -> Option<usize> {
    let towns = match net.districts.iter().any(|d| d.id == id) {
        true => None,
        false => districts.get().await,
    };
    notice::resolve_district(net, towns.as_deref(), id)
}

async fn reply(ctx: &Context, ev: &Event, message: Value) -> anyhow::Result<()> {
    let Some(token) = ev.reply_token.as_deref() else {
        return Ok(());
    };
    if ev.mode == "standby" {
        return Ok(());
    }
    let m: Message =
        serde_json::from_value(message).context("plow notice reply is not a LINE message")?;
    let outcome = ctx.line.client.reply(token, vec![m]).await?;
    if !outcome.is_success() {
        tracing::warn!(outcome = outcome.label(), "plow notice reply not accepted");
    }
    Ok(())
}
