//! The house rule, checked on every run: top-level modules of `src/` form layers that only point down, and
//! no import cycle joins them (ARCHITECTURE.md, "Where new code goes").
//!
//! The graph is read from the source text: every `crate::NAME` path and every `crate::{A, B}` group in a
//! module's files is an edge from the module to NAME. Comments and unit-test code (`*_tests.rs` files and
//! everything after a file's `#[cfg(test)]` line) are left out: tests may build whatever they need.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module's layer, lowest first. A module may use modules of its own layer (without a cycle)
/// and of lower layers, never of higher ones.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &[
            "secret",
            "ids",
            "health",
            "metrics",
            "telemetry",
            "store",
            "scheduler",
            "infra",
            "systemd",
            "backoff",
            "jst",
            "assets",
            "text",
        ],
    ),
    ("domain", &["mode", "jma", "place"]),
    ("adapters", &["line", "services", "resident", "delivery"]),
    ("features", &["disaster", "plow", "cap"]),
    ("console", &["console"]),
    ("configuration", &["config"]),
    ("wiring", &["app", "demo", "cli"]),
];

/// The code of a file without its comments (doc links are not imports) and without its unit tests.
fn production_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    if path.to_string_lossy().ends_with("_tests.rs") {
        return String::new();
    }
    let code = match text.find("\n#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text,
    };
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeSet::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        let m = name.trim_end_matches(".rs").to_string();
        if m != "lib" && m != "main" {
            modules.insert(m);
        }
    }
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().and_then(|x| x.to_str()) != Some("rs") {
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().to_string();
            let top = rel
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            if !modules.contains(&top) {
                continue;
            }
            let text = production_text(&p);
            let mut targets = BTreeSet::new();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    let end = group.find('}').unwrap_or(group.len());
                    for part in group[..end].split(',') {
                        let name: String = part
                            .trim()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        targets.insert(name);
                    }
                } else {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    targets.insert(name);
                }
            }
            let entry = g.entry(top.clone()).or_default();
            for t in targets {
                if t != top && modules.contains(&t) {
                    entry.insert(t);
                }
            }
        }
    }
    for m in modules {
        g.entry(m).or_default();
    }
    g
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

#[test]
fn every_top_level_module_has_a_layer_and_uses_only_its_own_and_lower_layers() {
    let g = graph();
    let mut wrong = Vec::new();
    for (from, tos) in &g {
        let Some(lf) = layer_of(from) else {
            wrong.push(format!(
                "src/{from} has no layer: add it to LAYERS here and to ARCHITECTURE.md"
            ));
            continue;
        };
        for to in tos {
            let lt = layer_of(to).unwrap_or(usize::MAX);
            if lt > lf {
                wrong.push(format!(
                    "{from} ({}) uses {to} ({}), a higher layer",
                    LAYERS[lf].0,
                    LAYERS.get(lt).map(|l| l.0).unwrap_or("none")
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_import_cycle_joins_top_level_modules() {
    let g = graph();
    // Kahn's algorithm: whatever cannot be ordered sits on a cycle.
    let mut indegree: BTreeMap<&str, usize> = g.keys().map(|k| (k.as_str(), 0)).collect();
    for tos in g.values() {
        for t in tos {
            *indegree.get_mut(t.as_str()).unwrap() += 1;
        }
    }
    let mut ready: Vec<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut ordered = 0;
    while let Some(m) = ready.pop() {
        ordered += 1;
        for t in &g[m] {
            let d = indegree.get_mut(t.as_str()).unwrap();
            *d -= 1;
            if *d == 0 {
                ready.push(t.as_str());
            }
        }
    }
    let stuck: Vec<String> = indegree
        .iter()
        .filter(|(_, d)| **d > 0)
        .map(|(m, _)| format!("{m} -> {:?}", g[*m]))
        .collect();
    assert_eq!(
        ordered,
        g.len(),
        "modules on or behind an import cycle:\n{}",
        stuck.join("\n")
    );
}

#[test]
fn the_checker_sees_edges_and_would_see_a_cycle() {
    // The checker itself: the real tree has the edges we know of (so a parsing slip cannot pass vacuously).
    let g = graph();
    assert!(g["disaster"].contains("jma"), "{:?}", g["disaster"]);
    assert!(g["app"].contains("console"), "{:?}", g["app"]);
    assert!(!g["jma"].contains("app"), "{:?}", g["jma"]);
    assert!(g.len() >= 20, "{g:?}");
}
