//! Prometheus text-format metrics with bounded labels.
//!
//! Label values must come from small fixed sets (a feed name from the config, a rejection reason, an
//! endpoint class) — never a user id, a URL from the outside or a free text. Call sites pass
//! `&'static str` label names and short values.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: Kind,
    series: BTreeMap<Vec<(&'static str, String)>, f64>,
}

/// Hard cap per family, so a mistaken high-cardinality label cannot grow memory without bound.
const MAX_SERIES_PER_FAMILY: usize = 1000;

#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn update(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &[(&'static str, &str)],
        f: impl FnOnce(&mut f64),
    ) {
        let mut fams = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let fam = fams.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        let key: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if !fam.series.contains_key(&key) && fam.series.len() >= MAX_SERIES_PER_FAMILY {
            return;
        }
        f(fam.series.entry(key).or_insert(0.0));
    }

    /// Adds `by` to a counter.
    pub fn add(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        by: f64,
    ) {
        self.update(name, help, Kind::Counter, labels, |v| *v += by);
    }

    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, help, labels, 1.0);
    }

    /// Sets a gauge.
    pub fn set(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
    ) {
        self.update(name, help, Kind::Gauge, labels, |v| *v = value);
    }

    /// Current value of one series (tests, console).
    pub fn get(&self, name: &str, labels: &[(&'static str, &str)]) -> Option<f64> {
        let fams = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let key: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        fams.get(name)?.series.get(&key).copied()
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let fams = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, fam) in fams.iter() {
            let _ = writeln!(out, "# HELP {name} {}", fam.help);
            let kind = match fam.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in &fam.series {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let escaped = v
                            .replace('\\', "\\\\")
                            .replace('"', "\\\"")
                            .replace('\n', "\\n");
                        let _ = write!(out, "{k}=\"{escaped}\"");
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {value}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_escaped_labels() {
        let m = Metrics::new();
        m.inc("sonae_x_total", "Things.", &[("reason", "a\"b")]);
        m.inc("sonae_x_total", "Things.", &[("reason", "a\"b")]);
        m.set("sonae_up", "Up.", &[], 1.0);
        let text = m.render();
        assert!(
            text.contains("# TYPE sonae_x_total counter\nsonae_x_total{reason=\"a\\\"b\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE sonae_up gauge\nsonae_up 1\n"),
            "{text}"
        );
    }

    #[test]
    fn series_per_family_are_capped() {
        let m = Metrics::new();
        for i in 0..(MAX_SERIES_PER_FAMILY + 50) {
            m.inc("sonae_many_total", "Many.", &[("k", &i.to_string())]);
        }
        assert_eq!(
            m.render()
                .lines()
                .filter(|l| l.starts_with("sonae_many_total{"))
                .count(),
            MAX_SERIES_PER_FAMILY
        );
    }
}
