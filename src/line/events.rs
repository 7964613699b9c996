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

use crate::app::Context;
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

/// A feature's reaction to an event. Handlers must be idempotent: an event whose processing was cut short
/// (crash, restart) is processed again.
pub trait EventHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        ctx: &'a Context,
        event: &'a Event,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

struct FnHandler<F>(F);

impl<F, Fut> EventHandler for FnHandler<F>
where
    F: Fn(Context, Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    fn handle<'a>(
        &'a self,
        ctx: &'a Context,
        event: &'a Event,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin((self.0)(ctx.clone(), event.clone()))
    }
}

/// Wraps an async closure as a handler.
pub fn handler_fn<F, Fut>(f: F) -> Arc<dyn EventHandler>
where
    F: Fn(Context, Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

/// The registry of handlers. Every handler of every matching route runs, in registration order.
#[derive(Default)]
pub struct EventRouter {
    handlers: RwLock<HashMap<Route, Vec<Arc<dyn EventHandler>>>>,
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

    /// Runs every handler for `event`; the first error is returned after all handlers ran.
    /// Returns how many handlers ran.
    pub async fn dispatch(&self, ctx: &Context, event: &Event) -> anyhow::Result<usize> {
        let handlers = self.handlers_for(event);
        let mut first_err = None;
        for h in &handlers {
            if let Err(e) = h.handle(ctx, event).await {
                tracing::warn!(kind = %event.kind, error = %format!("{e:#}"), "webhook handler failed");
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(handlers.len()),
        }
    }
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
}
