//! The stand-in's LINE account as a pure state machine: every method takes `now` and does no I/O, so the
//! semantics (retry keys, quota, reply tokens, rich-menu precedence, batch control) are tested alone and the
//! HTTP layer only translates.
//!
//! Memory: the benchmark pushes 1,000,000 recipients through here. A user is a 16-byte id (LINE user ids
//! are `U` + 32 hex digits, stored as a `u128`) plus a 24-byte record; a delivery is 8 bytes (the message
//! index and a link to the user's previous delivery), and each message object is stored once per request,
//! not once per recipient. 1 M recipients of one message cost about 60 MB.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::limits;

/// A LINE API error as the platform returns it: status, `message`, `details`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub details: Vec<(String, String)>,
    /// Set on 409: the request id that was accepted with this retry key.
    pub accepted_request_id: Option<String>,
    /// Set on a push 409: the messages sent by the accepted request.
    pub sent_messages: Option<Value>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            details: Vec::new(),
            accepted_request_id: None,
            sent_messages: None,
        }
    }
    pub fn bad_request(details: Vec<(String, String)>) -> ApiError {
        ApiError {
            message: format!("The request body has {} error(s)", details.len()),
            details,
            ..ApiError::new(400, "")
        }
    }
    pub fn not_found() -> ApiError {
        ApiError::new(404, "Not found")
    }
    pub fn body(&self) -> Value {
        let mut b = json!({"message": self.message});
        if !self.details.is_empty() {
            b["details"] = self
                .details
                .iter()
                .map(|(p, m)| json!({"message": m, "property": p}))
                .collect();
        }
        if let Some(s) = &self.sent_messages {
            b["sentMessages"] = s.clone();
        }
        b
    }
}

pub const RATE_LIMIT_MESSAGE: &str = "The API rate limit has been exceeded. Try again later.";
pub const MONTHLY_LIMIT_MESSAGE: &str = "You have reached your monthly limit.";

/// LINE's per-endpoint rate limits (research/line-api.md §2): requests per period.
pub fn rate_limit(endpoint: &str) -> (f64, Duration) {
    let hour = Duration::hours(1);
    let second = Duration::seconds(1);
    match endpoint {
        "POST /v2/bot/message/multicast" => (200.0, second),
        "POST /v2/bot/message/narrowcast" | "POST /v2/bot/message/broadcast" => (60.0, hour),
        "POST /v2/bot/richmenu"
        | "DELETE /v2/bot/richmenu/{richMenuId}"
        | "DELETE /v2/bot/richmenu/alias/{richMenuAliasId}"
        | "GET /v2/bot/richmenu/progress/batch" => (100.0, hour),
        "POST /v2/bot/richmenu/batch" => (3.0, hour),
        _ => (2000.0, second),
    }
}

/// A token bucket: starts full (bursts allowed while tokens last), refills continuously.
#[derive(Clone, Debug)]
pub struct Bucket {
    capacity: f64,
    tokens: f64,
    per_second: f64,
    last: DateTime<Utc>,
}

impl Bucket {
    pub fn new(capacity: f64, period: Duration, now: DateTime<Utc>) -> Bucket {
        let secs = period.num_milliseconds() as f64 / 1000.0;
        Bucket {
            capacity,
            tokens: capacity,
            per_second: capacity / secs,
            last: now,
        }
    }
    pub fn try_take(&mut self, now: DateTime<Utc>) -> bool {
        let elapsed = (now - self.last).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        if elapsed > 0.0 {
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
            self.last = now;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How the state behaves; fixed at start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `None`: no monthly limit (`GET /v2/bot/message/quota` says `none`).
    pub monthly_quota: Option<u64>,
    pub rate_limits: bool,
    /// Treat every well-formed user id as a friend on first contact (the benchmark's million residents
    /// never send `follow`). Users who sent `unfollow` are skipped silently either way.
    pub auto_friend: bool,
    /// Reply tokens are valid this long after the webhook that carried them (LINE: 1 minute).
    pub reply_token_ttl: Duration,
    /// A batch-control request reports `ongoing` this long before `succeeded`.
    pub batch_duration: Duration,
    /// Retry keys are remembered this long (LINE: 24 h).
    pub retry_key_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            monthly_quota: None,
            rate_limits: true,
            auto_friend: true,
            reply_token_ttl: Duration::minutes(1),
            batch_duration: Duration::seconds(2),
            retry_key_ttl: Duration::hours(24),
        }
    }
}

/// The sending endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendKind {
    Push,
    Multicast,
    Broadcast,
    Reply,
}

impl SendKind {
    pub fn name(self) -> &'static str {
        match self {
            SendKind::Push => "push",
            SendKind::Multicast => "multicast",
            SendKind::Broadcast => "broadcast",
            SendKind::Reply => "reply",
        }
    }
}

