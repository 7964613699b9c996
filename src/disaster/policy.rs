//! The city's disaster policy: for each warning (by code, severity or 警戒レベル相当), whether it switches the
//! city into disaster mode, only alerts residents, or does nothing. Config section `[disaster]`.
//!
//! A rule list holds **selectors**, written as strings so a city can read and diff them:
//!
//! | selector | matches |
//! | --- | --- |
//! | `weather:33` | JMA weather warning code 33 (VPWW53/54/55–61 `Kind/Code`) |
//! | `landslide:3` | 土砂災害警戒情報 (VXWW50) kind code 3 (警戒) |
//! | `flood:40` | 指定河川洪水予報 (VXKO) kind code 40 |
//! | `tsunami:52` | 津波警報・注意報 (VTSE41) kind code 52 |
//! | `intensity:5+` | observed seismic intensity (VXSE51–53 `MaxInt`) |
//! | `volcano:41` | 噴火警報 (VFVO50) kind code 41 |
//! | `weather:*` | any code of that family |
//! | `severity:特別警報` | any warning of that severity (注意報, 警報, 危険警報, 特別警報) |
//! | `level:3` / `level:4+` | 警戒レベル相当 exactly 3 / 4 or more |
//!
//! Lists are checked in the order `ignore`, `switch`, `alert_all`, `alert_opted_in`; the first list with a
//! matching selector decides. A warning no list matches does nothing. A municipality entry under
//! `[disaster.municipalities."NNNNNNN"]` replaces, list by list, the lists of `[disaster.policy]` for that
//! municipality only (lists it leaves out keep the default).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::engine::{ActiveWarning, Family, Severity};

/// What the policy says to do with one warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing: not sent, not a trigger.
    Nothing,
    /// Alert only residents of the district who opted in to this level of alerts.
    AlertOptedIn,
    /// Alert every resident of the district, without switching the mode.
    AlertAll,
    /// Alert every resident of the district and switch the city into disaster mode.
    SwitchMode,
}

/// One selector of a rule list. See the module docs for the syntax.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Selector {
    Code { family: Family, code: String },
    AnyOf(Family),
    Severity(Severity),
    Level { level: u8, or_more: bool },
}

impl Selector {
    pub fn matches(&self, w: &ActiveWarning) -> bool {
        match self {
            Selector::Code { family, code } => {
                *family == w.family && normalise_code(code) == normalise_code(&w.code)
            }
            Selector::AnyOf(family) => *family == w.family,
            Selector::Severity(s) => *s == w.severity,
            Selector::Level { level, or_more } => match w.level {
                Some(l) if *or_more => l >= *level,
                Some(l) => l == *level,
                None => false,
            },
        }
    }
}

/// Codes are compared without leading zeros and surrounding blanks (`"03"` == `"3"`), because JMA's own code
/// tables and CSV copies disagree on zero padding.
fn normalise_code(c: &str) -> &str {
    let t = c.trim();
    let s = t.trim_start_matches('0');
    if s.is_empty() && !t.is_empty() {
        "0"
    } else {
        s
    }
}

impl TryFrom<String> for Selector {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || {
            format!(
                "unknown selector \"{s}\"; write FAMILY:CODE (families: weather, landslide, flood, tsunami, \
                 intensity, volcano; CODE may be *), severity:注意報|警報|危険警報|特別警報, or level:N / level:N+"
            )
        };
        let (head, tail) = s.split_once(':').ok_or_else(bad)?;
        let tail = tail.trim();
        match head.trim() {
            "severity" => Severity::from_ja(tail)
                .map(Selector::Severity)
                .ok_or_else(bad),
            "level" => {
                let (num, or_more) = match tail.strip_suffix('+') {
                    Some(n) => (n, true),
                    None => (tail, false),
                };
                match num.parse::<u8>() {
                    Ok(l) if (1..=5).contains(&l) => Ok(Selector::Level { level: l, or_more }),
                    _ => Err(bad()),
                }
            }
            fam => {
                let family = Family::from_key(fam).ok_or_else(bad)?;
                if tail.is_empty() {
                    Err(bad())
                } else if tail == "*" {
                    Ok(Selector::AnyOf(family))
                } else {
                    Ok(Selector::Code {
                        family,
                        code: tail.to_string(),
                    })
                }
            }
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Code { family, code } => write!(f, "{}:{code}", family.key()),
            Selector::AnyOf(family) => write!(f, "{}:*", family.key()),
            Selector::Severity(s) => write!(f, "severity:{}", s.ja()),
            Selector::Level { level, or_more } => {
                write!(f, "level:{level}{}", if *or_more { "+" } else { "" })
            }
        }
    }
}

