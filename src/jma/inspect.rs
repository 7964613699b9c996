//! `sonae jma inspect FILE...`: one JSON object per file and line, for operators and tests.
//!
//! Required fields (issue 3, item 7): `file`; `control` {title, status, datetime}; `head` {title,
//! report_datetime, info_type, event_id, serial, info_kind}; `areas` (every `Body/Warning` Item Area with its
//! coded Kinds, plus VTSE41 `Body/Tsunami/Forecast/Item` as block 「津波予報」); `intensity` for seismic
//! documents. A file that cannot be read or parsed gives {file, error}.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde_json::{json, Value};

use super::report::{self, Domain, Report};

fn dt(d: &Option<DateTime<FixedOffset>>) -> Value {
    match d {
        Some(d) => Value::String(d.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        None => Value::Null,
    }
}

fn enum_str<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The inspect object of a parsed report (without `file`).
pub fn report_json(r: &Report) -> serde_json::Map<String, Value> {
    let mut areas = Vec::new();
    for block in &r.warnings {
        for item in &block.items {
            let kinds: Vec<Value> = item
                .kinds
                .iter()
                .map(|k| json!({"code": k.code, "name": k.name, "status": k.status}))
                .collect();
            for a in &item.areas {
                areas.push(json!({
                    "block": block.block_type,
                    "code": a.code,
                    "name": a.name,
                    "kinds": kinds,
                }));
            }
        }
    }
    for item in &r.details.tsunami_forecast {
        let kinds = if item.kind.code.is_empty() {
            vec![]
        } else {
            vec![json!({"code": item.kind.code, "name": item.kind.name, "status": ""})]
        };
        areas.push(json!({
            "block": "津波予報",
            "code": item.area.code,
            "name": item.area.name,
            "kinds": kinds,
        }));
    }
    let mut m = serde_json::Map::new();
    m.insert("data_type".into(), json!(r.data_type));
    m.insert(
        "control".into(),
        json!({
            "title": r.control.title,
            "status": enum_str(&r.control.status),
            "datetime": dt(&r.control.datetime),
            "editorial_office": r.control.editorial_office,
            "publishing_office": r.control.publishing_office,
        }),
    );
    m.insert(
        "head".into(),
        json!({
            "title": r.head.title,
            "report_datetime": dt(&r.head.report_datetime),
            "target_datetime": dt(&r.head.target_datetime),
            "info_type": enum_str(&r.head.info_type),
            "event_id": r.head.event_id,
            "serial": r.head.serial,
            "info_kind": r.head.info_kind,
            "info_kind_version": r.head.info_kind_version,
        }),
    );
    m.insert("areas".into(), Value::Array(areas));
    if r.details.domain == Domain::Seismology {
        m.insert("intensity".into(), Value::Array(intensity_rows(r)));
    }
    if let Some(reason) = &r.details.unhandled {
        m.insert("unhandled".into(), json!(reason));
    }
    if let Some(rf) = &r.details.river_flood {
        m.insert("river_flood".into(), enum_str(rf));
    }
    if !r.details.volcano_info.is_empty() {
        m.insert("volcano_info".into(), enum_str(&r.details.volcano_info));
    }
    m
}

/// Every City of `Body/Intensity/Observation/Pref/Area`, or every Area when no City level exists.
fn intensity_rows(r: &Report) -> Vec<Value> {
    let Some(int) = &r.details.intensity else {
        return vec![];
    };
    let has_city = int
        .prefs
        .iter()
        .any(|p| p.areas.iter().any(|a| !a.cities.is_empty()));
    let mut rows = Vec::new();
    for p in &int.prefs {
        for a in &p.areas {
            if has_city {
                for c in &a.cities {
                    rows.push(json!({"code": c.code, "name": c.name, "max_int": c.max_int}));
                }
            } else {
                rows.push(json!({"code": a.code, "name": a.name, "max_int": a.max_int}));
            }
        }
    }
    rows
}

/// The inspect line for one file's bytes. `Err` holds the {file, error} object.
pub fn inspect_bytes(file: &str, bytes: &[u8]) -> Result<Value, Value> {
    match report::parse(bytes) {
        Ok(mut r) => {
            // The file name may name the exact code (VXKO51); the title only gives the family.
            if let Some(code) = report::data_type_from_url(file) {
                if r.data_type.is_empty() || (code.starts_with(&r.data_type) && code != r.data_type)
                {
                    r.data_type = code.to_owned();
                }
            }
            let mut m = serde_json::Map::new();
            m.insert("file".into(), json!(file));
            m.extend(report_json(&r));
            Ok(Value::Object(m))
        }
        Err(e) => Err(json!({"file": file, "error": e.to_string()})),
    }
}

/// Runs the command: prints one line per file to `out`; returns false if any file failed.
pub fn run(files: &[impl AsRef<Path>], out: &mut impl Write) -> std::io::Result<bool> {
    let mut all_ok = true;
    for f in files {
        let f = f.as_ref();
        let name = f.display().to_string();
        let line = match std::fs::read(f) {
            Ok(bytes) => inspect_bytes(&name, &bytes),
            Err(e) => Err(json!({"file": name, "error": format!("cannot read file: {e}")})),
        };
        let v = match line {
            Ok(v) => v,
            Err(v) => {
                all_ok = false;
                v
            }
        };
        serde_json::to_writer(&mut *out, &v)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(all_ok)
}
