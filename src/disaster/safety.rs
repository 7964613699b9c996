//! 安否 (safety replies): every evacuation alert carries three postback buttons, 「避難しました」
//! 「自宅などで安全」「助けが必要」; the emergency menu's 「安否・被害の報告」 offers the same for the latest
//! alert. Replies are stored (the latest per resident per alert), acknowledged, and counted per district for
//! the console; 「助けが必要」 opens a follow-up for staff, to which the resident's next text or location within
//! [`HELP_DETAIL_MINUTES`] is attached.
//!
//! An alert is named in postback data by [`reference`]: 16 hex digits of the SHA-256 of its outbox step key
//! (`delivery_alerts.step_key`), known before the alert is enqueued and short enough for LINE's 300-character
//! postback limit.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::line::events::{handler_fn, postback_data, reply, Claim, Event};
use crate::line::LineRuntime;
use crate::services::Registry;

/// Postback action of the three buttons.
pub const ACTION: &str = "safety";
/// Postback action of the emergency menu's 「安否・被害の報告」.
pub const MENU_ACTION: &str = "safety_report";
/// A text or location sent this long after 「助けが必要」 is attached to that request.
pub const HELP_DETAIL_MINUTES: i64 = 30;
/// Alerts older than this are not offered by the menu button.
const MENU_ALERT_HOURS: i64 = 48;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Evacuated,
    Safe,
    Help,
}

impl Answer {
    pub const ALL: [Answer; 3] = [Answer::Evacuated, Answer::Safe, Answer::Help];

    pub fn slug(self) -> &'static str {
        match self {
            Answer::Evacuated => "evacuated",
            Answer::Safe => "safe",
            Answer::Help => "help",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Answer::Evacuated => "避難しました",
            Answer::Safe => "自宅などで安全",
            Answer::Help => "助けが必要",
        }
    }

    pub fn parse(s: &str) -> Option<Answer> {
        Answer::ALL.into_iter().find(|a| a.slug() == s)
    }

    fn ack(self) -> &'static str {
        match self {
            Answer::Evacuated => "「避難しました」と受け付けました。避難先でも最新の情報に注意してください。",
            Answer::Safe => "「自宅などで安全」と受け付けました。状況が変わったら、もう一度ボタンで知らせてください。",
            Answer::Help => "「助けが必要」と受け付け、市の担当者に伝えました。今の状況（けが・人数・場所など）を文字で送るか、位置情報を送ってください。命に危険があるときは、すぐに119番・110番に通報してください。",
        }
    }
}

/// The alert's name in postback data.
pub fn reference(step_key: &str) -> String {
    hex::encode(&Sha256::digest(step_key.as_bytes())[..8])
}

fn button(reference: &str, a: Answer) -> Value {
    json!({
        "type": "button",
        "style": if a == Answer::Help { "primary" } else { "secondary" },
        "color": if a == Answer::Help { "#B00020" } else { "#DCDFE5" },
        "height": "sm",
        "action": {
            "type": "postback",
            "label": a.label(),
            "data": postback_data(&[("action", ACTION), ("ref", reference), ("answer", a.slug())]),
            "displayText": a.label(),
        }
    })
}

fn buttons_box(reference: &str) -> Value {
    let mut contents = vec![
        json!({"type": "text", "text": "あなたの安否を市に知らせてください", "size": "sm", "weight": "bold", "wrap": true}),
    ];
    contents.extend(Answer::ALL.iter().map(|a| button(reference, *a)));
    json!({"type": "box", "layout": "vertical", "spacing": "sm", "contents": contents})
}

/// Adds the three buttons to the footer of a Flex message's bubble (created if the bubble has none).
pub fn attach(message: &mut Value, reference: &str) {
    let Some(bubble) = message.get_mut("contents") else {
        return;
    };
    let footer = bubble.as_object_mut().map(|b| {
        b.entry("footer").or_insert_with(
            || json!({"type": "box", "layout": "vertical", "spacing": "sm", "contents": []}),
        )
    });
    if let Some(list) = footer
        .and_then(|f| f.get_mut("contents"))
        .and_then(Value::as_array_mut)
    {
        list.push(json!({"type": "separator"}));
        list.push(buttons_box(reference));
    }
}

