//! Typed LINE Messaging API requests and responses (serde).
//!
//! # Forward compatibility
//! LINE adds response fields, webhook properties and enum values without notice
//! (`messaging-api/development-guidelines#assume-non-breaking-changes`). So nothing here uses
//! `deny_unknown_fields`, every enum that LINE may extend has an `Unknown` catch-all, and optional fields
//! are `Option` with `skip_serializing_if` so that what we send is exactly what the spec allows.
//!
//! Flex components are a generic tree ([`FlexComponent`]: a `type`, optional `contents` and `action`,
//! and every other property as JSON) so templates can use any Flex property LINE supports without a code
//! change; [`crate::line::limits`] checks sizes and counts before anything is sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A message object we send (`spec: Message`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Message {
    #[serde(rename = "text")]
    Text(TextMessage),
    #[serde(rename = "flex")]
    Flex(FlexMessage),
    #[serde(rename = "image")]
    Image(ImageMessage),
    #[serde(rename = "location")]
    Location(LocationMessage),
    #[serde(rename = "template")]
    Template(TemplateMessage),
}

impl Message {
    /// A plain text message.
    pub fn text(text: impl Into<String>) -> Message {
        Message::Text(TextMessage {
            text: text.into(),
            common: Common::default(),
        })
    }

    /// A Flex message with its notification text.
    pub fn flex(alt_text: impl Into<String>, contents: FlexContainer) -> Message {
        Message::Flex(FlexMessage {
            alt_text: alt_text.into(),
            contents,
            common: Common::default(),
        })
    }

    pub fn image(original: impl Into<String>, preview: impl Into<String>) -> Message {
        Message::Image(ImageMessage {
            original_content_url: original.into(),
            preview_image_url: preview.into(),
            common: Common::default(),
        })
    }

    pub fn location(
        title: impl Into<String>,
        address: impl Into<String>,
        lat: f64,
        lon: f64,
    ) -> Message {
        Message::Location(LocationMessage {
            title: title.into(),
            address: address.into(),
            latitude: lat,
            longitude: lon,
            common: Common::default(),
        })
    }

    fn common_mut(&mut self) -> &mut Common {
        match self {
            Message::Text(m) => &mut m.common,
            Message::Flex(m) => &mut m.common,
            Message::Image(m) => &mut m.common,
            Message::Location(m) => &mut m.common,
            Message::Template(m) => &mut m.common,
        }
    }

    pub fn common(&self) -> &Common {
        match self {
            Message::Text(m) => &m.common,
            Message::Flex(m) => &m.common,
            Message::Image(m) => &m.common,
            Message::Location(m) => &m.common,
            Message::Template(m) => &m.common,
        }
    }

    /// Attaches quick-reply buttons (LINE shows only the last message's quick reply).
    pub fn with_quick_reply(mut self, items: Vec<QuickReplyItem>) -> Message {
        self.common_mut().quick_reply = Some(QuickReply { items });
        self
    }

    /// The message type name as LINE spells it (metrics labels, logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Text(_) => "text",
            Message::Flex(_) => "flex",
            Message::Image(_) => "image",
            Message::Location(_) => "location",
            Message::Template(_) => "template",
        }
    }
}

