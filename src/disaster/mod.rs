//! Disaster mode: policy (`[disaster]`), the pure engine, message composition, and the glue that writes a
//! decision and its outbox rows in one transaction.
//!
//! Flow (one cycle, the scheduled job `disaster.cycle`: whenever the JMA pipeline records new events, and every
//! 5 s ([`runtime::TICK`]) for holds, releases and the end of the quiet period):
//! 1. [`load_state`] → [`engine::decide`] with the current warnings, changes, holds, districts and `now`;
//! 2. for each step, [`plan_step`] composes one message per district ([`compose::Templates::compose`]) and
//!    asks the caller for recipients (residents of the district, all or opted-in; staff for drills), plus
//!    one municipality-level message for friends without a district when the step reaches them;
//! 3. [`commit`] writes the new engine memory, the mode change (log + audit) and every alert with its
//!    batches in the caller's one transaction; then the caller wakes the sender.
//!
//! If the process dies between 1 and 3 nothing was written and the next cycle decides again; after 3 the
//! memory says the step was announced and the outbox has it. Either way each step is sent once.

pub mod compose;
pub mod engine;
pub mod manual;
pub mod policy;
pub mod runtime;
pub mod safety;

#[cfg(test)]
mod compose_tests;
#[cfg(test)]
mod engine_tests;

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde_json::json;

pub use engine::{
    decide, ActiveWarning, AlertStep, Audience, Decision, DistrictRef, EngineInput, EngineState,
    ManualHold, Mode, Phenomenon, ReportStatus, Severity, StepKind, WarningChange,
};
pub use policy::{Action, DisasterConfig};

use crate::delivery::{self, Enqueued, NewAlert, Planned, Recipients};
use crate::store::Store;

/// The engine memory stored with the last decision (default when none yet).
pub fn load_state(conn: &Connection) -> anyhow::Result<EngineState> {
    let text: Option<String> = conn
        .query_row("SELECT state FROM disaster_state WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    match text {
        None => Ok(EngineState::default()),
        Some(t) => Ok(serde_json::from_str(&t)?),
    }
}

/// The current mode as stored (for the console, `/api/status` and the rich-menu switch at start).
pub fn current_mode(conn: &Connection) -> anyhow::Result<Mode> {
    Ok(load_state(conn)?.mode)
}

/// The variant of the rich menus the decision's mode should show: in disaster mode `snow` (the emergency
/// menu with 除雪車マップ, `templates/richmenus/emergency-snow.json`) while a snow warning (大雪・暴風雪) is among
/// the warnings that trigger it, the mode's own (`""`) when only other warnings do; `None` — keep what is
/// shown — when only a manual hold or the quiet period keeps disaster mode. Normal mode: its own.
pub fn menu_variant(decision: &Decision) -> Option<&'static str> {
    if decision.mode == Mode::Normal {
        return Some("");
    }
    match &decision.reason {
        engine::ModeReason::Warnings { triggers } => {
            let snow = triggers.iter().any(|t| {
                decision
                    .state
                    .announced
                    .get(t)
                    .is_some_and(|a| a.phenomenon.is_snow())
            });
            Some(if snow { "snow" } else { "" })
        }
        _ => None,
    }
}

/// One line for operators, e.g. `【大雨特別警報】山形市 発表（3地区・全員）`.
pub fn summary(step: &AlertStep) -> String {
    let subject = match step.kind {
        StepKind::Lift | StepKind::Cancellation => step.previous.as_ref().or(step.current.as_ref()),
        _ => step.current.as_ref().or(step.previous.as_ref()),
    };
    let name = subject.map_or(step.phenomenon.ja(), |w| w.name.as_str());
    let kind = match step.kind {
        StepKind::Issue => "発表",
        StepKind::Escalation => "引き上げ",
        StepKind::Downgrade => "切り替え",
        StepKind::Lift => "解除",
        StepKind::Correction => "訂正",
        StepKind::Cancellation => "取消",
    };
    let audience = match step.audience {
        Audience::Everyone if step.unregistered => "全員・地区未登録の友だちを含む",
        Audience::Everyone => "全員",
        Audience::OptedIn => "希望者",
        Audience::Drill => "訓練対象の職員",
    };
    format!(
        "{}【{name}】{} {kind}（{}地区・{audience}）",
        if step.drill { "【訓練】" } else { "" },
        step.municipality_name,
        step.districts.len()
    )
}