impl From<Selector> for String {
    fn from(s: Selector) -> String {
        s.to_string()
    }
}

fn sel(s: &str) -> Selector {
    Selector::try_from(s.to_string()).expect("built-in selector is valid")
}

/// The four rule lists. In `[disaster.policy]` every list is present (defaults below); in a municipality
/// override a list left out falls back to `[disaster.policy]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyRules {
    pub ignore: Vec<Selector>,
    pub switch: Vec<Selector>,
    pub alert_all: Vec<Selector>,
    pub alert_opted_in: Vec<Selector>,
}

impl Default for PolicyRules {
    /// Issue 5 item 3: any 特別警報, any レベル4 危険警報, 土砂災害警戒情報 / 土砂災害危険警報, 指定河川洪水予報 at レベル4
    /// and above (40/41 氾濫危険, 51/53 氾濫発生), 津波警報・大津波警報 (51, 52, 53) and observed 震度5強 or more switch
    /// the mode; レベル3 警報 alert only residents who opted in.
    fn default() -> Self {
        PolicyRules {
            ignore: vec![],
            switch: [
                "severity:特別警報",
                "severity:危険警報",
                "landslide:3",
                "weather:49",
                "flood:40",
                "flood:41",
                "flood:51",
                "flood:53",
                "tsunami:51",
                "tsunami:52",
                "tsunami:53",
                "intensity:5+",
                "intensity:6-",
                "intensity:6+",
                "intensity:7",
            ]
            .into_iter()
            .map(sel)
            .collect(),
            alert_all: vec![],
            alert_opted_in: vec![sel("level:3")],
        }
    }
}

/// A municipality's replacement lists; `None` keeps the default list.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyOverride {
    pub ignore: Option<Vec<Selector>>,
    pub switch: Option<Vec<Selector>>,
    pub alert_all: Option<Vec<Selector>>,
    pub alert_opted_in: Option<Vec<Selector>>,
}

/// `disaster.unregistered`: which alerts reach friends who never registered a district.
///
/// Such a friend has told us nothing about where they live, so they get the **municipality-level** message
/// (no district shelters; the shelter-map link and a one-tap 「地区を登録」 button) of every alert that goes
/// to everyone in a municipality of this deployment. In the usual single-municipality deployment that is
/// the city's every 全員 alert; in a deployment with several municipalities it is each municipality's alert,
/// each naming its municipality. Opted-in (レベル3) alerts and drills never reach them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unregistered {
    /// Every alert addressed to all residents (the default: a city migrating an existing account has most
    /// of its friends unregistered, and the policy already chose to tell everyone).
    Everyone,
    /// Only alerts about a 特別警報 (and that thread's follow-ups).
    SpecialOnly,
    /// Never.
    None,
}

/// `[disaster]`: the policy plus the engine's timing and the drill audience.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DisasterConfig {
    /// Seconds with no triggering warning before the city leaves disaster mode (default 1 h, so a warning
    /// lifted and re-issued within the hour does not flip the rich menu twice).
    pub quiet_period_secs: u64,
    /// A telegram whose ReportDateTime is older than this (default 6 h) never triggers a send by itself
    /// (catch-up after downtime must not announce yesterday's warnings as new).
    pub max_report_age_secs: u64,
    /// LINE user ids of staff who receive 訓練 (drill) alerts. Nobody else ever does.
    pub drill_audience: Vec<String>,
    /// Directory of alert templates (`alert.json`, `lifted.json`, `cancelled.json`, `shelter_row.json`,
    /// `texts.json`). Empty: the copy of `templates/alerts/` built into the binary.
    pub templates_dir: String,
    /// Rules for every municipality.
    pub policy: PolicyRules,
    /// Per-municipality replacements, keyed by 7-digit JMA 市町村等 code.
    pub municipalities: BTreeMap<String, PolicyOverride>,
    /// Which alerts reach friends without a registered district (see [`Unregistered`]).
    pub unregistered: Unregistered,
    /// An alert names shelters no farther than this from the district (kilometres, great-circle); with none
    /// suitable that near, the message says so. Default 10 km: a walk of about two hours, a short drive.
    pub shelter_max_km: f64,
    /// An alert names only shelters of the district's own municipality (the GSI 共通ID's municipality code,
    /// or the district the site lies in). Default true.
    pub shelter_same_municipality: bool,
}

