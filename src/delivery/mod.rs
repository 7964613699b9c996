//! The one durable outbox: every message Sonae sends to residents goes through here.
//!
//! # Invariants
//! 1. **Written before sent.** An alert and all its batches are inserted in the caller's transaction
//!    ([`enqueue`]), the same one that records the decision that caused them. Nothing is sent that is not in
//!    `delivery_batches`; nothing in it is lost on a crash (SQLite WAL, `synchronous=FULL`).
//! 2. **One retry key per batch, for its whole life.** A batch (≤ [`MAX_RECIPIENTS`] recipients) gets its
//!    UUID `retry_key` when it is inserted, before the first send, and is only ever sent with that key. LINE
//!    accepts a key once and answers 409 to repeats for 24 h, so re-sending after a crash cannot duplicate.
//! 3. **A row never leaves `in_flight` without a recorded outcome.** Claiming sets `in_flight` in one short
//!    transaction; the HTTP call runs with no transaction open; the outcome is recorded in another short
//!    transaction. A row found `in_flight` at start was cut short by a crash: it goes back to `pending`
//!    with the *same* key (LINE answers 409 if the first attempt had landed, which counts as accepted).
//! 4. **Failures are never "done".** 429/5xx/timeouts go back to `pending` with full-jitter backoff
//!    (base 0.5 s, cap 30 s by default); other 4xx end in `rejected`, visible to operators; a batch still
//!    unsent 23 h after its first attempt ends in `expired` (never re-sent with a new key: the old key may
//!    have landed, and LINE forgets keys after 24 h).
//! 5. **Exactly once per recipient per alert.** `delivery_alerts.step_key` is unique (the same decision
//!    twice inserts nothing), and a recipient appears in at most one batch of an alert.
//! 6. **Rate limit blocks, never drops.** One token bucket (`line::limits::TokenBucket`) at
//!    `multicast_per_sec` (LINE's limit, 200 req/s, by default) gates every request — the only bucket a
//!    multicast passes, the LINE client does not pace multicasts again; a 429 empties it and pauses the whole
//!    dispatcher, not just one batch.
//! 7. **Priority.** Batches are claimed by `priority DESC, id`, so disaster alerts overtake normal traffic.
//!
//! # States
//! ```text
//! pending --claim--> in_flight --Accepted/AlreadyAccepted--> accepted
//!                              --Rejected (4xx)------------> rejected
//!                              --RateLimited/Transient-----> pending (next_attempt_at = now + backoff)
//!                              --QuotaExhausted------------> pending (+ quota pause, operator alarm)
//! pending (first attempt > 23 h ago) ---------------------> expired
//! start: in_flight --------------------------------------> pending (same retry key)
//! ```

pub mod line_sender;
pub mod sender;

use std::collections::HashSet;

use anyhow::Context as _;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use line_sender::{spawn_sender, LineSender, Outbox};
pub use sender::{run_sender, SendOutcome, Sender};

/// LINE multicast: at most 500 recipients per request (`MulticastRequest.to.maxItems`).
pub const MAX_RECIPIENTS: usize = 500;
/// LINE: at most 5 messages per request.
pub const MAX_MESSAGES: usize = 5;

/// `[delivery]`: how fast and how stubbornly the sender works.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Multicast requests per second (LINE's limit is 200 per channel).
    pub multicast_per_sec: u32,
    /// Requests in flight at once. LINE answers in tens of ms, so 32 keeps 200 req/s busy.
    pub concurrency: usize,
    /// First retry delay after a 429/5xx/timeout; doubles per attempt (full jitter).
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    pub backoff_cap_ms: u64,
    /// A batch not accepted this long after its first attempt is given up (`expired`), well inside LINE's
    /// 24 h retry-key window.
    pub give_up_after_secs: u64,
    /// After LINE says the monthly message quota is exhausted, wait this long before trying again.
    pub quota_pause_secs: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            multicast_per_sec: 200,
            concurrency: 32,
            backoff_base_ms: 500,
            backoff_cap_ms: 30_000,
            give_up_after_secs: 23 * 3600,
            quota_pause_secs: 600,
        }
    }
}

impl DeliveryConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(1..=200).contains(&self.multicast_per_sec) {
            p.push(format!(
                "delivery.multicast_per_sec: {} is out of range; use 1..=200 (LINE allows 200 multicast requests per second)",
                self.multicast_per_sec
            ));
        }
        if !(1..=256).contains(&self.concurrency) {
            p.push(format!(
                "delivery.concurrency: {} is out of range; use 1..=256",
                self.concurrency
            ));
        }
        if self.backoff_base_ms == 0 || self.backoff_base_ms > self.backoff_cap_ms {
            p.push(format!(
                "delivery.backoff_base_ms: {} must be at least 1 and at most delivery.backoff_cap_ms ({})",
                self.backoff_base_ms, self.backoff_cap_ms
            ));
        }
        if !(60..=23 * 3600).contains(&self.give_up_after_secs) {
            p.push(format!(
                "delivery.give_up_after_secs: {} is out of range; use 60..=82800 (LINE keeps retry keys 24 h)",
                self.give_up_after_secs
            ));
        }
        p
    }
}