const NONE: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct UserRec {
    /// Index of the user's newest delivery in `deliveries`, or `NONE`.
    last_delivery: u32,
    delivered: u32,
    /// Per-user rich menu link (slot in `menus`), or `NONE`.
    link: u32,
    friend: bool,
    blocked: bool,
}

#[derive(Clone, Copy, Debug)]
struct Delivery {
    msg: u32,
    prev: u32,
}

#[derive(Clone, Debug)]
struct RequestRec {
    request_id: String,
    retry_key: Option<String>,
    kind: SendKind,
    at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
struct MessageRec {
    id: u64,
    request: u32,
    message: Value,
}

#[derive(Clone, Debug)]
struct Accepted {
    request_id: String,
    at: DateTime<Utc>,
    sent: Option<Value>,
}

#[derive(Clone, Debug)]
struct ReplyToken {
    user: u32,
    /// When the (last) webhook carrying it was delivered.
    delivered: DateTime<Utc>,
    event_time: DateTime<Utc>,
    used: bool,
}

#[derive(Clone, Debug)]
pub struct Menu {
    pub id: String,
    pub object: Value,
    pub image: Option<(String, bytes::Bytes)>,
}

#[derive(Clone, Debug)]
struct Batch {
    accepted: DateTime<Utc>,
    done: DateTime<Utc>,
}

/// What a successful send returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    /// `sentMessages` for push and reply.
    pub sent_messages: Value,
    pub recipients: usize,
    pub skipped: usize,
}

/// A message as recorded for one user.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    pub id: String,
    pub request_id: String,
    pub retry_key: Option<String>,
    pub endpoint: &'static str,
    pub at: String,
    pub message: Value,
}

/// Which rich menu a user sees and why.
#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    User(String),
    Default(String),
    None,
}

/// Counters for `GET /sandbox/stats`.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Per endpoint (`"POST /v2/bot/message/multicast"`): requests per status code.
    pub endpoints: BTreeMap<String, BTreeMap<u16, u64>>,
    pub requests: u64,
    pub rate_limited: u64,
    pub monthly_limited: u64,
    pub conflicts: u64,
    pub accepted_sends: u64,
    /// Recipients messages were delivered to (friends, not blocked), summed over requests.
    pub recipients: u64,
    /// Recipients silently skipped (blocked or not friends).
    pub skipped_recipients: u64,
    pub deliveries: u64,
    pub faults_injected: u64,
    pub connections_dropped: u64,
    pub webhooks_sent: u64,
}

#[derive(Default)]
pub struct State {
    pub settings: Settings,
    buckets: HashMap<String, Bucket>,
    retry_keys: HashMap<u128, Accepted>,
    user_index: HashMap<u128, u32>,
    other_index: HashMap<String, u32>,
    other_names: HashMap<u32, String>,
    users: Vec<UserRec>,
    deliveries: Vec<Delivery>,
    requests: Vec<RequestRec>,
    messages: Vec<MessageRec>,
    next_message_id: u64,
    reply_tokens: HashMap<String, ReplyToken>,
    menus: Vec<Option<Menu>>,
    menu_slots: HashMap<String, u32>,
    default_menu: u32,
    aliases: BTreeMap<String, String>,
    batches: HashMap<String, Batch>,
    resume_keys: HashMap<String, DateTime<Utc>>,
    contents: HashMap<String, (String, bytes::Bytes)>,
    narrowcasts: HashMap<String, DateTime<Utc>>,
    display_names: HashMap<u32, String>,
    pub quota_used: u64,
    pub stats: Stats,
}

/// Parses `U` + 32 lowercase hex digits.
pub fn parse_user_id(id: &str) -> Option<u128> {
    let hex = id.strip_prefix('U')?;
    if hex.len() != 32
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u128::from_str_radix(hex, 16).ok()
}