impl Default for DisasterConfig {
    fn default() -> Self {
        DisasterConfig {
            quiet_period_secs: 3600,
            max_report_age_secs: 6 * 3600,
            drill_audience: vec![],
            templates_dir: String::new(),
            policy: PolicyRules::default(),
            municipalities: BTreeMap::new(),
            unregistered: Unregistered::Everyone,
            shelter_max_km: 10.0,
            shelter_same_municipality: true,
        }
    }
}

/// How far and where an alert looks for shelters (`disaster.shelter_max_km`, `shelter_same_municipality`),
/// for JMA-driven and the city's own alerts alike.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShelterReach {
    pub max_km: f64,
    pub same_municipality: bool,
}

impl Default for ShelterReach {
    fn default() -> Self {
        DisasterConfig::default().shelter_reach()
    }
}

impl DisasterConfig {
    pub fn shelter_reach(&self) -> ShelterReach {
        ShelterReach {
            max_km: self.shelter_max_km,
            same_municipality: self.shelter_same_municipality,
        }
    }

    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.quiet_period_secs > 7 * 86400 {
            problems.push(format!(
                "disaster.quiet_period_secs: {} is out of range; use 0..=604800 (one week), typically 3600",
                self.quiet_period_secs
            ));
        }
        if !(60..=7 * 86400).contains(&self.max_report_age_secs) {
            problems.push(format!(
                "disaster.max_report_age_secs: {} is out of range; use 60..=604800, typically 21600 (6 hours)",
                self.max_report_age_secs
            ));
        }
        for (i, id) in self.drill_audience.iter().enumerate() {
            if crate::ids::LineUserId::parse(id).is_none() {
                problems.push(format!(
                    "disaster.drill_audience[{i}]: \"{}\" is not a LINE user id; write U followed by 32 hex digits",
                    crate::ids::redact_user_id(id)
                ));
            }
        }
        if !(self.shelter_max_km > 0.0 && self.shelter_max_km <= 100.0) {
            problems.push(format!(
                "disaster.shelter_max_km: {} is out of range; use more than 0 and at most 100 (kilometres), typically 10",
                self.shelter_max_km
            ));
        }
        for code in self.municipalities.keys() {
            if code.len() != 7 || !code.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(format!(
                    "disaster.municipalities.\"{code}\": not a 7-digit JMA 市町村等 code; e.g. \"0620100\" for 山形市"
                ));
            }
        }
        if !self.templates_dir.is_empty() {
            if !std::path::Path::new(&self.templates_dir).is_dir() {
                problems.push(format!(
                    "disaster.templates_dir: directory \"{}\" not found; create it from templates/alerts or leave it empty for the built-in templates",
                    self.templates_dir
                ));
            } else if let Err(e) =
                super::compose::Templates::load(std::path::Path::new(&self.templates_dir))
            {
                // Refused at `sonae check` and at start, never discovered while composing an alert.
                problems.push(format!("disaster.templates_dir: {e}"));
            }
        }
        problems
    }

    /// What to do with `w` in municipality `w.municipality`.
    pub fn action_for(&self, w: &ActiveWarning) -> Action {
        let o = self.municipalities.get(&w.municipality);
        let pick = |d: &'_ Vec<Selector>, o: Option<&'_ Option<Vec<Selector>>>| -> bool {
            let list = match o {
                Some(Some(l)) => l,
                _ => d,
            };
            list.iter().any(|s| s.matches(w))
        };
        if pick(&self.policy.ignore, o.map(|o| &o.ignore)) {
            Action::Nothing
        } else if pick(&self.policy.switch, o.map(|o| &o.switch)) {
            Action::SwitchMode
        } else if pick(&self.policy.alert_all, o.map(|o| &o.alert_all)) {
            Action::AlertAll
        } else if pick(&self.policy.alert_opted_in, o.map(|o| &o.alert_opted_in)) {
            Action::AlertOptedIn
        } else {
            Action::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn err(toml: &str) -> String {
        Config::parse(toml).unwrap_err().to_string()
    }

    #[test]
    fn an_unknown_selector_names_the_key_the_value_and_the_syntax() {
        let e = err("[disaster.policy]\nswitch = [\"rain:33\"]\n");
        assert!(e.contains("disaster.policy.switch"), "{e}");
        assert!(e.contains("rain:33") && e.contains("FAMILY:CODE"), "{e}");
    }

    #[test]
    fn a_bad_drill_audience_id_is_refused_without_printing_it_in_full() {
        let e = err("[disaster]\ndrill_audience = [\"Uxyz-not-an-id-but-long-enough\"]\n");
        assert!(
            e.contains("disaster.drill_audience[0]") && e.contains("32 hex digits"),
            "{e}"
        );
        assert!(!e.contains("not-an-id-but-long-enough"), "{e}");
    }

    #[test]
    fn a_municipality_key_must_be_a_7_digit_code() {
        let e = err("[disaster.municipalities.\"yamagata\"]\nalert_all = [\"weather:05\"]\n");
        assert!(
            e.contains("disaster.municipalities.\"yamagata\"") && e.contains("0620100"),
            "{e}"
        );
    }

    #[test]
    fn out_of_range_timings_are_refused_with_the_range() {
        let e = err("[disaster]\nmax_report_age_secs = 5\n");
        assert!(
            e.contains("disaster.max_report_age_secs: 5") && e.contains("21600"),
            "{e}"
        );
        let e = err("[delivery]\nmulticast_per_sec = 1000\n");
        assert!(
            e.contains("delivery.multicast_per_sec: 1000") && e.contains("200"),
            "{e}"
        );
        let e = err("[delivery]\nbackoff_base_ms = 60000\n");
        assert!(e.contains("delivery.backoff_base_ms"), "{e}");
    }

    #[test]
    fn a_missing_templates_dir_is_refused() {
        let e = err("[disaster]\ntemplates_dir = \"/nonexistent/sonae/alerts\"\n");
        assert!(
            e.contains("disaster.templates_dir") && e.contains("not found"),
            "{e}"
        );
    }

    #[test]
    fn a_broken_template_directory_is_refused_at_check_time() {
        let dir = tempfile::tempdir().unwrap();
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/alerts");
        for f in [
            "alert.json",
            "lifted.json",
            "shelter_row.json",
            "texts.json",
        ] {
            std::fs::copy(format!("{src}/{f}"), dir.path().join(f)).unwrap();
        }
        let toml = format!("[disaster]\ntemplates_dir = \"{}\"\n", dir.path().display());
        assert!(Config::parse(&toml).is_ok());
        std::fs::write(dir.path().join("alert.json"), "[]").unwrap();
        let e = err(&toml);
        assert!(
            e.contains("disaster.templates_dir") && e.contains("alert.json"),
            "{e}"
        );
    }

    #[test]
    fn the_unregistered_policy_and_shelter_limits_parse_and_bad_values_are_refused() {
        let c = Config::parse(
            "[disaster]\nunregistered = \"special_only\"\nshelter_max_km = 4.5\nshelter_same_municipality = false\n",
        )
        .unwrap();
        assert_eq!(c.disaster.unregistered, super::Unregistered::SpecialOnly);
        assert_eq!(c.disaster.shelter_max_km, 4.5);
        assert!(!c.disaster.shelter_same_municipality);
        let d = Config::parse("").unwrap().disaster;
        assert_eq!(d.unregistered, super::Unregistered::Everyone);
        assert!(d.shelter_same_municipality && d.shelter_max_km == 10.0);
        let e = err("[disaster]\nunregistered = \"some\"\n");
        assert!(
            e.contains("disaster.unregistered") && e.contains("special_only"),
            "{e}"
        );
        let e = err("[disaster]\nshelter_max_km = 0\n");
        assert!(e.contains("disaster.shelter_max_km: 0"), "{e}");
    }

    #[test]
    fn unknown_keys_in_the_disaster_section_are_errors() {
        let e = err("[disaster]\nquiet_secs = 10\n");
        assert!(e.contains("quiet_secs"), "{e}");
    }

    #[test]
    fn a_municipality_override_parses_and_keeps_the_other_lists() {
        let c = Config::parse(
            "[disaster.municipalities.\"0620100\"]\nalert_all = [\"weather:02\", \"weather:06\"]\n",
        )
        .unwrap();
        let o = &c.disaster.municipalities["0620100"];
        assert_eq!(o.alert_all.as_ref().map(Vec::len), Some(2));
        assert!(o.switch.is_none());
    }
}