/// An alert to fan out: one step of the engine, or any other feature's notice.
#[derive(Clone, Debug)]
pub struct NewAlert {
    /// Idempotency key: a second [`enqueue`] with the same key inserts nothing.
    pub step_key: String,
    /// `disaster`, `drill`, `plow`, ...
    pub source: String,
    pub kind: String,
    /// Higher is claimed first (`disaster::engine::Priority::value`: 100 disaster, 50 alert, 10 normal).
    pub priority: i64,
    pub summary: String,
    pub detail: Value,
}

/// One message set and who gets it (typically one district of one step).
#[derive(Clone, Debug)]
pub struct Planned {
    pub messages: Vec<Value>,
    pub recipients: Recipients,
}

/// Who a [`Planned`] message set goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipients {
    /// Explicit full LINE user ids (drill audience, opt-in notices, tests).
    Users(Vec<String>),
    /// The residents an audience query selects, read from `residents` inside [`enqueue`]'s transaction and
    /// written straight into batch rows: a million recipients never sit in memory as a list.
    Residents(crate::resident::Audience),
    /// The subscribers of a topic ([`crate::resident::topics`]), streamed the same way.
    Subscribers(crate::resident::topics::Subscribers),
    /// Everyone an earlier alert reached or may have reached (its batches `accepted` or `in_flight`): the
    /// audience of a 訂正 or 取消, which must reach exactly those people and nobody else.
    ReachedBy(i64),
}

impl Recipients {
    /// Nobody: the plan is dropped.
    pub fn nobody() -> Self {
        Recipients::Users(Vec::new())
    }

    pub fn is_nobody(&self) -> bool {
        matches!(self, Recipients::Users(v) if v.is_empty())
    }
}

impl FromIterator<String> for Recipients {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        Recipients::Users(iter.into_iter().collect())
    }
}