pub fn format_user_id(n: u128) -> String {
    format!("U{n:032x}")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl State {
    pub fn new(settings: Settings) -> State {
        State {
            settings,
            next_message_id: 600_000_000_000_000_000,
            default_menu: NONE,
            ..State::default()
        }
    }

    /// Takes one token from the endpoint's bucket; false means 429.
    pub fn take_token(&mut self, endpoint: &str, now: DateTime<Utc>) -> bool {
        if !self.settings.rate_limits {
            return true;
        }
        let bucket = self.buckets.entry(endpoint.to_string()).or_insert_with(|| {
            let (cap, period) = rate_limit(endpoint);
            Bucket::new(cap, period, now)
        });
        bucket.try_take(now)
    }

    pub fn record_status(&mut self, endpoint: &str, status: u16) {
        self.stats.requests += 1;
        *self
            .stats
            .endpoints
            .entry(endpoint.to_string())
            .or_default()
            .entry(status)
            .or_default() += 1;
        match status {
            409 => self.stats.conflicts += 1,
            429 => self.stats.rate_limited += 1,
            _ => {}
        }
    }

    fn user_slot(&mut self, id: &str, create: bool) -> Option<u32> {
        if let Some(n) = parse_user_id(id) {
            if let Some(&i) = self.user_index.get(&n) {
                return Some(i);
            }
            if !create {
                return None;
            }
            let i = self.new_user();
            self.user_index.insert(n, i);
            Some(i)
        } else {
            if let Some(&i) = self.other_index.get(id) {
                return Some(i);
            }
            if !create {
                return None;
            }
            let i = self.new_user();
            self.other_index.insert(id.to_string(), i);
            self.other_names.insert(i, id.to_string());
            Some(i)
        }
    }

    fn new_user(&mut self) -> u32 {
        self.users.push(UserRec {
            last_delivery: NONE,
            delivered: 0,
            link: NONE,
            friend: false,
            blocked: false,
        });
        (self.users.len() - 1) as u32
    }

    fn user_name(&self, slot: u32) -> String {
        if let Some(n) = self.other_names.get(&slot) {
            return n.clone();
        }
        self.user_index
            .iter()
            .find(|(_, &s)| s == slot)
            .map(|(n, _)| format_user_id(*n))
            .unwrap_or_default()
    }

    /// A user who can receive messages now (a friend, or any well-formed id with `auto_friend`).
    fn deliverable(&mut self, id: &str) -> Option<u32> {
        let auto = self.settings.auto_friend && parse_user_id(id).is_some();
        let slot = self.user_slot(id, auto)?;
        let u = &mut self.users[slot as usize];
        if u.blocked {
            return None;
        }
        if auto && !u.friend {
            u.friend = true;
        }
        u.friend.then_some(slot)
    }

    /// A resident adds the account as a friend (or unblocks it).
    pub fn follow(&mut self, id: &str, display_name: Option<String>) {
        if let Some(slot) = self.user_slot(id, true) {
            let u = &mut self.users[slot as usize];
            u.friend = true;
            u.blocked = false;
            if let Some(n) = display_name {
                self.display_names.insert(slot, n);
            }
        }
    }

    /// A resident blocks the account: later sends skip them silently.
    pub fn unfollow(&mut self, id: &str) {
        if let Some(slot) = self.user_slot(id, true) {
            let u = &mut self.users[slot as usize];
            u.friend = false;
            u.blocked = true;
        }
    }

    pub fn is_friend(&self, id: &str) -> bool {
        let slot = match parse_user_id(id) {
            Some(n) => self.user_index.get(&n).copied(),
            None => self.other_index.get(id).copied(),
        };
        slot.is_some_and(|s| {
            let u = &self.users[s as usize];
            u.friend && !u.blocked
        })
    }

    /// The profile LINE would return, or `None` (404) for strangers and users who blocked the account.
    pub fn profile(&self, id: &str) -> Option<Value> {
        if !self.is_friend(id) {
            return None;
        }
        let slot = parse_user_id(id)
            .and_then(|n| self.user_index.get(&n).copied())
            .or_else(|| self.other_index.get(id).copied())?;
        let name = self
            .display_names
            .get(&slot)
            .cloned()
            .unwrap_or_else(|| format!("住民{}", &id[id.len().saturating_sub(4)..]));
        Some(json!({"displayName": name, "userId": id, "language": "ja"}))
    }

    /// Checks a retry key before anything is sent: a key accepted within the retention period → 409.
    fn check_retry_key(
        &mut self,
        key: Option<&uuid::Uuid>,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let Some(key) = key else {
            return Ok(());
        };
        let ttl = self.settings.retry_key_ttl;
        if let Some(a) = self.retry_keys.get(&key.as_u128()) {
            if now - a.at < ttl {
                return Err(ApiError {
                    accepted_request_id: Some(a.request_id.clone()),
                    sent_messages: a.sent.clone(),
                    ..ApiError::new(409, "The retry key is already accepted")
                });
            }
        }
        Ok(())
    }

    /// Push, multicast, broadcast or reply: validates recipients, applies the retry key and the monthly
    /// quota, then records one delivery per recipient per message.
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        kind: SendKind,
        to: &[String],
        reply_token: Option<&str>,
        messages: &[Value],
        retry_key: Option<&uuid::Uuid>,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Sent, ApiError> {
        self.check_retry_key(retry_key, now)?;
        // Recipients.
        let mut slots: Vec<u32> = Vec::new();
        let mut skipped = 0usize;
        match kind {
            SendKind::Reply => {
                let token = reply_token.unwrap_or("");
                let ttl = self.settings.reply_token_ttl;
                let t = self
                    .reply_tokens
                    .get(token)
                    .filter(|t| {
                        !t.used
                            && now - t.delivered <= ttl
                            && now - t.event_time <= Duration::minutes(20)
                    })
                    .cloned()
                    .ok_or_else(|| ApiError::new(400, "Invalid reply token"))?;
                if let Some(entry) = self.reply_tokens.get_mut(token) {
                    entry.used = true;
                }
                // Anyone who just talked to the account can be replied to, friend or not; not after a block.
                if !self.users[t.user as usize].blocked {
                    slots.push(t.user);
                } else {
                    skipped += 1;
                }
            }
            SendKind::Broadcast => {
                for (i, u) in self.users.iter().enumerate() {
                    if u.friend && !u.blocked {
                        slots.push(i as u32);
                    }
                }
            }
            SendKind::Push | SendKind::Multicast => {
                let mut bad = Vec::new();
                for (i, id) in to.iter().enumerate() {
                    let ok = parse_user_id(id).is_some()
                        || (kind == SendKind::Push
                            && (id.starts_with('C') || id.starts_with('R'))
                            && id.len() == 33);
                    if !ok {
                        let prop = if kind == SendKind::Push {
                            "to".to_string()
                        } else {
                            format!("to[{i}]")
                        };
                        bad.push((prop, "The user id is invalid".to_string()));
                    }
                }
                if !bad.is_empty() {
                    return Err(ApiError::bad_request(bad));
                }
                for id in to {
                    match self.deliverable(id) {
                        Some(s) => slots.push(s),
                        None => skipped += 1,
                    }
                }
                // A user listed twice in one multicast receives it once.
                slots.sort_unstable();
                slots.dedup();
            }
        }
        // Quota (reply is free).
        if kind != SendKind::Reply {
            if let Some(q) = self.settings.monthly_quota {
                if self.quota_used + slots.len() as u64 > q {
                    self.stats.monthly_limited += 1;
                    return Err(ApiError::new(429, MONTHLY_LIMIT_MESSAGE));
                }
            }
            self.quota_used += slots.len() as u64;
        }
        // Record.
        self.requests.push(RequestRec {
            request_id: request_id.to_string(),
            retry_key: retry_key.map(|k| k.to_string()),
            kind,
            at: now,
        });
        let req = (self.requests.len() - 1) as u32;
        let first_msg = self.messages.len() as u32;
        let mut sent = Vec::new();
        for m in messages {
            self.next_message_id += 1;
            sent.push(json!({"id": self.next_message_id.to_string(), "quoteToken": format!("q{:x}", self.next_message_id)}));
            self.messages.push(MessageRec {
                id: self.next_message_id,
                request: req,
                message: m.clone(),
            });
        }
        for &s in &slots {
            for k in 0..messages.len() as u32 {
                let u = &mut self.users[s as usize];
                self.deliveries.push(Delivery {
                    msg: first_msg + k,
                    prev: u.last_delivery,
                });
                u.last_delivery = (self.deliveries.len() - 1) as u32;
                u.delivered += 1;
            }
        }
        let sent_messages = Value::Array(sent);
        if let Some(k) = retry_key {
            let keep = matches!(kind, SendKind::Push).then(|| sent_messages.clone());
            self.retry_keys.insert(
                k.as_u128(),
                Accepted {
                    request_id: request_id.to_string(),
                    at: now,
                    sent: keep,
                },
            );
        }
        self.stats.accepted_sends += 1;
        self.stats.recipients += slots.len() as u64;
        self.stats.skipped_recipients += skipped as u64;
        self.stats.deliveries += (slots.len() * messages.len()) as u64;
        Ok(Sent {
            sent_messages,
            recipients: slots.len(),
            skipped,
        })
    }

    /// Forgets retry keys older than the retention period (called now and then; lookups check age too).
    pub fn prune(&mut self, now: DateTime<Utc>) {
        let ttl = self.settings.retry_key_ttl;
        self.retry_keys.retain(|_, a| now - a.at < ttl);
        self.reply_tokens
            .retain(|_, t| now - t.event_time <= Duration::minutes(20));
    }

    /// Every message delivered to a user, oldest first.
    pub fn received(&self, id: &str) -> Vec<Received> {
        let slot = match parse_user_id(id) {
            Some(n) => self.user_index.get(&n).copied(),
            None => self.other_index.get(id).copied(),
        };
        let mut out = Vec::new();
        let Some(slot) = slot else {
            return out;
        };
        let mut d = self.users[slot as usize].last_delivery;
        while d != NONE {
            let del = self.deliveries[d as usize];
            let m = &self.messages[del.msg as usize];
            let r = &self.requests[m.request as usize];
            out.push(Received {
                id: m.id.to_string(),
                request_id: r.request_id.clone(),
                retry_key: r.retry_key.clone(),
                endpoint: r.kind.name(),
                at: rfc3339(r.at),
                message: m.message.clone(),
            });
            d = del.prev;
        }
        out.reverse();
        out
    }

    /// Issues a reply token for a webhook event delivered now.
    pub fn issue_reply_token(
        &mut self,
        user: &str,
        token: &str,
        event_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        if let Some(slot) = self.user_slot(user, true) {
            self.reply_tokens.insert(
                token.to_string(),
                ReplyToken {
                    user: slot,
                    delivered: now,
                    event_time,
                    used: false,
                },
            );
        }
    }

    /// A redelivered webhook's token works again for the TTL, unless used or 20 minutes have passed.
    pub fn redeliver_reply_token(&mut self, token: &str, now: DateTime<Utc>) {
        if let Some(t) = self.reply_tokens.get_mut(token) {
            t.delivered = now;
        }
    }

    pub fn store_content(&mut self, message_id: &str, content_type: &str, bytes: bytes::Bytes) {
        self.contents
            .insert(message_id.to_string(), (content_type.to_string(), bytes));
    }

    pub fn content(&self, message_id: &str) -> Option<(String, bytes::Bytes)> {
        self.contents.get(message_id).cloned()
    }

    pub fn next_id(&mut self) -> String {
        self.next_message_id += 1;
        self.next_message_id.to_string()
    }

    // ---- rich menus ------------------------------------------------------------------------------

    fn menu(&self, id: &str) -> Option<(u32, &Menu)> {
        let slot = *self.menu_slots.get(id)?;
        self.menus[slot as usize].as_ref().map(|m| (slot, m))
    }

    fn menu_with_image(&self, id: &str) -> Result<u32, ApiError> {
        let (slot, m) = self.menu(id).ok_or_else(ApiError::not_found)?;
        if m.image.is_none() {
            return Err(ApiError::new(
                400,
                "must upload richmenu image before applying it to user",
            ));
        }
        Ok(slot)
    }

    pub fn create_menu(&mut self, object: Value, id: String) -> Result<String, ApiError> {
        let mut details = Vec::new();
        limits::check_rich_menu(&object, &mut details);
        if !details.is_empty() {
            return Err(ApiError::bad_request(details));
        }
        if self.menu_slots.len() >= 1000 {
            return Err(ApiError::new(
                400,
                "The number of rich menus has reached the limit (1000)",
            ));
        }
        self.menus.push(Some(Menu {
            id: id.clone(),
            object,
            image: None,
        }));
        self.menu_slots
            .insert(id.clone(), (self.menus.len() - 1) as u32);
        Ok(id)
    }

    pub fn menu_json(&self, id: &str) -> Option<Value> {
        let (_, m) = self.menu(id)?;
        let mut v = m.object.clone();
        v["richMenuId"] = json!(m.id);
        Some(v)
    }

    pub fn list_menus(&self) -> Value {
        let list: Vec<Value> = self
            .menus
            .iter()
            .flatten()
            .filter_map(|m| self.menu_json(&m.id))
            .collect();
        json!({"richmenus": list})
    }

    pub fn delete_menu(&mut self, id: &str) -> Result<(), ApiError> {
        let (slot, _) = self.menu(id).ok_or_else(ApiError::not_found)?;
        self.menus[slot as usize] = None;
        self.menu_slots.remove(id);
        for u in &mut self.users {
            if u.link == slot {
                u.link = NONE;
            }
        }
        if self.default_menu == slot {
            self.default_menu = NONE;
        }
        Ok(())
    }

    pub fn upload_image(
        &mut self,
        id: &str,
        content_type: &str,
        bytes: bytes::Bytes,
    ) -> Result<(), ApiError> {
        let (slot, m) = self.menu(id).ok_or_else(ApiError::not_found)?;
        if m.image.is_some() {
            return Err(ApiError::new(
                400,
                "An image has already been uploaded to the richmenu",
            ));
        }
        if content_type != "image/jpeg" && content_type != "image/png" {
            return Err(ApiError::new(
                415,
                "Unsupported Media Type: use image/jpeg or image/png",
            ));
        }
        if bytes.len() > limits::RICH_MENU_IMAGE_MAX_BYTES {
            return Err(ApiError::new(413, "The image must be at most 1 MB"));
        }
        let (w, h) = limits::image_dimensions(content_type, &bytes).ok_or_else(|| {
            ApiError::new(400, format!("The image is not a valid {content_type} file"))
        })?;
        let want = (
            m.object
                .pointer("/size/width")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            m.object
                .pointer("/size/height")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        );
        if let Some(p) = limits::image_size_problem(w, h) {
            return Err(ApiError::new(400, p));
        }
        if (w, h) != want {
            return Err(ApiError::new(
                400,
                format!(
                    "The image size is not allowed for richmenu: {w}x{h}, the menu is {}x{}",
                    want.0, want.1
                ),
            ));
        }
        if let Some(Some(m)) = self.menus.get_mut(slot as usize) {
            m.image = Some((content_type.to_string(), bytes));
        }
        Ok(())
    }

    pub fn image(&self, id: &str) -> Option<(String, bytes::Bytes)> {
        self.menu(id).and_then(|(_, m)| m.image.clone())
    }

    pub fn set_default(&mut self, id: &str) -> Result<(), ApiError> {
        self.default_menu = self.menu_with_image(id)?;
        Ok(())
    }

    pub fn default_menu(&self) -> Option<String> {
        self.slot_id(self.default_menu)
    }

    pub fn cancel_default(&mut self) {
        self.default_menu = NONE;
    }

    fn slot_id(&self, slot: u32) -> Option<String> {
        if slot == NONE {
            return None;
        }
        self.menus
            .get(slot as usize)?
            .as_ref()
            .map(|m| m.id.clone())
    }

    /// Per-user link; a no-op (still 200) for users who are not friends, as on LINE.
    pub fn link(&mut self, user: &str, menu: &str) -> Result<(), ApiError> {
        let slot = self.menu_with_image(menu)?;
        if parse_user_id(user).is_none() {
            return Err(ApiError::bad_request(vec![(
                "userId".into(),
                "The user id is invalid".into(),
            )]));
        }
        if let Some(u) = self.deliverable(user) {
            self.users[u as usize].link = slot;
        }
        Ok(())
    }

    pub fn unlink(&mut self, user: &str) {
        if let Some(u) = self.user_slot(user, false) {
            self.users[u as usize].link = NONE;
        }
    }

    pub fn user_link(&self, user: &str) -> Option<String> {
        let slot = match parse_user_id(user) {
            Some(n) => self.user_index.get(&n).copied(),
            None => self.other_index.get(user).copied(),
        }?;
        self.slot_id(self.users[slot as usize].link)
    }

    /// The menu the user actually sees: per-user link > API default.
    pub fn shown(&self, user: &str) -> Shown {
        if let Some(m) = self.user_link(user) {
            return Shown::User(m);
        }
        match self.default_menu() {
            Some(m) => Shown::Default(m),
            None => Shown::None,
        }
    }

    pub fn bulk_link(&mut self, users: &[String], menu: &str) -> Result<(), ApiError> {
        self.menu_with_image(menu)?;
        for u in users {
            if parse_user_id(u).is_some() {
                self.link(u, menu)?;
            }
        }
        Ok(())
    }

    pub fn bulk_unlink(&mut self, users: &[String]) {
        for u in users {
            self.unlink(u);
        }
    }

    pub fn create_alias(&mut self, alias: &str, menu: &str) -> Result<(), ApiError> {
        self.menu_with_image(menu)?;
        if self.aliases.contains_key(alias) {
            return Err(ApiError::new(400, "conflict richmenu alias id"));
        }
        if self.aliases.len() >= 1000 {
            return Err(ApiError::new(
                400,
                "The number of rich menu aliases has reached the limit (1000)",
            ));
        }
        self.aliases.insert(alias.to_string(), menu.to_string());
        Ok(())
    }

    pub fn update_alias(&mut self, alias: &str, menu: &str) -> Result<(), ApiError> {
        self.menu_with_image(menu)?;
        let entry = self
            .aliases
            .get_mut(alias)
            .ok_or_else(ApiError::not_found)?;
        *entry = menu.to_string();
        Ok(())
    }

    pub fn delete_alias(&mut self, alias: &str) -> Result<(), ApiError> {
        self.aliases
            .remove(alias)
            .map(|_| ())
            .ok_or_else(ApiError::not_found)
    }

    pub fn alias(&self, alias: &str) -> Option<Value> {
        self.aliases
            .get(alias)
            .map(|m| json!({"richMenuAliasId": alias, "richMenuId": m}))
    }

    pub fn list_aliases(&self) -> Value {
        let list: Vec<Value> = self
            .aliases
            .iter()
            .map(|(a, m)| json!({"richMenuAliasId": a, "richMenuId": m}))
            .collect();
        json!({"aliases": list})
    }

    /// A tap on a `richmenuswitch` area: the alias's menu becomes the user's per-user menu. Returns the
    /// postback `params.status` LINE would report.
    pub fn switch(&mut self, user: &str, alias: &str) -> &'static str {
        let Some(menu) = self.aliases.get(alias).cloned() else {
            return "RICHMENU_ALIAS_ID_NOTFOUND";
        };
        match self.link(user, &menu) {
            Ok(()) => "SUCCESS",
            Err(e) if e.status == 404 => "RICHMENU_NOTFOUND",
            Err(_) => "FAILED",
        }
    }

    /// The areas of the menu a user sees (for simulated taps).
    pub fn shown_areas(&self, user: &str) -> Vec<Value> {
        let id = match self.shown(user) {
            Shown::User(m) | Shown::Default(m) => m,
            Shown::None => return Vec::new(),
        };
        self.menu(&id)
            .and_then(|(_, m)| m.object.get("areas").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    }

    /// Checks a batch-control body: `unlinkAll` alone, no `from` twice, menus exist (and `to` has an image).
    pub fn validate_batch(&self, ops: &[Value]) -> Result<(), ApiError> {
        let mut details = Vec::new();
        let mut froms = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let t = op.get("type").and_then(Value::as_str).unwrap_or("");
            if t == "unlinkAll" && ops.len() > 1 {
                details.push((
                    format!("operations[{i}]"),
                    "unlinkAll must be the only operation".into(),
                ));
            }
            if let Some(from) = op.get("from").and_then(Value::as_str) {
                if froms.contains(&from) {
                    details.push((
                        format!("operations[{i}].from"),
                        format!("duplicate from {from}"),
                    ));
                }
                froms.push(from);
                if self.menu(from).is_none() {
                    details.push((
                        format!("operations[{i}].from"),
                        format!("richmenu not found: {from}"),
                    ));
                }
            }
            if let Some(to) = op.get("to").and_then(Value::as_str) {
                if self.menu_with_image(to).is_err() {
                    details.push((
                        format!("operations[{i}].to"),
                        format!("richmenu not found or has no image: {to}"),
                    ));
                }
            }
        }
        if details.is_empty() {
            Ok(())
        } else {
            Err(ApiError::bad_request(details))
        }
    }

    /// Applies a batch: every operation is evaluated against the links as they were before the batch
    /// (A→B and B→C move A's users to B and B's users to C; they do not chain A→C). A `resumeRequestKey`
    /// seen in the last 14 days resumes that request: everyone was processed already, so nothing changes.
    pub fn batch(
        &mut self,
        ops: &[Value],
        resume: Option<&str>,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, ApiError> {
        self.validate_batch(ops)?;
        self.batches.insert(
            request_id.to_string(),
            Batch {
                accepted: now,
                done: now + self.settings.batch_duration,
            },
        );
        if let Some(k) = resume {
            if self
                .resume_keys
                .get(k)
                .is_some_and(|t| now - *t < Duration::days(14))
            {
                return Ok(0);
            }
            self.resume_keys.insert(k.to_string(), now);
        }
        let mut moves: HashMap<u32, u32> = HashMap::new();
        let mut unlink_all = false;
        for op in ops {
            let from = op
                .get("from")
                .and_then(Value::as_str)
                .and_then(|f| self.menu_slots.get(f).copied());
            let to = op
                .get("to")
                .and_then(Value::as_str)
                .and_then(|f| self.menu_slots.get(f).copied());
            match (op.get("type").and_then(Value::as_str), from, to) {
                (Some("link"), Some(f), Some(t)) => {
                    moves.insert(f, t);
                }
                (Some("unlink"), Some(f), _) => {
                    moves.insert(f, NONE);
                }
                (Some("unlinkAll"), _, _) => unlink_all = true,
                _ => {}
            }
        }
        let mut changed = 0;
        for u in &mut self.users {
            if u.link == NONE {
                continue;
            }
            let new = if unlink_all {
                NONE
            } else {
                match moves.get(&u.link) {
                    Some(&t) => t,
                    None => continue,
                }
            };
            u.link = new;
            changed += 1;
        }
        Ok(changed)
    }

    pub fn batch_progress(&self, request_id: &str, now: DateTime<Utc>) -> Option<Value> {
        let b = self.batches.get(request_id)?;
        if now - b.accepted > Duration::days(14) {
            return None;
        }
        Some(if now >= b.done {
            json!({"phase": "succeeded", "acceptedTime": rfc3339(b.accepted), "completedTime": rfc3339(b.done)})
        } else {
            json!({"phase": "ongoing", "acceptedTime": rfc3339(b.accepted)})
        })
    }

    /// Narrowcasts are delivered at once; progress reports `succeeded` right away.
    pub fn note_narrowcast(&mut self, request_id: &str, now: DateTime<Utc>) {
        self.narrowcasts.insert(request_id.to_string(), now);
    }

    pub fn narrowcast_progress(&self, request_id: &str) -> Option<Value> {
        let at = self.narrowcasts.get(request_id)?;
        let req = self
            .requests
            .iter()
            .rev()
            .find(|r| r.request_id == request_id);
        let n = req.map(|_| 1).unwrap_or(0);
        let _ = n;
        Some(
            json!({"phase": "succeeded", "acceptedTime": rfc3339(*at), "completedTime": rfc3339(*at), "successCount": self.users.iter().filter(|u| u.friend && !u.blocked).count(), "failureCount": 0, "targetCount": self.users.iter().filter(|u| u.friend && !u.blocked).count()}),
        )
    }

    pub fn quota(&self) -> Value {
        match self.settings.monthly_quota {
            Some(q) => json!({"type": "limited", "value": q}),
            None => json!({"type": "none"}),
        }
    }

    /// Number of users known to the stand-in (friends or not).
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Users currently linked per menu, for `/sandbox/stats`.
    pub fn link_counts(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for u in &self.users {
            if let Some(id) = self.slot_id(u.link) {
                *out.entry(id).or_insert(0) += 1;
            }
        }
        out
    }

    /// The id of the user in `slot` (used by tests that enumerate users).
    pub fn user_id_of(&self, slot: u32) -> String {
        self.user_name(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }
    fn uid(n: u128) -> String {
        format_user_id(n)
    }
    fn text(s: &str) -> Value {
        json!({"type": "text", "text": s})
    }

    #[test]
    fn a_retry_key_is_accepted_once_within_24_hours_and_again_after() {
        let mut s = State::new(Settings::default());
        let key = uuid::Uuid::new_v4();
        let to = vec![uid(1)];
        s.send(
            SendKind::Push,
            &to,
            None,
            &[text("a")],
            Some(&key),
            "r1",
            t0(),
        )
        .unwrap();
        let e = s
            .send(
                SendKind::Push,
                &to,
                None,
                &[text("a")],
                Some(&key),
                "r2",
                t0() + Duration::hours(23),
            )
            .unwrap_err();
        assert_eq!(
            (e.status, e.accepted_request_id.as_deref()),
            (409, Some("r1"))
        );
        assert!(e.sent_messages.is_some(), "push 409 carries sentMessages");
        s.send(
            SendKind::Push,
            &to,
            None,
            &[text("a")],
            Some(&key),
            "r3",
            t0() + Duration::hours(24),
        )
        .unwrap();
        assert_eq!(s.received(&uid(1)).len(), 2);
    }

    #[test]
    fn blocked_users_are_skipped_silently_and_not_counted() {
        let mut s = State::new(Settings {
            monthly_quota: Some(2),
            ..Settings::default()
        });
        s.unfollow(&uid(2));
        let sent = s
            .send(
                SendKind::Multicast,
                &[uid(1), uid(2), uid(3)],
                None,
                &[text("a")],
                None,
                "r",
                t0(),
            )
            .unwrap();
        assert_eq!((sent.recipients, sent.skipped), (2, 1));
        assert!(s.received(&uid(2)).is_empty());
        let e = s
            .send(
                SendKind::Push,
                &[uid(1)],
                None,
                &[text("b")],
                None,
                "r2",
                t0(),
            )
            .unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (429, MONTHLY_LIMIT_MESSAGE));
    }

    #[test]
    fn a_reply_token_works_once_and_expires_after_a_minute() {
        let mut s = State::new(Settings::default());
        s.follow(&uid(1), None);
        s.issue_reply_token(&uid(1), "tok", t0(), t0());
        s.send(
            SendKind::Reply,
            &[],
            Some("tok"),
            &[text("a")],
            None,
            "r",
            t0(),
        )
        .unwrap();
        let e = s
            .send(
                SendKind::Reply,
                &[],
                Some("tok"),
                &[text("a")],
                None,
                "r",
                t0(),
            )
            .unwrap_err();
        assert_eq!(e.message, "Invalid reply token");
        s.issue_reply_token(&uid(1), "tok2", t0(), t0());
        let late = t0() + Duration::seconds(61);
        assert!(s
            .send(
                SendKind::Reply,
                &[],
                Some("tok2"),
                &[text("a")],
                None,
                "r",
                late
            )
            .is_err());
    }

    #[test]
    fn the_bucket_allows_a_burst_then_refills_at_the_rate() {
        let mut b = Bucket::new(3.0, Duration::hours(1), t0());
        assert!((0..3).all(|_| b.try_take(t0())));
        assert!(!b.try_take(t0()));
        assert!(!b.try_take(t0() + Duration::minutes(19)));
        assert!(b.try_take(t0() + Duration::minutes(20)));
    }

    fn menu(s: &mut State, id: &str) {
        s.create_menu(
            json!({"size": {"width": 2500, "height": 843}, "selected": true, "name": id, "chatBarText": "メニュー", "areas": []}),
            id.to_string(),
        )
        .unwrap();
        s.upload_image(id, "image/png", limits::png_header(2500, 843).into())
            .unwrap();
    }

    #[test]
    fn batch_moves_are_parallel_not_chained() {
        let mut s = State::new(Settings::default());
        for m in ["a", "b", "c"] {
            menu(&mut s, m);
        }
        s.link(&uid(1), "a").unwrap();
        s.link(&uid(2), "b").unwrap();
        let ops = [
            json!({"type": "link", "from": "a", "to": "b"}),
            json!({"type": "link", "from": "b", "to": "c"}),
        ];
        assert_eq!(s.batch(&ops, None, "req", t0()).unwrap(), 2);
        assert_eq!(s.user_link(&uid(1)).as_deref(), Some("b"));
        assert_eq!(s.user_link(&uid(2)).as_deref(), Some("c"));
    }

    #[test]
    fn per_user_link_beats_the_default() {
        let mut s = State::new(Settings::default());
        menu(&mut s, "normal");
        menu(&mut s, "tab2");
        s.set_default("normal").unwrap();
        s.create_alias("tab2", "tab2").unwrap();
        assert_eq!(s.shown(&uid(1)), Shown::Default("normal".into()));
        assert_eq!(s.switch(&uid(1), "tab2"), "SUCCESS");
        menu(&mut s, "emergency");
        s.set_default("emergency").unwrap();
        assert_eq!(s.shown(&uid(1)), Shown::User("tab2".into()));
        assert_eq!(s.shown(&uid(2)), Shown::Default("emergency".into()));
    }
}
