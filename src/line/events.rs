//! Webhook events (forward-compatible) and the one dispatch router features register into.
//!
//! LINE adds event types and properties without notice, so [`Event`] is parsed leniently from the stored
//! JSON: unknown types become [`Route`]-less events that are stored and ignored, unknown fields are kept
//! in [`Event::raw`]. Features register handlers by [`Route`]: follow, unfollow, text / location / image
//! messages, every postback, or postbacks whose `data` carries a given `action=` value
//! (`action=register&district=3` → [`Route::PostbackAction`]`("register")`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ids::LineUserId;

/// A webhook event as the worker sees it.
#[derive(Clone, Debug)]
pub struct Event {
    /// `type` as LINE sent it (`follow`, `message`, `postback`, or a type this version does not know).
    pub kind: String,
    pub webhook_event_id: String,
    /// Event time, ms since the epoch (the same on redelivery).
    pub timestamp: i64,
    /// `active` or `standby`; in standby the bot must not send messages.
    pub mode: String,
    pub redelivery: bool,
    pub source: Source,
    pub reply_token: Option<String>,
    pub message: Option<MessageContent>,
    pub postback: Option<Postback>,
    /// `follow.isUnblocked` on follow events.
    pub is_unblocked: bool,
    /// The whole event object.
    pub raw: Value,
}

