//! One-off converter: LINE's upstream OpenAPI YAML in `spec/*.yml` → the `spec/*.json` this crate embeds.
//!
//! Run from anywhere: `cargo run -p line-openapi --example spec_yaml_to_json`. Keys keep the YAML's order,
//! two-space indentation, a final newline. The test `tests/vendored_spec.rs` proves each JSON document
//! equals its YAML as parsed before (`serde_yaml` into `serde_json::Value`). Only this example and that
//! test use `serde_yaml` (a dev-dependency); the library loads JSON.

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec");
    for name in ["messaging-api", "webhook"] {
        let yml = dir.join(format!("{name}.yml"));
        let json = dir.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&yml)
            .unwrap_or_else(|e| panic!("reading {}: {e}", yml.display()));
        // `serde_yaml::Value` keeps the document's key order; `serde_json::Value` would sort the keys.
        let value: serde_yaml::Value = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", yml.display()));
        let mut out = serde_json::to_string_pretty(&value)
            .unwrap_or_else(|e| panic!("{} has no JSON form: {e}", yml.display()));
        out.push('\n');
        std::fs::write(&json, out).unwrap_or_else(|e| panic!("writing {}: {e}", json.display()));
        println!("{} -> {}", yml.display(), json.display());
    }
}
