//! The JSON documents the crate embeds are LINE's upstream YAML (`spec/*.yml`, byte-identical copies of
//! `line/line-openapi` at 6e4c2a2a), converted once by `examples/spec_yaml_to_json.rs`. This proves the
//! conversion lost and changed nothing: each JSON document equals its YAML parsed the way the crate parsed
//! it before it embedded JSON (`serde_yaml` into `serde_json::Value`).

use serde_json::Value;

fn from_yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("the vendored YAML parses")
}

fn from_json(text: &str) -> Value {
    serde_json::from_str(text).expect("the vendored JSON parses")
}

#[test]
fn the_messaging_api_json_equals_upstreams_yaml() {
    let yaml = from_yaml(include_str!("../spec/messaging-api.yml"));
    let json = from_json(line_openapi::MESSAGING_API_JSON);
    assert!(yaml
        .pointer("/paths/~1v2~1bot~1message~1push/post")
        .is_some());
    assert!(
        yaml == json,
        "spec/messaging-api.json differs from spec/messaging-api.yml; regenerate it with \
         `cargo run -p line-openapi --example spec_yaml_to_json`"
    );
}

#[test]
fn the_webhook_json_equals_upstreams_yaml() {
    let yaml = from_yaml(include_str!("../spec/webhook.yml"));
    let json = from_json(line_openapi::WEBHOOK_JSON);
    assert!(yaml.pointer("/components/schemas/FollowEvent").is_some());
    assert!(
        yaml == json,
        "spec/webhook.json differs from spec/webhook.yml; regenerate it with \
         `cargo run -p line-openapi --example spec_yaml_to_json`"
    );
}

#[test]
fn the_crate_loads_the_same_documents() {
    use line_openapi::{document, Document};
    assert_eq!(
        document(Document::MessagingApi),
        &from_yaml(include_str!("../spec/messaging-api.yml"))
    );
    assert_eq!(
        document(Document::Webhook),
        &from_yaml(include_str!("../spec/webhook.yml"))
    );
}
