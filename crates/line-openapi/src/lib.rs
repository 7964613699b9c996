//! The official LINE OpenAPI contract, checked against JSON bodies.
//!
//! LINE publishes its Messaging API and webhook formats as OpenAPI 3.0 YAML (`line/line-openapi`, vendored
//! unchanged in this crate's `spec/` with its licence, and converted once to JSON next to it; see
//! `spec/README.md`). This crate embeds the JSON, turns it into `serde_json::Value` once (cached in a
//! `OnceLock`), and walks a schema over a value by hand. A general JSON-Schema crate does not understand
//! OpenAPI 3.0's dialect (`nullable`, `discriminator` + `mapping` dispatch through `allOf` parents), which is
//! exactly what the Message, Action, FlexComponent and Event hierarchies use.
//!
//! What is checked: `$ref`, `allOf`, `oneOf`, `anyOf`, `discriminator` (with `mapping`, dispatching to the
//! concrete schema; an unknown discriminator value is an error), `required`, `properties`,
//! `additionalProperties` (when it is a schema), `enum`, `type`, `nullable`, `minLength`/`maxLength`
//! (Unicode scalar values), `pattern`, `minItems`/`maxItems`, `uniqueItems`, `minimum`/`maximum`, and the
//! cheap formats (`uuid`, `date-time`, `uri`, `int32`, `int64`). Unknown properties are allowed, as in the
//! spec (LINE adds fields without notice).
//!
//! Every violation names its JSON path in LINE's own style (`messages[0].contents.body.contents[2].text`),
//! so the stand-in can return it as `details[].property`.
//!
//! # Example
//!
//! ```
//! use serde_json::json;
//!
//! let push = json!({"to": "U0123456789abcdef0123456789abcdef",
//!                   "messages": [{"type": "text", "text": "こんにちは"}]});
//! assert_eq!(line_openapi::validate_request("POST", "/v2/bot/message/push", &push), Ok(()));
//!
//! let bad = json!({"messages": [{"type": "text"}]});
//! let errors = line_openapi::validate_request("POST", "/v2/bot/message/push", &bad).unwrap_err();
//! assert!(errors.iter().any(|e| e.starts_with("messages[0].text: is required")));
//!
//! assert!(line_openapi::validate_schema("webhook:FollowEvent", &json!({"type": "follow"})).is_err());
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// `messaging-api.yml` from `line/line-openapi` at commit 6e4c2a2a1b7b059ea3920456d4f88d03fd8ef0bb, as JSON.
pub const MESSAGING_API_JSON: &str = include_str!("../spec/messaging-api.json");
/// `webhook.yml` from the same commit, as JSON.
pub const WEBHOOK_JSON: &str = include_str!("../spec/webhook.json");

/// Which of the two vendored documents a schema or operation lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Document {
    MessagingApi,
    Webhook,
}

fn parse(text: &str, name: &str) -> Value {
    // The files are compiled in and tested; failing here is a build defect, not bad input.
    serde_json::from_str(text).unwrap_or_else(|e| panic!("vendored {name} is not valid JSON: {e}"))
}

/// The parsed document, built on first use.
pub fn document(doc: Document) -> &'static Value {
    static MESSAGING: OnceLock<Value> = OnceLock::new();
    static WEBHOOK: OnceLock<Value> = OnceLock::new();
    match doc {
        Document::MessagingApi => {
            MESSAGING.get_or_init(|| parse(MESSAGING_API_JSON, "messaging-api.json"))
        }
        Document::Webhook => WEBHOOK.get_or_init(|| parse(WEBHOOK_JSON, "webhook.json")),
    }
}

/// One place where a value breaks the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// JSON path in LINE's style, e.g. `messages[0].text`; empty for the body itself.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "(body): {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

fn strings(v: Vec<Violation>) -> Vec<String> {
    v.into_iter().map(|v| v.to_string()).collect()
}

/// Validates `value` against `#/components/schemas/{name}`, looked up in `messaging-api.yml` first and then
/// in `webhook.yml`; `webhook:Name` or `messaging:Name` picks the document explicitly.
pub fn validate_schema(name: &str, value: &Value) -> Result<(), Vec<String>> {
    schema_violations(name, value).map_err(strings)
}