/// Composes one message per district and resolves recipients. `shelters_for` gives the shelters to name
/// for a district (suited to the hazard, within `max_km`, opened first; see `place::Shelters::suggest`);
/// `links_for` the hazard links of the municipality centred on the district (`None`: on the municipality);
/// `recipients_for` the residents of a district (all, or only those who opted in), or with `None` the
/// friends who never registered a district. Drill steps go to `drill_audience` only, with the message of
/// the first district. Districts with nobody to receive the step get no message. A step marked
/// `unregistered` gets one more, municipality-level message for the friends without a district.
#[allow(clippy::too_many_arguments)]
pub fn plan_step(
    templates: &compose::Templates,
    step: &AlertStep,
    public_url: &str,
    drill_audience: &[String],
    max_km: f64,
    mut shelters_for: impl FnMut(&DistrictRef, Phenomenon) -> Vec<compose::ShelterRef>,
    mut links_for: impl FnMut(&str, Option<&DistrictRef>) -> compose::HazardLinks,
    mut recipients_for: impl FnMut(Option<&DistrictRef>, Audience) -> anyhow::Result<Recipients>,
) -> anyhow::Result<Vec<Planned>> {
    let mut plans = Vec::new();
    for district in &step.districts {
        // Recipients first: a district nobody receives needs no message (composing one costs about as much
        // as sending it, and a city has thousands of districts).
        let recipients = match step.audience {
            Audience::Drill => Recipients::Users(drill_audience.to_vec()),
            a => recipients_for(Some(district), a)?,
        };
        if !recipients.is_nobody() {
            let shelters = shelters_for(district, step.phenomenon);
            let links = links_for(&step.municipality, Some(district));
            let mut messages = templates.compose(compose::ComposeInput {
                step,
                area: compose::Area::District {
                    district,
                    shelters: &shelters,
                    max_km,
                },
                links: &links,
                public_url,
            })?;
            if asks_for_safety(step) {
                let reference = safety::reference(&step.key);
                for m in &mut messages {
                    safety::attach(m, &reference);
                    compose::check_message(m)?;
                }
            }
            plans.push(Planned {
                messages,
                recipients,
            });
        }
        if step.audience == Audience::Drill {
            break;
        }
    }
    if step.unregistered && step.audience != Audience::Drill {
        let recipients = recipients_for(None, step.audience)?;
        if !recipients.is_nobody() {
            let links = links_for(&step.municipality, None);
            let mut messages = templates.compose(compose::ComposeInput {
                step,
                area: compose::Area::Unregistered,
                links: &links,
                public_url,
            })?;
            if asks_for_safety(step) {
                let reference = safety::reference(&step.key);
                for m in &mut messages {
                    safety::attach(m, &reference);
                    compose::check_message(m)?;
                }
            }
            plans.push(Planned {
                messages,
                recipients,
            });
        }
    }
    Ok(plans)
}

/// Whether a step's message carries the safety-reply buttons: warnings that call for action, not their
/// lifting or withdrawal.
fn asks_for_safety(step: &AlertStep) -> bool {
    matches!(
        step.kind,
        StepKind::Issue | StepKind::Escalation | StepKind::Downgrade | StepKind::Correction
    )
}

/// Writes the decision (engine memory, mode change with audit) and every step's alert and batches in the
/// caller's transaction. Returns one [`Enqueued`] per step, in order.
pub fn commit(
    tx: &Transaction<'_>,
    decision: &Decision,
    planned: &[(AlertStep, Vec<Planned>)],
    now_ms: i64,
) -> anyhow::Result<Vec<Enqueued>> {
    tx.execute(
        "INSERT INTO disaster_state (id, state, updated_at) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        rusqlite::params![
            serde_json::to_string(&decision.state)?,
            decision.now.to_rfc3339()
        ],
    )?;
    if decision.mode_changed() {
        let mode = |m: Mode| match m {
            Mode::Normal => "normal",
            Mode::Disaster => "disaster",
        };
        tx.execute(
            "INSERT INTO disaster_mode_log (at, mode, previous, reason) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                decision.now.to_rfc3339(),
                mode(decision.mode),
                mode(decision.previous_mode),
                serde_json::to_string(&decision.reason)?
            ],
        )?;
        Store::audit(
            tx,
            "system",
            "disaster.mode",
            &json!({"mode": decision.mode, "previous": decision.previous_mode, "reason": decision.reason}),
        )?;
    }
    let mut out = Vec::with_capacity(planned.len());
    for (step, plans) in planned {
        let alert = NewAlert {
            step_key: step.key.clone(),
            source: if step.drill { "drill" } else { "disaster" }.into(),
            kind: step.kind.key().into(),
            priority: step.priority.value(),
            summary: summary(step),
            detail: serde_json::to_value(step)?,
        };
        let e = delivery::enqueue(tx, &alert, plans, now_ms)?;
        if let Enqueued::Created { alert_id, .. } = e {
            Store::audit(
                tx,
                "system",
                "disaster.alert",
                &json!({"alert_id": alert_id, "step_key": step.key, "summary": alert.summary}),
            )?;
        }
        out.push(e);
    }
    Ok(out)
}