#[derive(Clone, Debug, Default)]
pub struct Source {
    /// `user`, `group` or `room`.
    pub kind: String,
    /// Absent when the user has not consented to profile acquisition, or malformed.
    pub user_id: Option<LineUserId>,
    pub group_id: Option<String>,
    pub room_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageContent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub title: Option<String>,
    pub address: Option<String>,
    pub content_provider: Option<ContentProvider>,
    pub image_set: Option<ImageSet>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContentProvider {
    /// `line` (download with the content API) or `external`.
    #[serde(rename = "type")]
    pub kind: String,
    pub original_content_url: Option<String>,
    pub preview_image_url: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ImageSet {
    pub id: String,
    pub index: Option<u32>,
    pub total: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Postback {
    pub data: String,
    /// Datetime picker (`date`/`time`/`datetime`) or rich-menu switch (`newRichMenuAliasId`, `status`).
    pub params: Map<String, Value>,
}

impl Postback {
    /// The value of `key` in `data` read as a query string (`action=register&district=3`).
    pub fn field(&self, key: &str) -> Option<String> {
        url::form_urlencoded::parse(self.data.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// The `action=` value of `data`.
    pub fn action(&self) -> Option<String> {
        self.field("action")
    }

    /// For a `richmenuswitch` tap: the alias the user switched to, when LINE reports success.
    pub fn switched_to_alias(&self) -> Option<&str> {
        let alias = self.params.get("newRichMenuAliasId")?.as_str()?;
        match self.params.get("status").and_then(Value::as_str) {
            None | Some("SUCCESS") => Some(alias),
            Some(_) => None,
        }
    }
}

/// Writes postback `data` in the one grammar every service uses: `action=NAME&key=value…`. Values keep their
/// UTF-8 (LINE counts characters, and 300 is tight for Japanese town names); only the characters the query
/// syntax needs (`%`, `&`, `=`, `+`) are percent-encoded, so [`Postback::field`] reads back every value.
pub fn postback_data(fields: &[(&str, &str)]) -> String {
    let escape = |s: &str| {
        let mut o = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '%' => o.push_str("%25"),
                '&' => o.push_str("%26"),
                '=' => o.push_str("%3D"),
                '+' => o.push_str("%2B"),
                c => o.push(c),
            }
        }
        o
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Why a stored event could not be read as an event at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("webhook event is not an object with a `type`: {0}")]
pub struct NotAnEvent(pub String);

impl Event {
    /// Reads an event object; only a missing `type` makes it unreadable. Everything else is optional.
    pub fn from_value(raw: Value) -> Result<Event, NotAnEvent> {
        let obj = raw
            .as_object()
            .ok_or_else(|| NotAnEvent("not an object".into()))?;
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| NotAnEvent("no `type`".into()))?
            .to_string();
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let source = obj.get("source").map(|src| Source {
            kind: s(src.get("type")).unwrap_or_default(),
            user_id: src
                .get("userId")
                .and_then(Value::as_str)
                .and_then(LineUserId::parse),
            group_id: s(src.get("groupId")),
            room_id: s(src.get("roomId")),
        });
        let message = obj
            .get("message")
            .and_then(|m| serde_json::from_value::<MessageContent>(m.clone()).ok());
        let postback = obj
            .get("postback")
            .and_then(|p| serde_json::from_value::<Postback>(p.clone()).ok());
        Ok(Event {
            webhook_event_id: s(obj.get("webhookEventId")).unwrap_or_default(),
            timestamp: obj.get("timestamp").and_then(Value::as_i64).unwrap_or(0),
            mode: s(obj.get("mode")).unwrap_or_else(|| "active".into()),
            redelivery: obj
                .get("deliveryContext")
                .and_then(|d| d.get("isRedelivery"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            source: source.unwrap_or_default(),
            reply_token: s(obj.get("replyToken")),
            is_unblocked: obj
                .get("follow")
                .and_then(|f| f.get("isUnblocked"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            message,
            postback,
            kind,
            raw,
        })
    }

    pub fn user_id(&self) -> Option<&LineUserId> {
        self.source.user_id.as_ref()
    }

    /// The routes this event is dispatched to, most specific first.
    pub fn routes(&self) -> Vec<Route> {
        match self.kind.as_str() {
            "follow" => vec![Route::Follow],
            "unfollow" => vec![Route::Unfollow],
            "message" => match self.message.as_ref().map(|m| m.kind.as_str()) {
                Some("text") => vec![Route::Text],
                Some("location") => vec![Route::Location],
                Some("image") => vec![Route::Image],
                _ => vec![],
            },
            "postback" => {
                let mut r = Vec::new();
                if let Some(a) = self.postback.as_ref().and_then(Postback::action) {
                    r.push(Route::PostbackAction(a));
                }
                r.push(Route::Postback);
                r
            }
            _ => vec![],
        }
    }

    /// Small fixed label set for metrics.
    pub fn kind_label(&self) -> &'static str {
        kind_label(&self.kind)
    }
}

/// `follow`, `unfollow`, `message`, `postback`, or `other`.
pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "follow" => "follow",
        "unfollow" => "unfollow",
        "message" => "message",
        "postback" => "postback",
        _ => "other",
    }
}

/// Where a handler is registered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Follow,
    Unfollow,
    Text,
    Location,
    Image,
    /// Every postback.
    Postback,
    /// Postbacks whose `data` has `action=` this value.
    PostbackAction(String),
}

/// What a handler did with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The event was this handler's: no later handler sees it.
    Handled,
    /// Not this handler's; the next one is asked.
    Pass,
}

/// A feature's reaction to an event. Handlers must be idempotent: an event whose processing was cut short
/// (crash, restart) is processed again. A handler captures what it needs (store, LINE client, place data)
/// when it is registered.
pub trait EventHandler: Send + Sync + 'static {
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, anyhow::Result<Claim>>;
}

struct FnHandler<F>(F);

impl<F, Fut> EventHandler for FnHandler<F>
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Claim>> + Send + 'static,
{
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, anyhow::Result<Claim>> {
        Box::pin((self.0)(event.clone()))
    }
}

/// Wraps an async closure as a handler.
pub fn handler_fn<F, Fut>(f: F) -> Arc<dyn EventHandler>
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Claim>> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

/// How an event was dispatched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatched {
    /// Handlers that ran.
    pub ran: usize,
    /// Someone claimed it (or, for follow/unfollow, at least one observer ran).
    pub claimed: bool,
    /// Nobody claimed it and the fallback answered.
    pub fallback: bool,
}

/// The registry of handlers.
///
/// * **Follow and unfollow** are lifecycle events: every registered handler observes them, in registration
///   order (the rich menu links the new friend, the resident service greets them); at most one of them
///   replies.
/// * **Messages and postbacks** go to the first handler that claims them: postback handlers registered
///   for the event's `action=` first, then every-postback handlers, each in registration order. A reply
///   token is single use, so two handlers can never both answer.
/// * An event nobody claims goes to the fallback (the resident-core answer), never to silence.
#[derive(Default)]
pub struct EventRouter {
    handlers: RwLock<HashMap<Route, Vec<Arc<dyn EventHandler>>>>,
    fallback: RwLock<Option<Arc<dyn EventHandler>>>,
}