impl From<Vec<String>> for Recipients {
    fn from(v: Vec<String>) -> Self {
        Recipients::Users(v)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    Created {
        alert_id: i64,
        batches: usize,
        recipients: usize,
        /// Recipients dropped because they are not well-formed LINE user ids (recorded as a problem).
        invalid: usize,
    },
    /// An alert with this step key already exists: nothing was inserted.
    Duplicate { alert_id: i64 },
}

impl Enqueued {
    pub fn alert_id(&self) -> i64 {
        match self {
            Enqueued::Created { alert_id, .. } | Enqueued::Duplicate { alert_id } => *alert_id,
        }
    }
}

/// Inserts an alert and its batches inside the caller's transaction. Recipients are de-duplicated across
/// the whole alert (a resident listed twice gets one message) and cut into batches of at most
/// [`MAX_RECIPIENTS`], each with a fresh UUID retry key. `now_ms` is the wall clock (unix ms).
///
/// De-duplication: explicit [`Recipients::Users`] by id; [`Recipients::Residents`] by district (a resident
/// has exactly one district or none, so distinct districts and the unregistered friends never share a
/// resident; the unregistered friends are read once per alert). An alert mixing the two kinds is
/// refused, because they could overlap. Ids that are not well-formed LINE user ids are dropped, counted and
/// recorded as a problem: LINE rejects a whole multicast for one bad id.
pub fn enqueue(
    tx: &Transaction<'_>,
    alert: &NewAlert,
    plans: &[Planned],
    now_ms: i64,
) -> anyhow::Result<Enqueued> {
    if let Some(id) = tx
        .query_row(
            "SELECT id FROM delivery_alerts WHERE step_key = ?1",
            [&alert.step_key],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
    {
        return Ok(Enqueued::Duplicate { alert_id: id });
    }
    for p in plans {
        if p.messages.is_empty() || p.messages.len() > MAX_MESSAGES {
            anyhow::bail!(
                "a delivery needs 1..={MAX_MESSAGES} messages, got {}",
                p.messages.len()
            );
        }
    }
    let users = plans
        .iter()
        .filter(|p| matches!(p.recipients, Recipients::Users(_)))
        .count();
    anyhow::ensure!(
        users == 0 || users == plans.len(),
        "alert {} mixes explicit recipients with resident audiences, which could overlap",
        alert.step_key
    );
    let subscribers = plans
        .iter()
        .filter(|p| matches!(p.recipients, Recipients::Subscribers(_)))
        .count();
    anyhow::ensure!(
        subscribers == 0 || plans.len() == 1,
        "alert {} streams topic subscribers beside other plans, which could overlap",
        alert.step_key
    );
    let reached = plans
        .iter()
        .filter(|p| matches!(p.recipients, Recipients::ReachedBy(_)))
        .count();
    anyhow::ensure!(
        reached == 0 || plans.len() == 1,
        "alert {} streams an earlier alert's recipients beside other plans, which could overlap",
        alert.step_key
    );
    tx.execute(
        "INSERT INTO delivery_alerts (step_key, source, kind, priority, summary, detail, planned, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)",
        params![
            alert.step_key,
            alert.source,
            alert.kind,
            alert.priority,
            alert.summary,
            alert.detail.to_string(),
            chrono::Utc::now().to_rfc3339()
        ],
    )
    .context("inserting alert")?;
    let alert_id = tx.last_insert_rowid();
    let mut out = BatchWriter {
        tx,
        alert_id,
        priority: alert.priority,
        now_ms,
        message_id: None,
        messages: Value::Null,
        buf: String::new(),
        n: 0,
        batches: 0,
        recipients: 0,
        invalid: 0,
    };
    let mut seen_users: HashSet<&str> = HashSet::new();
    let mut seen_districts: HashSet<&str> = HashSet::new();
    let mut seen_unregistered = false;
    for p in plans {
        out.start(&p.messages);
        match &p.recipients {
            Recipients::Users(ids) => {
                for id in ids {
                    if seen_users.insert(id) {
                        out.push(id)?;
                    }
                }
            }
            Recipients::Residents(audience) => {
                let districts: Vec<String> = audience
                    .districts
                    .iter()
                    .filter(|d| seen_districts.insert(d.as_str()))
                    .cloned()
                    .collect();
                let audience = crate::resident::Audience {
                    districts,
                    level3_opt_in_only: audience.level3_opt_in_only,
                    unregistered: audience.unregistered
                        && !std::mem::replace(&mut seen_unregistered, true),
                };
                crate::resident::for_each_audience_id(tx, &audience, |id| out.push(id))?;
            }
            Recipients::Subscribers(s) => {
                crate::resident::topics::for_each_subscriber(tx, s, |id| out.push(id))?;
            }
            Recipients::ReachedBy(earlier) => {
                // A recipient is in at most one batch of an alert, so no de-duplication is needed.
                let mut stmt = tx.prepare_cached(
                    "SELECT recipients FROM delivery_batches
                     WHERE alert_id = ?1 AND status IN ('accepted', 'in_flight') ORDER BY id",
                )?;
                let mut rows = stmt.query([earlier])?;
                while let Some(row) = rows.next()? {
                    let list: String = row.get(0)?;
                    for id in list.lines() {
                        out.push(id)?;
                    }
                }
            }
        }
        out.flush()?;
    }
    let (batches, recipients, invalid) = (out.batches, out.recipients, out.invalid);
    tx.execute(
        "UPDATE delivery_alerts SET planned = ?2 WHERE id = ?1",
        params![alert_id, recipients as i64],
    )?;
    if invalid > 0 {
        tx.execute(
            "INSERT INTO problems (at, source, message, detail) VALUES (?1, 'delivery', ?2, ?3)",
            params![
                chrono::Utc::now().to_rfc3339(),
                format!("配信「{}」の宛先のうち {invalid} 件は LINE のユーザー ID の形式ではないため、送信対象から外しました。", alert.summary),
                format!("step_key {}", alert.step_key)
            ],
        )?;
    }
    Ok(Enqueued::Created {
        alert_id,
        batches,
        recipients,
        invalid,
    })
}

/// Cuts one message set's recipients into batch rows as they stream in. The message row is written with
/// the first recipient, so a message set with nobody to receive it leaves no row.
struct BatchWriter<'t, 'c> {
    tx: &'t Transaction<'c>,
    alert_id: i64,
    priority: i64,
    now_ms: i64,
    message_id: Option<i64>,
    messages: Value,
    /// The current batch's recipients, `\n`-separated (the stored form).
    buf: String,
    n: usize,
    batches: usize,
    recipients: usize,
    invalid: usize,
}

impl BatchWriter<'_, '_> {
    fn start(&mut self, messages: &[Value]) {
        self.message_id = None;
        self.messages = Value::Array(messages.to_vec());
    }

    fn push(&mut self, id: &str) -> anyhow::Result<()> {
        if !crate::ids::is_line_user_id(id) {
            self.invalid += 1;
            return Ok(());
        }
        if self.n > 0 {
            self.buf.push('\n');
        }
        self.buf.push_str(id);
        self.n += 1;
        self.recipients += 1;
        if self.n == MAX_RECIPIENTS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.n == 0 {
            return Ok(());
        }
        let message_id = match self.message_id {
            Some(id) => id,
            None => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO delivery_messages (alert_id, body) VALUES (?1, ?2)",
                    )?
                    .execute(params![self.alert_id, self.messages.to_string()])?;
                let id = self.tx.last_insert_rowid();
                self.message_id = Some(id);
                id
            }
        };
        self.tx
            .prepare_cached(
                "INSERT INTO delivery_batches (alert_id, message_id, retry_key, priority, recipients, n_recipients,
                                               status, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7)",
            )?
            .execute(params![
                self.alert_id,
                message_id,
                uuid::Uuid::new_v4().to_string(),
                self.priority,
                self.buf,
                self.n as i64,
                self.now_ms
            ])?;
        self.batches += 1;
        self.buf.clear();
        self.n = 0;
        Ok(())
    }
}

