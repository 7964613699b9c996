//! What the daemon refuses to start with beyond the file's own validity: things that would silently turn the
//! mission off or send residents links that do not open. `sonae check` and `app::Application::build` run the
//! same [`run`], so `check` saying ok means the daemon starts.
//!
//! Refused (each names the key and the fix, like the configuration's own errors; exit 2):
//! * place data (`place.enabled = true`, the default): a districts or shelter file that is missing,
//!   unreadable or not GeoJSON/CSV, or that yields no district or no shelter at all;
//! * `server.public_url` on this machine (`127.0.0.1`, `localhost`, `::1`, `0.0.0.0`) while `line.api_base`
//!   is LINE's real API: those links go to residents' phones.
//!
//! Warned about (the daemon logs them at start): rows of the place files that were left out, retired keys,
//! `place.enabled = false`.

use super::Config;
use crate::place::{Districts, PlaceConfig, PlaceData, Shelters};

/// The outcome of [`run`].
#[derive(Debug, Default)]
pub struct Preflight {
    /// Refusals: the daemon does not start while there is one.
    pub problems: Vec<String>,
    /// Worth telling the operator; nothing stops.
    pub warnings: Vec<String>,
    /// The districts and shelters, loaded (`None` when `place.enabled = false` or when they are refused).
    pub place: Option<PlaceData>,
}

/// Checks the configuration against this machine. Reads the place files (a second or two for a big city),
/// so call it off the async runtime.
pub fn run(config: &Config) -> Preflight {
    let mut out = Preflight {
        warnings: config.warnings(),
        ..Preflight::default()
    };
    if config.place.enabled {
        out.place = load_place(&config.place, &mut out);
    }
    check_public_url(config, &mut out.problems);
    out
}

const DISTRICTS_FIX: &str = "give the city's districts as a GeoJSON FeatureCollection (properties id, name, jma_code; deploy/demo/sapporo-districts.geojson is an example), or set place.enabled = false to run without districts and shelters (no disaster alerts)";
const SHELTERS_FIX: &str = "give GSI's 指定緊急避難場所 CSV of the city (国土地理院 指定緊急避難場所データ), or set place.enabled = false to run without districts and shelters (no disaster alerts)";

fn load_place(cfg: &PlaceConfig, out: &mut Preflight) -> Option<PlaceData> {
    let districts = match Districts::load(&cfg.districts) {
        Ok((d, report)) => {
            let file = cfg.districts.display().to_string();
            if d.is_empty() {
                out.problems.push(format!(
                    "place.districts: \"{file}\" has no usable district{}; {DISTRICTS_FIX}",
                    first_error(&report.lines(&file))
                ));
                None
            } else {
                left_out(&mut out.warnings, "place.districts", &report.lines(&file));
                Some((d, report.lines(&file)))
            }
        }
        Err(e) => {
            out.problems.push(format!(
                "place.districts: {}; {DISTRICTS_FIX}",
                unreadable(&e)
            ));
            None
        }
    };
    let shelters = match Shelters::load_files(&cfg.shelters) {
        Ok((s, reports)) => {
            let lines: Vec<String> = reports
                .iter()
                .flat_map(|(path, r)| r.lines(&path.display().to_string()))
                .collect();
            if s.is_empty() {
                out.problems.push(format!(
                    "place.shelters: no shelter could be read from {:?}{}; {SHELTERS_FIX}",
                    cfg.shelters,
                    first_error(&lines)
                ));
                None
            } else {
                left_out(&mut out.warnings, "place.shelters", &lines);
                Some((s, lines))
            }
        }
        Err(e) => {
            out.problems.push(format!(
                "place.shelters: {}; {SHELTERS_FIX}",
                unreadable(&e)
            ));
            None
        }
    };
    let ((districts, mut problems), (shelters, more)) = (districts?, shelters?);
    problems.extend(more);
    let place = PlaceData::new(districts, shelters, problems);
    if !place.has_indoor_shelters() {
        out.warnings.push(
            "place.shelters: no 指定避難所 (GSI's 指定避難所 GeoJSON) is loaded, so alerts for 大雪・暴風雪・暴風 name no shelter (they name indoor 指定避難所 only); add the city's 指定避難所 file".into(),
        );
    }
    Some(place)
}

/// A file that could not be used at all, in the words of the refusal.
fn unreadable(e: &crate::place::PlaceError) -> String {
    match e {
        crate::place::PlaceError::Io { path, source } => {
            format!("cannot read \"{path}\" ({source})")
        }
        crate::place::PlaceError::Format { path, message } => {
            format!("\"{path}\" cannot be used ({message})")
        }
    }
}

fn first_error(lines: &[String]) -> String {
    match lines.first() {
        Some(l) => format!(" ({} left out, first: {l})", lines.len()),
        None => String::new(),
    }
}

fn left_out(warnings: &mut Vec<String>, key: &str, lines: &[String]) {
    if let Some(first) = lines.first() {
        warnings.push(format!(
            "{key}: {} rows or features were left out (first: {first}); the daemon lists each as a problem",
            lines.len()
        ));
    }
}

fn check_public_url(config: &Config, problems: &mut Vec<String>) {
    let Ok(url) = url::Url::parse(&config.server.public_url) else {
        return; // reported by the configuration's own validation
    };
    if is_this_machine(&url) && config.line.is_real_line() {
        problems.push(format!(
            "server.public_url: \"{}\" is this machine, but line.api_base is LINE's real API ({}): links sent to residents would not open on their phones; set it to the https address residents reach, e.g. \"https://bousai.example.lg.jp\"",
            config.server.public_url, config.line.api_base
        ));
    }
}

/// Loopback, unspecified or `localhost` — an address only this machine can open.
fn is_this_machine(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_only_this_machine_can_open_are_recognised() {
        for u in [
            "http://127.0.0.1:8080",
            "http://127.8.0.1/",
            "https://localhost",
            "http://LOCALHOST./x",
            "http://[::1]:8080",
            "http://0.0.0.0:8080",
            "http://app.localhost",
        ] {
            assert!(is_this_machine(&url::Url::parse(u).unwrap()), "{u}");
        }
        for u in [
            "https://bousai.example.lg.jp",
            "http://192.168.10.5:8080",
            "https://localhost.example.jp",
        ] {
            assert!(!is_this_machine(&url::Url::parse(u).unwrap()), "{u}");
        }
    }
}