/// Properties every message may carry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Common {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_reply: Option<QuickReply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessage {
    pub text: String,
    #[serde(flatten)]
    pub common: Common,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlexMessage {
    /// Shown in notifications and the chat list; ≤ 1,500 characters.
    pub alt_text: String,
    pub contents: FlexContainer,
    #[serde(flatten)]
    pub common: Common,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageMessage {
    pub original_content_url: String,
    pub preview_image_url: String,
    #[serde(flatten)]
    pub common: Common,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationMessage {
    pub title: String,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    #[serde(flatten)]
    pub common: Common,
}

/// A template message; the template itself is kept as JSON (buttons, confirm, carousel).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMessage {
    pub alt_text: String,
    pub template: Value,
    #[serde(flatten)]
    pub common: Common,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sender {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuickReply {
    pub items: Vec<QuickReplyItem>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuickReplyItem {
    /// Always `"action"`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    pub action: Action,
}

impl QuickReplyItem {
    pub fn new(action: Action) -> Self {
        QuickReplyItem {
            kind: "action".into(),
            image_url: None,
            action,
        }
    }
}

/// Action objects (`spec: Action`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    #[serde(rename_all = "camelCase")]
    Postback {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        data: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_option: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill_in_text: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Uri {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        uri: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alt_uri: Option<AltUri>,
    },
    Message {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        text: String,
    },
    /// Opens LINE's location picker (quick reply only); the choice arrives as a `location` message event.
    Location {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    Camera {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    CameraRoll {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Datetimepicker {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        data: String,
        mode: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        initial: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<String>,
    },
    /// Rich menus only: switches to the menu behind an alias and gives the user a per-user link.
    #[serde(rename = "richmenuswitch", rename_all = "camelCase")]
    RichMenuSwitch {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        rich_menu_alias_id: String,
        data: String,
    },
    #[serde(rename_all = "camelCase")]
    Clipboard {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        clipboard_text: String,
    },
    /// An action type this version does not know (read back from LINE, never sent).
    #[serde(other)]
    Unknown,
}

impl Action {
    pub fn postback(label: impl Into<String>, data: impl Into<String>) -> Action {
        let label = label.into();
        Action::Postback {
            display_text: Some(label.clone()),
            label: Some(label),
            data: data.into(),
            input_option: None,
            fill_in_text: None,
        }
    }

    pub fn uri(label: impl Into<String>, uri: impl Into<String>) -> Action {
        Action::Uri {
            label: Some(label.into()),
            uri: uri.into(),
            alt_uri: None,
        }
    }

    pub fn message(label: impl Into<String>, text: impl Into<String>) -> Action {
        Action::Message {
            label: Some(label.into()),
            text: text.into(),
        }
    }

    pub fn location(label: impl Into<String>) -> Action {
        Action::Location {
            label: Some(label.into()),
        }
    }

    pub fn richmenu_switch(
        label: impl Into<String>,
        alias: impl Into<String>,
        data: impl Into<String>,
    ) -> Action {
        Action::RichMenuSwitch {
            label: Some(label.into()),
            rich_menu_alias_id: alias.into(),
            data: data.into(),
        }
    }

    pub fn label(&self) -> Option<&str> {
        match self {
            Action::Postback { label, .. }
            | Action::Uri { label, .. }
            | Action::Message { label, .. }
            | Action::Location { label }
            | Action::Camera { label }
            | Action::CameraRoll { label }
            | Action::Datetimepicker { label, .. }
            | Action::RichMenuSwitch { label, .. }
            | Action::Clipboard { label, .. } => label.as_deref(),
            Action::Unknown => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AltUri {
    pub desktop: String,
}

/// A Flex container: one bubble or a carousel of bubbles. Each serialises with its own `type`, so a bubble
/// inside a carousel carries `"type": "bubble"` as LINE requires.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FlexContainer {
    Bubble(Box<FlexBubble>),
    Carousel(FlexCarousel),
}

impl<'de> Deserialize<'de> for FlexContainer {
    /// Chooses by `type` (serde's struct tags are written but not checked on reading).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        match v.get("type").and_then(Value::as_str) {
            Some("bubble") => serde_json::from_value(v).map(|b| FlexContainer::Bubble(Box::new(b))),
            Some("carousel") => serde_json::from_value(v).map(FlexContainer::Carousel),
            other => {
                return Err(D::Error::custom(format!(
                    "unknown Flex container type {other:?}"
                )))
            }
        }
        .map_err(D::Error::custom)
    }
}

impl FlexContainer {
    pub fn bubble(b: FlexBubble) -> Self {
        FlexContainer::Bubble(Box::new(b))
    }

    pub fn carousel(contents: Vec<FlexBubble>) -> Self {
        FlexContainer::Carousel(FlexCarousel { contents })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "carousel")]
pub struct FlexCarousel {
    pub contents: Vec<FlexBubble>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "bubble", rename_all = "camelCase")]
pub struct FlexBubble {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<FlexComponent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hero: Option<FlexComponent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<FlexComponent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<FlexComponent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub styles: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// A Flex component of any kind (box, text, button, image, icon, span, separator, video, filler).
///
/// `contents` is `Some` for boxes (LINE requires it, even empty) and text with spans; everything else
/// (`layout`, `text`, `color`, `size`, `url`, `flex`, margins …) lives in `props`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlexComponent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<Vec<FlexComponent>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(flatten)]
    pub props: BTreeMap<String, Value>,
}

impl FlexComponent {
    fn new(kind: &str) -> Self {
        FlexComponent {
            kind: kind.into(),
            contents: None,
            action: None,
            props: BTreeMap::new(),
        }
    }

    /// A box (`layout`: `vertical`, `horizontal` or `baseline`).
    pub fn boxed(layout: &str, contents: Vec<FlexComponent>) -> Self {
        let mut c = Self::new("box").prop("layout", layout);
        c.contents = Some(contents);
        c
    }

    pub fn text(text: impl Into<String>) -> Self {
        Self::new("text").prop("text", text.into())
    }

    pub fn button(action: Action) -> Self {
        let mut c = Self::new("button");
        c.action = Some(action);
        c
    }

    pub fn image(url: impl Into<String>) -> Self {
        Self::new("image").prop("url", url.into())
    }

    pub fn separator() -> Self {
        Self::new("separator")
    }

    /// Sets any property (`"color"`, `"wrap"`, `"weight"`, …).
    pub fn prop(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.props.insert(key.into(), value.into());
        self
    }

    pub fn with_action(mut self, action: Action) -> Self {
        self.action = Some(action);
        self
    }
}

// ---------------------------------------------------------------- sending requests and responses

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushRequest {
    pub to: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notification_disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MulticastRequest {
    pub to: Vec<String>,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notification_disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastRequest {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notification_disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyRequest {
    pub reply_token: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notification_disabled: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentMessage {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_token: Option<String>,
}

/// Body of a push or reply success (`{sentMessages}`); multicast and broadcast answer `{}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendResponse {
    #[serde(default)]
    pub sent_messages: Vec<SentMessage>,
}

/// LINE's error body (`spec: ErrorResponse`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent_messages: Vec<SentMessage>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

impl ErrorBody {
    /// Parses LINE's error body; a body that is not LINE's JSON is kept as the message text.
    pub fn parse(raw: &[u8]) -> ErrorBody {
        serde_json::from_slice(raw).unwrap_or_else(|_| ErrorBody {
            message: String::from_utf8_lossy(&raw[..raw.len().min(500)]).into_owned(),
            ..ErrorBody::default()
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub display_name: String,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

// ---------------------------------------------------------------- rich menus

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RichMenuSize {
    pub width: u32,
    pub height: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RichMenuArea {
    pub bounds: Bounds,
    pub action: Action,
}

/// The rich-menu object we create (`spec: RichMenuRequest`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RichMenuRequest {
    pub size: RichMenuSize,
    pub selected: bool,
    pub name: String,
    pub chat_bar_text: String,
    pub areas: Vec<RichMenuArea>,
}

/// A rich menu as LINE returns it (`spec: RichMenuResponse`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RichMenuResponse {
    pub rich_menu_id: String,
    #[serde(flatten)]
    pub menu: RichMenuRequest,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RichMenuList {
    #[serde(default)]
    pub richmenus: Vec<RichMenuResponse>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RichMenuIdResponse {
    pub rich_menu_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RichMenuAlias {
    pub rich_menu_alias_id: String,
    pub rich_menu_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRichMenuAlias {
    pub rich_menu_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RichMenuAliasList {
    #[serde(default)]
    pub aliases: Vec<RichMenuAlias>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkLinkRequest {
    pub rich_menu_id: String,
    pub user_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkUnlinkRequest {
    pub user_ids: Vec<String>,
}

/// One operation of `POST /v2/bot/richmenu/batch`. Operations run in parallel, not chained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum BatchOperation {
    /// Everyone linked to `from` is linked to `to`.
    Link { from: String, to: String },
    /// Everyone linked to `from` is unlinked.
    Unlink { from: String },
    /// Every per-user link is removed (must be the only operation).
    UnlinkAll,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequest {
    pub operations: Vec<BatchOperation>,
    /// `[0-9a-zA-Z_-]{1,100}`; re-sending with the same key resumes only unprocessed users (14 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_request_key: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BatchPhase {
    Ongoing,
    Succeeded,
    Failed,
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchProgress {
    pub phase: BatchPhase,
    #[serde(default)]
    pub accepted_time: Option<String>,
    #[serde(default)]
    pub completed_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_text_message_with_quick_reply_serialises_as_line_expects() {
        let m = Message::text("地区を教えてください").with_quick_reply(vec![QuickReplyItem::new(
            Action::location("位置情報を送る"),
        )]);
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            json!({"type":"text","text":"地区を教えてください","quickReply":{"items":[
                {"type":"action","action":{"type":"location","label":"位置情報を送る"}}]}})
        );
    }

    #[test]
    fn a_richmenuswitch_action_uses_line_spelling() {
        let a = Action::richmenu_switch("くらし", "sonae-normal-b", "action=tab&tab=b");
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"type":"richmenuswitch","label":"くらし","richMenuAliasId":"sonae-normal-b","data":"action=tab&tab=b"})
        );
    }

    #[test]
    fn a_flex_box_keeps_empty_contents_and_arbitrary_properties() {
        let b = FlexComponent::boxed("vertical", vec![]).prop("paddingAll", "12px");
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            json!({"type":"box","layout":"vertical","contents":[],"paddingAll":"12px"})
        );
        let parsed: FlexComponent = serde_json::from_value(json!({
            "type":"text","text":"x","futureProp": {"a": 1}}))
        .unwrap();
        assert_eq!(parsed.props["futureProp"], json!({"a": 1}));
    }

    #[test]
    fn unknown_response_fields_and_action_types_are_tolerated() {
        let r: RichMenuList = serde_json::from_value(json!({"richmenus":[{
            "richMenuId":"richmenu-1","size":{"width":2500,"height":843},"selected":false,
            "name":"n","chatBarText":"メニュー","newField":true,
            "areas":[{"bounds":{"x":0,"y":0,"width":10,"height":10},"action":{"type":"hologram","beam":1}}]}],
            "nextPageToken": "z"})).unwrap();
        assert_eq!(r.richmenus[0].menu.areas[0].action, Action::Unknown);
        let p: BatchProgress =
            serde_json::from_value(json!({"phase":"paused","acceptedTime":"2026-01-01T00:00:00Z"}))
                .unwrap();
        assert_eq!(p.phase, BatchPhase::Unknown);
    }

    #[test]
    fn carousel_bubbles_carry_their_type_and_containers_read_back() {
        let c = FlexContainer::carousel(vec![FlexBubble::default(), FlexBubble::default()]);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            json!({"type":"carousel","contents":[{"type":"bubble"},{"type":"bubble"}]})
        );
        assert_eq!(serde_json::from_value::<FlexContainer>(v).unwrap(), c);
        let b = FlexContainer::bubble(FlexBubble {
            size: Some("kilo".into()),
            ..FlexBubble::default()
        });
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v, json!({"type":"bubble","size":"kilo"}));
        assert_eq!(serde_json::from_value::<FlexContainer>(v).unwrap(), b);
    }

    #[test]
    fn batch_operations_serialise_with_their_type_tag() {
        let r = BatchRequest {
            operations: vec![
                BatchOperation::Link {
                    from: "a".into(),
                    to: "b".into(),
                },
                BatchOperation::Unlink { from: "c".into() },
            ],
            resume_request_key: Some("k-1".into()),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"operations":[{"type":"link","from":"a","to":"b"},{"type":"unlink","from":"c"}],"resumeRequestKey":"k-1"})
        );
        assert_eq!(
            serde_json::to_value(BatchOperation::UnlinkAll).unwrap(),
            json!({"type":"unlinkAll"})
        );
    }

    #[test]
    fn error_bodies_that_are_not_json_are_kept_as_text() {
        assert_eq!(
            ErrorBody::parse(b"<html>bad gateway</html>").message,
            "<html>bad gateway</html>"
        );
        let e = ErrorBody::parse(br#"{"message":"The request body has 1 error(s)","details":[{"message":"May not be empty","property":"messages[0].text"}]}"#);
        assert_eq!(e.details[0].property.as_deref(), Some("messages[0].text"));
    }
}