/// Recipients of one alert by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub alert_id: i64,
    pub planned: i64,
    /// Accepted by LINE (200 or 409 already accepted).
    pub sent: i64,
    /// Rejected (4xx) or expired.
    pub failed: i64,
    /// Never sent: withdrawn or corrected before their turn ([`cancel_pending`]).
    pub cancelled: i64,
    /// Still pending or in flight.
    pub remaining: i64,
    pub batches_total: i64,
    pub batches_done: i64,
}

/// Progress of one alert; `None` if there is no such alert.
pub fn progress(conn: &Connection, alert_id: i64) -> anyhow::Result<Option<Progress>> {
    let planned: Option<i64> = conn
        .query_row(
            "SELECT planned FROM delivery_alerts WHERE id = ?1",
            [alert_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(planned) = planned else {
        return Ok(None);
    };
    let mut p = Progress {
        alert_id,
        planned,
        ..Progress::default()
    };
    let mut stmt = conn.prepare_cached(
        "SELECT status, count(*), sum(n_recipients) FROM delivery_batches WHERE alert_id = ?1 GROUP BY status",
    )?;
    let rows = stmt.query_map([alert_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (status, batches, n) = row?;
        p.batches_total += batches;
        match status.as_str() {
            "accepted" => {
                p.sent += n;
                p.batches_done += batches;
            }
            "rejected" | "expired" => {
                p.failed += n;
                p.batches_done += batches;
            }
            "cancelled" => {
                p.cancelled += n;
                p.batches_done += batches;
            }
            _ => p.remaining += n,
        }
    }
    Ok(Some(p))
}

/// Stops the batches of an alert that have not been sent yet (`pending` → `cancelled`), in the caller's
/// transaction; batches in flight finish (their recipients count as reached). Returns the recipients stopped.
pub fn cancel_pending(tx: &Transaction<'_>, alert_id: i64, now_ms: i64) -> anyhow::Result<i64> {
    let n: i64 = tx.query_row(
        "SELECT coalesce(sum(n_recipients), 0) FROM delivery_batches WHERE alert_id = ?1 AND status = 'pending'",
        [alert_id],
        |r| r.get(0),
    )?;
    tx.execute(
        "UPDATE delivery_batches SET status = 'cancelled', finished_at = ?2
         WHERE alert_id = ?1 AND status = 'pending'",
        params![alert_id, now_ms],
    )?;
    Ok(n)
}

/// Async form of [`progress`].
pub async fn progress_of(
    store: &crate::store::Store,
    alert_id: i64,
) -> anyhow::Result<Option<Progress>> {
    store.read(move |c| progress(c, alert_id)).await
}

/// One alert with its progress, for the console.
#[derive(Clone, Debug, Serialize)]
pub struct AlertSummary {
    pub id: i64,
    pub source: String,
    pub kind: String,
    pub summary: String,
    pub created_at: String,
    pub progress: Progress,
}

/// The latest `limit` alerts, newest first.
pub fn recent_alerts(conn: &Connection, limit: i64) -> anyhow::Result<Vec<AlertSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, source, kind, summary, created_at FROM delivery_alerts ORDER BY id DESC LIMIT ?1",
    )?;
    let rows: Vec<(i64, String, String, String, String)> = stmt
        .query_map([limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, source, kind, summary, created_at) in rows {
        let progress = progress(conn, id)?.unwrap_or_default();
        out.push(AlertSummary {
            id,
            source,
            kind,
            summary,
            created_at,
            progress,
        });
    }
    Ok(out)
}

/// Per-recipient outcome of one alert: (LINE user id, batch status), stored compactly as batch status +
/// recipient list.
pub fn recipient_outcomes(
    conn: &Connection,
    alert_id: i64,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, recipients FROM delivery_batches WHERE alert_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([alert_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (status, recipients) = row?;
        out.extend(recipients.lines().map(|u| (u.to_string(), status.clone())));
    }
    Ok(out)
}

/// Wall clock in unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests;