impl EventRouter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&self, route: Route, handler: Arc<dyn EventHandler>) {
        self.handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(route)
            .or_default()
            .push(handler);
    }

    /// The handler for messages and postbacks nobody claims. Replaces an earlier one.
    pub fn set_fallback(&self, handler: Arc<dyn EventHandler>) {
        *self.fallback.write().unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    /// Handlers for `event`, in route order then registration order.
    pub fn handlers_for(&self, event: &Event) -> Vec<Arc<dyn EventHandler>> {
        let map = self.handlers.read().unwrap_or_else(|p| p.into_inner());
        event
            .routes()
            .iter()
            .filter_map(|r| map.get(r))
            .flatten()
            .cloned()
            .collect()
    }

    /// Dispatches `event` (see the type's docs). A handler's error stops the dispatch and is returned, so
    /// the worker records it and the event is not half-answered by a later handler.
    pub async fn dispatch(&self, event: &Event) -> anyhow::Result<Dispatched> {
        let handlers = self.handlers_for(event);
        let lifecycle = matches!(event.kind.as_str(), "follow" | "unfollow");
        let mut d = Dispatched {
            ran: 0,
            claimed: false,
            fallback: false,
        };
        for h in &handlers {
            d.ran += 1;
            let claim = h.handle(event).await.inspect_err(|e| {
                tracing::warn!(kind = %event.kind, error = %format!("{e:#}"), "webhook handler failed")
            })?;
            if lifecycle {
                d.claimed = true;
            } else if claim == Claim::Handled {
                d.claimed = true;
                return Ok(d);
            }
        }
        let answerable = matches!(event.kind.as_str(), "message" | "postback");
        if !d.claimed && answerable {
            let fallback = self
                .fallback
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(f) = fallback {
                d.ran += 1;
                f.handle(event).await?;
                d.fallback = true;
            }
        }
        Ok(d)
    }
}

