//! The resident-registration service: the first service on the [`Registry`](crate::services::Registry).
//!
//! * follow → welcome and district registration (a returning friend keeps their district); unfollow →
//!   inactive (`residents`);
//! * location messages, `action=register` postbacks (the rich menu's 「地区の登録」 and every step of the
//!   list) and town-name texts → the registration conversation ([`super::flow`], pure), its effect stored,
//!   its messages sent as the reply.
//!
//! Replies use the event's reply token ([`crate::line::events::reply`]); in standby mode nothing is sent.

use std::sync::Arc;

use serde_json::Value;

use super::flow;
use crate::line::events::{handler_fn, Claim, Event};
use crate::line::LineRuntime;
use crate::place::{LatLon, PlaceData};
use crate::services::Registry;

/// What registration needs.
#[derive(Clone)]
pub struct Deps {
    pub line: LineRuntime,
    /// `None` without `place.districts`: friends are recorded, but there is no district to register.
    pub place: Option<Arc<PlaceData>>,
    /// `place.city_name`, as residents know it.
    pub city: String,
    /// `server.public_url`, for links in replies.
    pub public_url: String,
}

/// Installs the service (see the module docs).
pub fn install(reg: &mut Registry, deps: Deps) {
    let d = deps.clone();
    let follow = handler_fn(move |ev: Event| {
        let d = d.clone();
        async move {
            let Some(user) = ev.user_id().cloned() else {
                return Ok(Claim::Pass);
            };
            let returning = match super::follow(&d.line.store, user).await? {
                super::FollowOutcome::New => None,
                super::FollowOutcome::Returning { district_id } => district_id,
            };
            let Some(place) = &d.place else {
                return Ok(Claim::Handled);
            };
            let msgs = flow::welcome(&place.districts, &d.city, returning.as_deref());
            answer(&d, &ev, msgs).await
        }
    });
    let d = deps.clone();
    let unfollow = handler_fn(move |ev: Event| {
        let d = d.clone();
        async move {
            if let Some(user) = ev.user_id().cloned() {
                super::unfollow(&d.line.store, user).await?;
            }
            Ok(Claim::Handled)
        }
    });
    let service = reg
        .service("resident")
        .migrations(300..=329)
        .on_follow(follow)
        .on_unfollow(unfollow);
    if deps.place.is_some() {
        service
            .location(step(&deps, Step::Location))
            .postback(flow::ACTION, step(&deps, Step::Postback))
            .text("地区登録 / 町名", step(&deps, Step::Text));
    }
}

#[derive(Clone, Copy)]
enum Step {
    Location,
    Postback,
    Text,
}

/// A registration step: claimed when the event is part of registration.
fn step(deps: &Deps, which: Step) -> Arc<dyn crate::line::events::EventHandler> {
    let d = deps.clone();
    handler_fn(move |ev: Event| {
        let d = d.clone();
        async move {
            let Some(user) = ev.user_id().cloned() else {
                return Ok(Claim::Pass);
            };
            let Some(place) = &d.place else {
                return Ok(Claim::Pass);
            };
            let districts = &place.districts;
            let current = match which {
                Step::Location => {
                    let u = user.clone();
                    d.line
                        .store
                        .read(move |c| super::get(c, &u))
                        .await?
                        .and_then(|r| r.district_id)
                }
                _ => None,
            };
            let r = match which {
                Step::Location => ev
                    .message
                    .as_ref()
                    .and_then(|m| LatLon::new(m.latitude?, m.longitude?))
                    .map(|at| {
                        flow::on_location(districts, &d.city, at, current.as_deref(), &d.public_url)
                    }),
                Step::Postback => ev
                    .postback
                    .as_ref()
                    .and_then(|p| flow::on_postback(districts, &p.data)),
                Step::Text => ev
                    .message
                    .as_ref()
                    .and_then(|m| m.text.as_deref())
                    .and_then(|t| flow::on_text(districts, t)),
            };
            let Some(r) = r else {
                return Ok(Claim::Pass);
            };
            super::apply_effect(&d.line.store, user, r.effect).await?;
            answer(&d, &ev, r.messages).await
        }
    })
}

async fn answer(d: &Deps, ev: &Event, messages: Vec<Value>) -> anyhow::Result<Claim> {
    crate::line::events::reply(&d.line.client, ev, messages).await?;
    Ok(Claim::Handled)
}