/// [`validate_schema`] with structured violations.
pub fn schema_violations(name: &str, value: &Value) -> Result<(), Vec<Violation>> {
    let (docs, bare): (&[Document], &str) = if let Some(n) = name.strip_prefix("webhook:") {
        (&[Document::Webhook], n)
    } else if let Some(n) = name.strip_prefix("messaging:") {
        (&[Document::MessagingApi], n)
    } else {
        (&[Document::MessagingApi, Document::Webhook], name)
    };
    for &d in docs {
        let root = document(d);
        if let Some(schema) = root.pointer(&format!("/components/schemas/{bare}")) {
            return Walker::run(root, schema, value);
        }
    }
    Err(vec![Violation {
        path: String::new(),
        message: format!("no schema named {name:?} in the LINE OpenAPI documents"),
    }])
}

/// Validates a request body against the JSON request schema of `method path` in `messaging-api.yml`.
/// `path` is either the spec's template (`/v2/bot/richmenu/{richMenuId}`) or a concrete path
/// (`/v2/bot/richmenu/richmenu-0a1b…`, query string ignored). An operation without a JSON body accepts only
/// `null` (no body) or `{}`.
pub fn validate_request(method: &str, path: &str, body: &Value) -> Result<(), Vec<String>> {
    request_violations(method, path, body).map_err(strings)
}

/// [`validate_request`] with structured violations.
pub fn request_violations(method: &str, path: &str, body: &Value) -> Result<(), Vec<Violation>> {
    let root = document(Document::MessagingApi);
    let (_, op) = find_operation(method, path).ok_or_else(|| no_operation(method, path))?;
    match op.pointer("/requestBody/content/application~1json/schema") {
        Some(schema) => Walker::run(root, schema, body),
        None if is_empty(body) => Ok(()),
        None => Err(vec![Violation {
            path: String::new(),
            message: format!("{method} {path} takes no JSON body"),
        }]),
    }
}

/// Validates a response body against the schema the spec declares for `method path` and `status`.
///
/// Where the spec is silent but LINE's reference documents the behaviour (spec-vs-docs gaps, see
/// `research/line-api.md` §15), the documented form is accepted: any undeclared 4xx/5xx must be an
/// `ErrorResponse` (`{"message", "details"?}`: 401, 413, 415, 429 …), and `POST /v2/bot/richmenu/batch`
/// may answer `200` (reference) as well as `202` (spec). A declared status without JSON content accepts
/// only an empty body or `{}`; an undeclared 2xx is a violation.
pub fn validate_response(
    method: &str,
    path: &str,
    status: u16,
    body: &Value,
) -> Result<(), Vec<String>> {
    response_violations(method, path, status, body).map_err(strings)
}

/// [`validate_response`] with structured violations.
pub fn response_violations(
    method: &str,
    path: &str,
    status: u16,
    body: &Value,
) -> Result<(), Vec<Violation>> {
    let root = document(Document::MessagingApi);
    let (template, op) = find_operation(method, path).ok_or_else(|| no_operation(method, path))?;
    let responses = op.get("responses");
    let mut declared = responses.and_then(|r| r.get(status.to_string()));
    if declared.is_none()
        && status == 200
        && method.eq_ignore_ascii_case("POST")
        && template == "/v2/bot/richmenu/batch"
    {
        declared = responses.and_then(|r| r.get("202"));
    }
    match declared {
        Some(resp) => match resp.pointer("/content/application~1json/schema") {
            Some(schema) => Walker::run(root, schema, body),
            None if is_empty(body) || resp.get("content").is_some() => Ok(()),
            None => Err(vec![Violation {
                path: String::new(),
                message: format!("{method} {template} {status} declares no body, got {body}"),
            }]),
        },
        None if status >= 400 => {
            let schema = root
                .pointer("/components/schemas/ErrorResponse")
                .ok_or_else(|| no_operation(method, path))?;
            Walker::run(root, schema, body)
        }
        None => Err(vec![Violation {
            path: String::new(),
            message: format!("{method} {template} does not declare status {status}"),
        }]),
    }
}