/// Replies to `event` with `messages` through its reply token (free, single use, valid one minute). Nothing
/// is sent without a token, in standby mode, or when there is nothing to say. The one reply helper every
/// resident service uses.
pub async fn reply(
    client: &crate::line::client::LineClient,
    event: &Event,
    messages: Vec<Value>,
) -> anyhow::Result<()> {
    let Some(token) = event.reply_token.as_deref() else {
        return Ok(());
    };
    if event.mode == "standby" || messages.is_empty() {
        return Ok(());
    }
    let typed = messages
        .into_iter()
        .map(serde_json::from_value::<crate::line::message::Message>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("a reply is not a LINE message object: {e}"))?;
    let outcome = client.reply(token, typed).await?;
    if !outcome.is_success() {
        tracing::warn!(outcome = outcome.label(), kind = %event.kind, "reply not accepted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: Value) -> Event {
        Event::from_value(v).unwrap()
    }

    #[test]
    fn a_text_message_event_is_read_with_its_user_and_reply_token() {
        let e = ev(json!({
            "type":"message","mode":"active","timestamp":1700000000000i64,
            "source":{"type":"user","userId":"U4af4980629a0b1c2d3e4f5a6b7c8d9e0"},
            "webhookEventId":"01HX","deliveryContext":{"isRedelivery":true},
            "replyToken":"rt","message":{"id":"1","type":"text","text":"こんにちは","quoteToken":"q"}}));
        assert_eq!(e.routes(), vec![Route::Text]);
        assert_eq!(
            e.user_id().unwrap().as_str(),
            "U4af4980629a0b1c2d3e4f5a6b7c8d9e0"
        );
        assert!(e.redelivery);
        assert_eq!(e.message.unwrap().text.as_deref(), Some("こんにちは"));
    }

    #[test]
    fn unknown_event_types_and_fields_are_read_without_error_and_route_nowhere() {
        let e =
            ev(json!({"type":"hologram","timestamp":1,"webhookEventId":"x","newThing":{"a":1}}));
        assert!(e.routes().is_empty());
        assert_eq!(e.kind_label(), "other");
        assert_eq!(e.raw["newThing"]["a"], 1);
        let m = ev(json!({"type":"message","message":{"id":"1","type":"sticker","packageId":"1"}}));
        assert!(m.routes().is_empty());
    }

    #[test]
    fn an_object_without_type_is_not_an_event() {
        assert!(Event::from_value(json!({"timestamp":1})).is_err());
        assert!(Event::from_value(json!([1, 2])).is_err());
    }

    #[test]
    fn postbacks_route_by_action_then_to_every_postback_handler() {
        let e = ev(
            json!({"type":"postback","postback":{"data":"action=register&district=%E4%B8%AD%E5%A4%AE"}}),
        );
        assert_eq!(
            e.routes(),
            vec![Route::PostbackAction("register".into()), Route::Postback]
        );
        assert_eq!(
            e.postback.as_ref().unwrap().field("district").as_deref(),
            Some("中央")
        );
    }

    #[test]
    fn a_richmenuswitch_postback_reports_the_new_alias_only_on_success() {
        let ok = ev(
            json!({"type":"postback","postback":{"data":"action=tab","params":{"newRichMenuAliasId":"sonae-normal-b","status":"SUCCESS"}}}),
        );
        assert_eq!(
            ok.postback.unwrap().switched_to_alias(),
            Some("sonae-normal-b")
        );
        let failed = ev(
            json!({"type":"postback","postback":{"data":"action=tab","params":{"newRichMenuAliasId":"x","status":"RICHMENU_NOTFOUND"}}}),
        );
        assert_eq!(failed.postback.unwrap().switched_to_alias(), None);
    }

    #[test]
    fn a_malformed_user_id_is_dropped_not_trusted() {
        let e = ev(json!({"type":"follow","source":{"type":"user","userId":"../../etc"}}));
        assert!(e.user_id().is_none());
    }

    fn counting(
        log: &Arc<std::sync::Mutex<Vec<&'static str>>>,
        name: &'static str,
        claim: Claim,
    ) -> Arc<dyn EventHandler> {
        let log = log.clone();
        handler_fn(move |_ev| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(name);
                Ok(claim)
            }
        })
    }

    #[tokio::test]
    async fn the_first_handler_that_claims_a_message_wins_and_the_rest_never_see_it() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let r = EventRouter::new();
        r.register(Route::Text, counting(&log, "a", Claim::Pass));
        r.register(Route::Text, counting(&log, "b", Claim::Handled));
        r.register(Route::Text, counting(&log, "c", Claim::Handled));
        r.set_fallback(counting(&log, "fallback", Claim::Handled));
        let d = r
            .dispatch(&ev(
                json!({"type":"message","message":{"id":"1","type":"text","text":"x"}}),
            ))
            .await
            .unwrap();
        assert_eq!(*log.lock().unwrap(), vec!["a", "b"]);
        assert!(d.claimed && !d.fallback);
    }

    #[tokio::test]
    async fn an_action_handler_is_asked_before_every_postback_handler_and_nobody_claiming_means_fallback(
    ) {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let r = EventRouter::new();
        r.register(Route::Postback, counting(&log, "any", Claim::Pass));
        r.register(
            Route::PostbackAction("news".into()),
            counting(&log, "news", Claim::Pass),
        );
        r.set_fallback(counting(&log, "fallback", Claim::Handled));
        let d = r
            .dispatch(&ev(
                json!({"type":"postback","postback":{"data":"action=news"}}),
            ))
            .await
            .unwrap();
        assert_eq!(*log.lock().unwrap(), vec!["news", "any", "fallback"]);
        assert!(!d.claimed && d.fallback);
    }

    #[tokio::test]
    async fn every_observer_sees_a_follow_and_no_fallback_answers_it() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let r = EventRouter::new();
        r.register(Route::Follow, counting(&log, "menu", Claim::Handled));
        r.register(Route::Follow, counting(&log, "resident", Claim::Handled));
        r.set_fallback(counting(&log, "fallback", Claim::Handled));
        let d = r.dispatch(&ev(json!({"type":"follow"}))).await.unwrap();
        assert_eq!(*log.lock().unwrap(), vec!["menu", "resident"]);
        assert_eq!(d.ran, 2);
        let unknown = r.dispatch(&ev(json!({"type":"hologram"}))).await.unwrap();
        assert_eq!(
            unknown.ran, 0,
            "an event type we do not know gets no answer"
        );
    }

    #[test]
    fn postback_data_reads_back_every_value_and_keeps_japanese_as_is() {
        let data = postback_data(&[
            ("action", "register"),
            ("group", "中央区"),
            ("base", "a&b=c+d%e"),
        ]);
        assert!(data.contains("中央区"), "{data}");
        let pb = Postback {
            data,
            ..Postback::default()
        };
        assert_eq!(pb.action().as_deref(), Some("register"));
        assert_eq!(pb.field("group").as_deref(), Some("中央区"));
        assert_eq!(pb.field("base").as_deref(), Some("a&b=c+d%e"));
    }
}