/// The menu's answer: the buttons for `summary`'s alert, as a message of its own.
fn buttons_message(reference: &str, summary: &str) -> Value {
    json!({
        "type": "flex",
        "altText": "安否をお知らせください",
        "contents": {"type": "bubble", "body": {"type": "box", "layout": "vertical", "spacing": "md", "contents": [
            {"type": "text", "text": summary, "weight": "bold", "wrap": true},
            buttons_box(reference)
        ]}}
    })
}

/// Records (or replaces) a resident's answer to an alert. Returns `false` when `reference` names no alert.
pub fn record(
    tx: &Transaction<'_>,
    reference: &str,
    user: &str,
    answer: Answer,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    if summary_of(tx, reference)?.is_none() {
        return Ok(false);
    }
    let district: Option<String> = tx
        .query_row(
            "SELECT district_id FROM residents WHERE user_id = ?1",
            [user],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    tx.execute(
        "INSERT INTO safety_replies (ref, user_id, answer, district_id, at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (ref, user_id) DO UPDATE SET answer = excluded.answer, district_id = excluded.district_id,
             at = excluded.at,
             follow_up = CASE WHEN excluded.answer = 'help' THEN safety_replies.follow_up ELSE 'done' END",
        params![reference, user, answer.slug(), district, now.to_rfc3339()],
    )?;
    Ok(true)
}

/// Attaches a text or location to the resident's open 「助けが必要」 of the last [`HELP_DETAIL_MINUTES`].
/// Returns whether there was one.
pub fn add_help_detail(
    tx: &Transaction<'_>,
    user: &str,
    text: Option<&str>,
    at: Option<(f64, f64)>,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let since = (now - Duration::minutes(HELP_DETAIL_MINUTES)).to_rfc3339();
    let id: Option<i64> = tx
        .query_row(
            "SELECT id FROM safety_replies WHERE user_id = ?1 AND answer = 'help' AND follow_up != 'done' AND at >= ?2
             ORDER BY at DESC LIMIT 1",
            params![user, since],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = id else { return Ok(false) };
    if let Some(t) = text {
        let t: String = t
            .chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .take(500)
            .collect();
        tx.execute(
            "UPDATE safety_replies SET detail = CASE WHEN detail = '' THEN ?2 ELSE detail || char(10) || ?2 END WHERE id = ?1",
            params![id, t],
        )?;
    }
    if let Some((lat, lon)) = at {
        tx.execute(
            "UPDATE safety_replies SET lat = ?2, lon = ?3 WHERE id = ?1",
            params![id, lat, lon],
        )?;
    }
    Ok(true)
}

/// The summary of the alert `reference` names (from the outbox), if any.
pub fn summary_of(conn: &Connection, wanted: &str) -> anyhow::Result<Option<(i64, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT id, step_key, summary FROM delivery_alerts WHERE source IN ('disaster', 'manual', 'drill')
         ORDER BY id DESC LIMIT 500",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (id, key, summary) = row?;
        if reference(&key) == wanted {
            return Ok(Some((id, summary)));
        }
    }
    Ok(None)
}

/// The latest evacuation alert of the last two days that asked for safety replies: (reference, summary).
pub fn latest(conn: &Connection, now: DateTime<Utc>) -> anyhow::Result<Option<(String, String)>> {
    let since = (now - Duration::hours(MENU_ALERT_HOURS)).to_rfc3339();
    Ok(conn
        .query_row(
            "SELECT step_key, summary FROM delivery_alerts
             WHERE source IN ('disaster', 'manual') AND kind IN ('issue', 'escalation', 'downgrade', 'alert')
               AND created_at >= ?1
             ORDER BY id DESC LIMIT 1",
            [since],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?
        .map(|(k, s)| (reference(&k), s)))
}

/// Answers per district for one alert.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DistrictCounts {
    pub district_id: String,
    pub evacuated: i64,
    pub safe: i64,
    pub help: i64,
}

pub fn counts(conn: &Connection, reference: &str) -> anyhow::Result<Vec<DistrictCounts>> {
    let mut st = conn.prepare(
        "SELECT coalesce(district_id, ''), sum(answer = 'evacuated'), sum(answer = 'safe'), sum(answer = 'help')
         FROM safety_replies WHERE ref = ?1 GROUP BY 1 ORDER BY 1",
    )?;
    let rows = st.query_map([reference], |r| {
        Ok(DistrictCounts {
            district_id: r.get(0)?,
            evacuated: r.get(1)?,
            safe: r.get(2)?,
            help: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One 「助けが必要」 for staff.
#[derive(Clone, Debug, Serialize)]
pub struct HelpRow {
    pub id: i64,
    pub reference: String,
    pub user_id: String,
    pub district_id: Option<String>,
    pub at: String,
    pub detail: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub follow_up: String,
    pub handled_by: Option<String>,
}

/// Open and in-progress requests first, newest first; then the latest 20 done.
pub fn help_list(conn: &Connection) -> anyhow::Result<Vec<HelpRow>> {
    let mut st = conn.prepare(
        "SELECT id, ref, user_id, district_id, at, detail, lat, lon, follow_up, handled_by FROM safety_replies
         WHERE answer = 'help' ORDER BY follow_up = 'done', at DESC LIMIT 200",
    )?;
    let rows = st.query_map([], |r| {
        Ok(HelpRow {
            id: r.get(0)?,
            reference: r.get(1)?,
            user_id: r.get(2)?,
            district_id: r.get(3)?,
            at: r.get(4)?,
            detail: r.get(5)?,
            lat: r.get(6)?,
            lon: r.get(7)?,
            follow_up: r.get(8)?,
            handled_by: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Staff mark a request 対応中 or 対応済 (`safety.follow_up`, audited). `Ok(None)` when there is no such
/// request; otherwise the resident's LINE id.
pub fn set_follow_up(
    tx: &Transaction<'_>,
    id: i64,
    state: &str,
    actor: &str,
) -> anyhow::Result<Option<String>> {
    anyhow::ensure!(
        matches!(state, "open" | "in_progress" | "done"),
        "unknown follow-up state {state}"
    );
    let user: Option<String> = tx
        .query_row(
            "SELECT user_id FROM safety_replies WHERE id = ?1 AND answer = 'help'",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    if user.is_none() {
        return Ok(None);
    }
    tx.execute(
        "UPDATE safety_replies SET follow_up = ?2, handled_by = ?3 WHERE id = ?1",
        params![id, state, actor],
    )?;
    crate::store::Store::audit(
        tx,
        actor,
        "safety.follow_up",
        &json!({"request": id, "state": state}),
    )?;
    Ok(user)
}

/// A staff message to the resident of a request, through the outbox (`safety.message`, audited). Returns
/// `false` when there is no such request.
pub fn message_resident(
    tx: &Transaction<'_>,
    id: i64,
    text: &str,
    actor: &str,
    now_ms: i64,
) -> anyhow::Result<bool> {
    let user: Option<String> = tx
        .query_row(
            "SELECT user_id FROM safety_replies WHERE id = ?1 AND answer = 'help'",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(user) = user else { return Ok(false) };
    let alert = crate::delivery::NewAlert {
        step_key: format!("safety-message:{id}:{}", uuid::Uuid::new_v4()),
        source: "safety".into(),
        kind: "message".into(),
        priority: 90,
        summary: "安否（助けが必要）への市からの連絡".into(),
        detail: json!({"request": id}),
    };
    crate::delivery::enqueue(
        tx,
        &alert,
        &[crate::delivery::Planned {
            messages: vec![json!({"type": "text", "text": format!("【市からの連絡】\n{text}")})],
            recipients: crate::delivery::Recipients::Users(vec![user]),
        }],
        now_ms,
    )?;
    crate::store::Store::audit(
        tx,
        actor,
        "safety.message",
        &json!({"request": id, "chars": text.chars().count()}),
    )?;
    Ok(true)
}

/// Installs the safety-reply service: the three buttons' postback, the menu's 「安否・被害の報告」, and the
/// detail a resident who needs help sends next (text or location).
pub fn install(reg: &mut Registry, line: LineRuntime) {
    let l = line.clone();
    let answer = handler_fn(move |ev: Event| {
        let l = l.clone();
        async move {
            let Some(pb) = ev.postback.as_ref() else {
                return Ok(Claim::Pass);
            };
            let (Some(user), Some(reference)) = (ev.user_id().cloned(), pb.field("ref")) else {
                return Ok(Claim::Pass);
            };
            let Some(answer) = pb.field("answer").as_deref().and_then(Answer::parse) else {
                reply(&l.client, &ev, vec![json!({"type": "text", "text": "ボタンの内容を読み取れませんでした。お手数ですが、もう一度ボタンを押してください。"})]).await?;
                return Ok(Claim::Handled);
            };
            let (u, r) = (user.as_str().to_string(), reference.clone());
            let known = l
                .store
                .write(move |tx| record(tx, &r, &u, answer, Utc::now()))
                .await?;
            let text = if known {
                answer.ack()
            } else {
                "この通知への安否の受付は終了しました。最新の通知のボタンから知らせてください。"
            };
            reply(&l.client, &ev, vec![json!({"type": "text", "text": text})]).await?;
            Ok(Claim::Handled)
        }
    });
    let l = line.clone();
    let menu = handler_fn(move |ev: Event| {
        let l = l.clone();
        async move {
            let latest = l.store.read(|c| latest(c, Utc::now())).await?;
            let messages = match latest {
                Some((reference, summary)) => vec![buttons_message(&reference, &summary)],
                None => vec![
                    json!({"type": "text", "text": "いま安否の報告を受け付けている避難情報はありません。被害の報告の受付は準備中です。けが人や火災などの緊急の通報は119番・110番へお願いします。"}),
                ],
            };
            reply(&l.client, &ev, messages).await?;
            Ok(Claim::Handled)
        }
    });
    let l = line.clone();
    let detail = handler_fn(move |ev: Event| {
        let l = l.clone();
        async move {
            let (Some(user), Some(m)) = (ev.user_id().cloned(), ev.message.clone()) else {
                return Ok(Claim::Pass);
            };
            let at = m.latitude.zip(m.longitude);
            if m.text.is_none() && at.is_none() {
                return Ok(Claim::Pass);
            }
            let u = user.as_str().to_string();
            let text = m.text.clone();
            let attached = l
                .store
                .write(move |tx| add_help_detail(tx, &u, text.as_deref(), at, Utc::now()))
                .await?;
            if !attached {
                return Ok(Claim::Pass);
            }
            reply(&l.client, &ev, vec![json!({"type": "text", "text": "受け付けました。市の担当者に伝えます。命に危険があるときは、すぐに119番・110番に通報してください。"})]).await?;
            Ok(Claim::Handled)
        }
    });
    reg.service("safety")
        .migrations(370..=379)
        .postback(ACTION, answer)
        .postback(MENU_ACTION, menu)
        .text("（助けが必要の後の状況）", detail.clone())
        .location(detail);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_short_stable_and_distinct() {
        let a = reference("manual:1");
        assert_eq!(a.len(), 16);
        assert_eq!(a, reference("manual:1"));
        assert_ne!(a, reference("manual:2"));
    }

    #[test]
    fn the_buttons_fit_lines_limits_on_a_composed_alert() {
        let mut m = json!({"type": "flex", "altText": "x", "contents": {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "a"}]}}});
        attach(&mut m, &reference("k"));
        super::super::compose::check_message(&m).unwrap();
        crate::line::spec::validate_schema("Message", &m).unwrap();
        let s = m.to_string();
        for a in Answer::ALL {
            assert!(s.contains(a.label()));
        }
    }
}