fn is_empty(body: &Value) -> bool {
    match body {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn no_operation(method: &str, path: &str) -> Vec<Violation> {
    vec![Violation {
        path: String::new(),
        message: format!("no operation {method} {path} in messaging-api.yml"),
    }]
}

/// Finds the operation for a method and a template or concrete path; literal segments beat `{params}`.
pub fn find_operation(method: &str, path: &str) -> Option<(&'static str, &'static Value)> {
    let root = document(Document::MessagingApi);
    let method = method.to_ascii_lowercase();
    let path = path.split('?').next().unwrap_or(path);
    let paths = root.get("paths")?.as_object()?;
    let wanted: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut best: Option<(usize, &'static str, &'static Value)> = None;
    for (template, item) in paths {
        let Some(op) = item.get(&method) else {
            continue;
        };
        if template == path {
            return Some((template.as_str(), op));
        }
        let segs: Vec<&str> = template.trim_matches('/').split('/').collect();
        if segs.len() != wanted.len() {
            continue;
        }
        let mut literal = 0;
        let mut ok = true;
        for (t, w) in segs.iter().zip(&wanted) {
            if t.starts_with('{') && t.ends_with('}') {
                if w.is_empty() {
                    ok = false;
                    break;
                }
            } else if t == w {
                literal += 1;
            } else {
                ok = false;
                break;
            }
        }
        if ok && best.is_none_or(|(l, _, _)| literal > l) {
            best = Some((literal, template.as_str(), op));
        }
    }
    best.map(|(_, t, op)| (t, op))
}

struct Walker<'a> {
    root: &'a Value,
    out: Vec<Violation>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn regex(pattern: &str) -> Option<regex::Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(pattern.to_string())
        .or_insert_with(|| regex::Regex::new(pattern).ok())
        .clone()
}

impl<'a> Walker<'a> {
    fn run(root: &'a Value, schema: &'a Value, value: &Value) -> Result<(), Vec<Violation>> {
        let mut w = Walker {
            root,
            out: Vec::new(),
        };
        w.check(schema, value, "", true, 0);
        if w.out.is_empty() {
            Ok(())
        } else {
            Err(w.out)
        }
    }

    fn push(&mut self, path: &str, message: String) {
        self.out.push(Violation {
            path: path.to_string(),
            message,
        });
    }

    fn resolve(&mut self, reference: &str, path: &str) -> Option<&'a Value> {
        let found = reference
            .strip_prefix('#')
            .and_then(|p| self.root.pointer(p));
        if found.is_none() {
            self.push(path, format!("unresolvable $ref {reference}"));
        }
        found
    }

    /// `dispatch` is false while checking an `allOf` parent, so a parent's discriminator does not send the
    /// walk back down to the child it came from.
    fn check(&mut self, schema: &'a Value, v: &Value, path: &str, dispatch: bool, depth: usize) {
        if depth > 64 {
            self.push(path, "schema nesting deeper than 64 levels".into());
            return;
        }
        let Some(s) = schema.as_object() else {
            return;
        };
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            if let Some(target) = self.resolve(r, path) {
                self.check(target, v, path, dispatch, depth + 1);
            }
            return;
        }
        if v.is_null() {
            let nullable = s.get("nullable").and_then(Value::as_bool) == Some(true);
            if !nullable && (s.contains_key("type") || s.contains_key("properties")) {
                self.push(path, "must not be null".into());
            }
            return;
        }
        if dispatch {
            if let Some(d) = s.get("discriminator") {
                self.dispatch(d, v, path, depth);
                return;
            }
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for member in all {
                self.check(member, v, path, false, depth + 1);
            }
        }
        for (kw, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(alts) = s.get(kw).and_then(Value::as_array) {
                let matching = alts
                    .iter()
                    .filter(|alt| {
                        let mut sub = Walker {
                            root: self.root,
                            out: Vec::new(),
                        };
                        sub.check(alt, v, path, true, depth + 1);
                        sub.out.is_empty()
                    })
                    .count();
                if matching == 0 || (exactly_one && matching > 1) {
                    self.push(
                        path,
                        format!("matches {matching} of the {} {kw} alternatives", alts.len()),
                    );
                }
            }
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let actual = type_name(v);
            let ok = t == actual
                || (t == "number" && actual == "integer")
                || (t == "integer" && v.as_f64().is_some_and(|f| f.fract() == 0.0));
            if !ok {
                self.push(path, format!("must be of type {t}, not {actual}"));
                return;
            }
        }
        if let Some(options) = s.get("enum").and_then(Value::as_array) {
            if !options.contains(v) {
                let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
                self.push(path, format!("{v} is not one of [{}]", list.join(", ")));
            }
        }
        match v {
            Value::String(text) => self.check_string(s, text, path),
            Value::Number(_) => self.check_number(s, v, path),
            Value::Array(items) => {
                let n = items.len() as u64;
                if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
                    if n < min {
                        self.push(path, format!("must have at least {min} items, has {n}"));
                    }
                }
                if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
                    if n > max {
                        self.push(path, format!("must have at most {max} items, has {n}"));
                    }
                }
                if s.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
                    for (i, a) in items.iter().enumerate() {
                        if items[..i].contains(a) {
                            self.push(&format!("{path}[{i}]"), "duplicate item".into());
                        }
                    }
                }
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{path}[{i}]"), true, depth + 1);
                    }
                }
            }
            Value::Object(map) => {
                if let Some(req) = s.get("required").and_then(Value::as_array) {
                    for key in req.iter().filter_map(Value::as_str) {
                        if !map.contains_key(key) {
                            self.push(&join(path, key), "is required".into());
                        }
                    }
                }
                let props = s.get("properties").and_then(Value::as_object);
                for (key, val) in map {
                    match props.and_then(|p| p.get(key)) {
                        Some(ps) => self.check(ps, val, &join(path, key), true, depth + 1),
                        None => {
                            if let Some(extra) = s.get("additionalProperties") {
                                if extra.is_object() {
                                    self.check(extra, val, &join(path, key), true, depth + 1);
                                } else if extra == &Value::Bool(false) {
                                    self.push(&join(path, key), "is not allowed".into());
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, d: &'a Value, v: &Value, path: &str, depth: usize) {
        let Some(prop) = d.get("propertyName").and_then(Value::as_str) else {
            self.push(
                path,
                "discriminator without propertyName in the spec".into(),
            );
            return;
        };
        if !v.is_object() {
            self.push(
                path,
                format!("must be of type object, not {}", type_name(v)),
            );
            return;
        }
        let Some(tag) = v.get(prop) else {
            self.push(&join(path, prop), "is required".into());
            return;
        };
        let Some(tag) = tag.as_str() else {
            self.push(&join(path, prop), "must be of type string".into());
            return;
        };
        let mapping = d.get("mapping").and_then(Value::as_object);
        let target = mapping
            .and_then(|m| m.get(tag))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                // Without an explicit mapping entry OpenAPI maps the value to the schema of that name.
                let implicit = format!("#/components/schemas/{tag}");
                self.root.pointer(&implicit[1..]).map(|_| implicit)
            });
        match target {
            Some(reference) => {
                // Every concrete schema in LINE's spec lists its parent in `allOf`, so the parent's own
                // properties are checked on the way (with dispatch off, so no loop).
                if let Some(t) = self.resolve(&reference, path) {
                    self.check(t, v, path, false, depth + 1);
                }
            }
            None => {
                let known: Vec<&str> = mapping
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                self.push(
                    &join(path, prop),
                    format!(
                        "unknown {prop} {tag:?}; the spec knows [{}]",
                        known.join(", ")
                    ),
                );
            }
        }
    }

    fn check_string(&mut self, s: &serde_json::Map<String, Value>, text: &str, path: &str) {
        let len = text.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
            if len < min {
                self.push(path, format!("must be at least {min} characters, is {len}"));
            }
        }
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                self.push(path, format!("must be at most {max} characters, is {len}"));
            }
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str) {
            match regex(p) {
                Some(re) if !re.is_match(text) => {
                    self.push(path, format!("{text:?} does not match the pattern {p}"))
                }
                Some(_) => {}
                None => self.push(path, format!("the spec's pattern {p} does not compile")),
            }
        }
        match s.get("format").and_then(Value::as_str) {
            Some("uuid") if uuid::Uuid::try_parse(text).is_err() => {
                self.push(path, format!("{text:?} is not a UUID"))
            }
            Some("date-time") if chrono::DateTime::parse_from_rfc3339(text).is_err() => {
                self.push(path, format!("{text:?} is not an RFC 3339 date-time"))
            }
            Some("uri") if url::Url::parse(text).is_err() => {
                self.push(path, format!("{text:?} is not an absolute URI"))
            }
            _ => {}
        }
    }

    fn check_number(&mut self, s: &serde_json::Map<String, Value>, v: &Value, path: &str) {
        let Some(x) = v.as_f64() else {
            return;
        };
        if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
            if x < min {
                self.push(path, format!("must be at least {min}, is {v}"));
            }
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
            if x > max {
                self.push(path, format!("must be at most {max}, is {v}"));
            }
        }
        let (lo, hi) = match s.get("format").and_then(Value::as_str) {
            Some("int32") => (i32::MIN as f64, i32::MAX as f64),
            Some("int64") => (i64::MIN as f64, i64::MAX as f64),
            _ => return,
        };
        if x < lo || x > hi || x.fract() != 0.0 {
            self.push(path, format!("{v} is not a valid {} integer", s["format"]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errs(r: Result<(), Vec<String>>) -> Vec<String> {
        r.err().unwrap_or_default()
    }

    #[test]
    fn both_documents_parse_and_have_schemas() {
        for d in [Document::MessagingApi, Document::Webhook] {
            assert!(document(d).pointer("/components/schemas").is_some());
        }
    }

    #[test]
    fn a_plain_text_push_is_valid() {
        let body = json!({"to": "U0123456789abcdef0123456789abcdef", "messages": [{"type": "text", "text": "こんにちは"}]});
        assert_eq!(
            validate_request("POST", "/v2/bot/message/push", &body),
            Ok(())
        );
    }

    #[test]
    fn a_push_without_to_and_with_a_textless_message_names_both_paths() {
        let body = json!({"messages": [{"type": "text"}]});
        let e = errs(validate_request("POST", "/v2/bot/message/push", &body));
        assert!(e.iter().any(|m| m.starts_with("to: is required")), "{e:?}");
        assert!(
            e.iter()
                .any(|m| m.starts_with("messages[0].text: is required")),
            "{e:?}"
        );
    }

    #[test]
    fn an_unknown_message_type_is_rejected_through_the_discriminator() {
        let body = json!({"to": "U0", "messages": [{"type": "hologram"}]});
        let e = errs(validate_request("POST", "/v2/bot/message/push", &body));
        assert!(
            e.iter()
                .any(|m| m.contains("messages[0].type") && m.contains("hologram")),
            "{e:?}"
        );
    }

    #[test]
    fn six_messages_break_max_items_and_501_recipients_break_the_multicast_limit() {
        let msg = json!({"type": "text", "text": "x"});
        let body = json!({"to": ["U0"], "messages": vec![msg.clone(); 6]});
        let e = errs(validate_request("POST", "/v2/bot/message/push", &body));
        assert!(
            e.iter()
                .any(|m| m.contains("messages: must have at most 5 items")),
            "{e:?}"
        );
        let to: Vec<String> = (0..501).map(|i| format!("U{i:032x}")).collect();
        let body = json!({"to": to, "messages": [msg]});
        let e = errs(validate_request("POST", "/v2/bot/message/multicast", &body));
        assert!(
            e.iter()
                .any(|m| m.contains("to: must have at most 500 items")),
            "{e:?}"
        );
    }

    #[test]
    fn a_flex_bubble_is_walked_down_to_its_components_and_actions() {
        let good = json!({"type": "flex", "altText": "【大雨警報】", "contents": {
            "type": "bubble",
            "body": {"type": "box", "layout": "vertical", "contents": [
                {"type": "text", "text": "避難してください", "weight": "bold"},
                {"type": "button", "action": {"type": "uri", "label": "地図", "uri": "https://example.jp/map"}}
            ]}
        }});
        assert_eq!(validate_schema("Message", &good), Ok(()));

        let mut bad = good.clone();
        bad["contents"]["body"]["layout"] = json!("diagonal");
        bad["contents"]["body"]["contents"][1]["action"] =
            json!({"type": "uri", "label": "地図", "uri": "地図"});
        bad["contents"]["body"]["contents"][0]["weight"] = json!("heavy");
        let e = errs(validate_schema("Message", &bad));
        assert!(
            e.iter().any(|m| m.starts_with("contents.body.layout:")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("contents.body.contents[1].action.uri:")
                    && m.contains("not an absolute URI")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("contents.body.contents[0].weight:")),
            "{e:?}"
        );
    }

    #[test]
    fn quick_reply_allows_13_items_and_not_14() {
        let item = json!({"type": "action", "action": {"type": "location", "label": "位置情報"}});
        let mut msg = json!({"type": "text", "text": "地区を選んでください", "quickReply": {"items": vec![item.clone(); 13]}});
        assert_eq!(validate_schema("Message", &msg), Ok(()));
        msg["quickReply"]["items"] = json!(vec![item; 14]);
        let e = errs(validate_schema("Message", &msg));
        assert!(
            e.iter()
                .any(|m| m.contains("quickReply.items: must have at most 13")),
            "{e:?}"
        );
    }

    #[test]
    fn patterns_and_formats_are_enforced() {
        let e = errs(validate_schema(
            "CreateRichMenuAliasRequest",
            &json!({"richMenuAliasId": "Bad Alias!", "richMenuId": "richmenu-1"}),
        ));
        assert!(
            e.iter().any(|m| m.contains("does not match the pattern")),
            "{e:?}"
        );
        let ok = json!({"richMenuAliasId": "tab-disaster_1", "richMenuId": "richmenu-1"});
        assert_eq!(validate_schema("CreateRichMenuAliasRequest", &ok), Ok(()));
        let e = errs(validate_schema(
            "RichMenuBatchProgressResponse",
            &json!({"phase": "succeeded", "acceptedTime": "yesterday"}),
        ));
        assert!(e.iter().any(|m| m.contains("RFC 3339")), "{e:?}");
    }

    #[test]
    fn rich_menu_batch_operations_dispatch_on_their_type() {
        let ok = json!({"operations": [{"type": "link", "from": "richmenu-a", "to": "richmenu-b"}, {"type": "unlinkAll"}], "resumeRequestKey": "switch-1"});
        assert_eq!(
            validate_request("POST", "/v2/bot/richmenu/batch", &ok),
            Ok(())
        );
        let bad = json!({"operations": [{"type": "link", "from": "richmenu-a"}], "resumeRequestKey": "with space"});
        let e = errs(validate_request("POST", "/v2/bot/richmenu/batch", &bad));
        assert!(
            e.iter()
                .any(|m| m.starts_with("operations[0].to: is required")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("resumeRequestKey:")),
            "{e:?}"
        );
    }

    #[test]
    fn webhook_events_validate_against_webhook_yml() {
        let ev = json!({
            "destination": "U0123456789abcdef0123456789abcdef",
            "events": [{
                "type": "message", "mode": "active", "timestamp": 1700000000000i64,
                "source": {"type": "user", "userId": "U0123456789abcdef0123456789abcdef"},
                "webhookEventId": "01HZZZZZZZZZZZZZZZZZZZZZZZ",
                "deliveryContext": {"isRedelivery": false},
                "replyToken": "abc",
                "message": {"type": "location", "id": "1", "latitude": 43.06, "longitude": 141.35}
            }]
        });
        assert_eq!(validate_schema("webhook:CallbackRequest", &ev), Ok(()));
        let mut bad = ev.clone();
        bad["destination"] = json!("not-a-user");
        bad["events"][0]["message"]
            .as_object_mut()
            .map(|m| m.remove("latitude"));
        let e = errs(validate_schema("webhook:CallbackRequest", &bad));
        assert!(e.iter().any(|m| m.starts_with("destination:")), "{e:?}");
        assert!(
            e.iter()
                .any(|m| m.starts_with("events[0].message.latitude: is required")),
            "{e:?}"
        );
    }

    #[test]
    fn responses_are_checked_per_status_with_documented_gaps() {
        let ok = json!({"sentMessages": [{"id": "1", "quoteToken": "q"}]});
        assert_eq!(
            validate_response("POST", "/v2/bot/message/push", 200, &ok),
            Ok(())
        );
        assert!(validate_response(
            "POST",
            "/v2/bot/message/push",
            200,
            &json!({"sentMessages": "x"})
        )
        .is_err());
        let rate = json!({"message": "The API rate limit has been exceeded. Try again later."});
        assert_eq!(
            validate_response("POST", "/v2/bot/richmenu", 429, &rate),
            Ok(())
        );
        assert!(validate_response("POST", "/v2/bot/richmenu", 429, &json!({"error": 1})).is_err());
        assert_eq!(
            validate_response("POST", "/v2/bot/richmenu/batch", 200, &json!({})),
            Ok(())
        );
        assert!(validate_response("POST", "/v2/bot/richmenu", 201, &json!({})).is_err());
    }

    #[test]
    fn concrete_paths_find_their_template_and_literals_win() {
        let (t, _) = find_operation("GET", "/v2/bot/richmenu/list").expect("list");
        assert_eq!(t, "/v2/bot/richmenu/list");
        let (t, _) = find_operation("GET", "/v2/bot/richmenu/richmenu-abc").expect("get");
        assert_eq!(t, "/v2/bot/richmenu/{richMenuId}");
        let (t, _) =
            find_operation("get", "/v2/bot/richmenu/progress/batch?requestId=x").expect("progress");
        assert_eq!(t, "/v2/bot/richmenu/progress/batch");
        assert!(find_operation("GET", "/v2/bot/nothing").is_none());
    }

    #[test]
    fn nullable_fields_accept_null_and_others_do_not() {
        let e = errs(validate_schema(
            "Message",
            &json!({"type": "text", "text": null}),
        ));
        assert!(
            e.iter().any(|m| m.starts_with("text: must not be null")),
            "{e:?}"
        );
    }
}
