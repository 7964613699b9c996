//! JMA code tables: warning kinds (old and 2026 codes), 土砂災害警戒情報, 指定河川洪水予報, tsunami, intensity.
//!
//! Decisions key on codes, never on names (names changed on 2026-05-28: 「大雨警報」 became
//! 「レベル３大雨警報」 under the same code 03). Unknown codes give `None`; nothing here panics.
//! Source: JMA コード管理表 (via `data/WeatherWarning.csv`, 2026-07) and the research notes
//! (`shared/research/jma-xml.md` §3–§6); tests check this table against the CSV.

use serde::Serialize;

/// Severity class of a warning kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Severity {
    /// 注意報 (advisory).
    #[serde(rename = "注意報")]
    Advisory,
    /// 警報 (warning).
    #[serde(rename = "警報")]
    Warning,
    /// 危険警報 (level-4 danger warning, new since 2026-05-28).
    #[serde(rename = "危険警報")]
    DangerWarning,
    /// 特別警報 (emergency warning).
    #[serde(rename = "特別警報")]
    Emergency,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Advisory => "注意報",
            Severity::Warning => "警報",
            Severity::DangerWarning => "危険警報",
            Severity::Emergency => "特別警報",
        }
    }
}

/// The phenomenon a warning kind is about; the active-warning state keys on (area, phenomenon).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Phenomenon {
    #[serde(rename = "大雨")]
    HeavyRain,
    #[serde(rename = "洪水")]
    Flood,
    #[serde(rename = "土砂災害")]
    Landslide,
    #[serde(rename = "高潮")]
    StormSurge,
    #[serde(rename = "暴風雪")]
    Blizzard,
    #[serde(rename = "暴風")]
    Storm,
    #[serde(rename = "大雪")]
    HeavySnow,
    #[serde(rename = "波浪")]
    HighWaves,
    #[serde(rename = "風雪")]
    WindSnow,
    #[serde(rename = "強風")]
    StrongWind,
    #[serde(rename = "雷")]
    Thunder,
    #[serde(rename = "融雪")]
    Snowmelt,
    #[serde(rename = "濃霧")]
    DenseFog,
    #[serde(rename = "乾燥")]
    Dry,
    #[serde(rename = "なだれ")]
    Avalanche,
    #[serde(rename = "低温")]
    LowTemperature,
    #[serde(rename = "霜")]
    Frost,
    #[serde(rename = "着氷")]
    Icing,
    #[serde(rename = "着雪")]
    SnowAccretion,
    #[serde(rename = "その他")]
    Other,
}

impl Phenomenon {
    pub fn as_str(self) -> &'static str {
        match self {
            Phenomenon::HeavyRain => "大雨",
            Phenomenon::Flood => "洪水",
            Phenomenon::Landslide => "土砂災害",
            Phenomenon::StormSurge => "高潮",
            Phenomenon::Blizzard => "暴風雪",
            Phenomenon::Storm => "暴風",
            Phenomenon::HeavySnow => "大雪",
            Phenomenon::HighWaves => "波浪",
            Phenomenon::WindSnow => "風雪",
            Phenomenon::StrongWind => "強風",
            Phenomenon::Thunder => "雷",
            Phenomenon::Snowmelt => "融雪",
            Phenomenon::DenseFog => "濃霧",
            Phenomenon::Dry => "乾燥",
            Phenomenon::Avalanche => "なだれ",
            Phenomenon::LowTemperature => "低温",
            Phenomenon::Frost => "霜",
            Phenomenon::Icing => "着氷",
            Phenomenon::SnowAccretion => "着雪",
            Phenomenon::Other => "その他",
        }
    }
}

/// Which telegram family a code came from: the 警戒レベル相当 of a few codes differs between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Family {
    /// VPWW50/53/54 (気象警報・注意報, H27 layout; transitional until ~2028).
    Legacy,
    /// VPWW55–61 (気象警報・注意報（Ｒ０６）…, since 2026-05-28).
    R06,
}

impl Family {
    /// The family of a data-type code; `None` for non-warning telegrams.
    pub fn of(data_type: &str) -> Option<Family> {
        match data_type {
            "VPWW50" | "VPWW53" | "VPWW54" => Some(Family::Legacy),
            "VPWW55" | "VPWW56" | "VPWW57" | "VPWW58" | "VPWW59" | "VPWW60" | "VPWW61"
            | "VPWS50" => Some(Family::R06),
            _ => None,
        }
    }
}

/// One warning kind code (`Body/Warning/Item/Kind/Code` of VPWW5x).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct WarningCode {
    pub code: &'static str,
    /// Name in the legacy telegrams (VPWW53/54), e.g. 大雨警報; for codes new in 2026 the new name.
    pub name: &'static str,
    /// Name since 2026-05-28 in the R06 telegrams, e.g. レベル３大雨警報.
    pub new_name: &'static str,
    pub phenomenon: Phenomenon,
    pub severity: Severity,
    /// 警戒レベル相当 in the legacy telegrams (`None`: wind, snow, waves … have no level).
    pub level_legacy: Option<u8>,
    /// 警戒レベル相当 in the R06 telegrams.
    pub level_r06: Option<u8>,
    /// Not used in the R06 telegrams (洪水 警報/注意報: replaced by 大雨 and the river forecasts).
    pub legacy_only: bool,
}

impl WarningCode {
    /// 警戒レベル相当 for a telegram of `family`.
    pub fn level(&self, family: Family) -> Option<u8> {
        match family {
            Family::Legacy => self.level_legacy,
            Family::R06 => self.level_r06,
        }
    }
}

use Phenomenon as P;
use Severity as S;

const fn w(
    code: &'static str,
    name: &'static str,
    new_name: &'static str,
    phenomenon: Phenomenon,
    severity: Severity,
    level_legacy: Option<u8>,
    level_r06: Option<u8>,
) -> WarningCode {
    WarningCode {
        code,
        name,
        new_name,
        phenomenon,
        severity,
        level_legacy,
        level_r06,
        legacy_only: false,
    }
}

const fn legacy(mut c: WarningCode) -> WarningCode {
    c.legacy_only = true;
    c
}

/// Every warning kind code JMA defines (00 解除 and the reserved 42/45/46/47 are not kinds).
///
/// 警戒レベル相当 (JMA mapping, research notes §5): L2 注意報 (大雨・洪水・高潮), L3 警報 (大雨・洪水), L4
/// 土砂災害警戒情報/高潮警報/高潮特別警報 in the legacy system; in the R06 system every name carries its level.
/// Hence 08 高潮警報 is L4 in VPWW54 but レベル３高潮警報 in VPWW57, and 38 高潮特別警報 is L4 vs L5.
/// Legacy 19 高潮注意報 is L2 (L3 only when it says a warning may follow — read from the text, not the code).
pub static WARNING_CODES: &[WarningCode] = &[
    w(
        "02",
        "暴風雪警報",
        "暴風雪警報",
        P::Blizzard,
        S::Warning,
        None,
        None,
    ),
    w(
        "03",
        "大雨警報",
        "レベル３大雨警報",
        P::HeavyRain,
        S::Warning,
        Some(3),
        Some(3),
    ),
    legacy(w(
        "04",
        "洪水警報",
        "洪水警報",
        P::Flood,
        S::Warning,
        Some(3),
        Some(3),
    )),
    w(
        "05",
        "暴風警報",
        "暴風警報",
        P::Storm,
        S::Warning,
        None,
        None,
    ),
    w(
        "06",
        "大雪警報",
        "大雪警報",
        P::HeavySnow,
        S::Warning,
        None,
        None,
    ),
    w(
        "07",
        "波浪警報",
        "波浪警報",
        P::HighWaves,
        S::Warning,
        None,
        None,
    ),
    w(
        "08",
        "高潮警報",
        "レベル３高潮警報",
        P::StormSurge,
        S::Warning,
        Some(4),
        Some(3),
    ),
    w(
        "09",
        "レベル３土砂災害警報",
        "レベル３土砂災害警報",
        P::Landslide,
        S::Warning,
        Some(3),
        Some(3),
    ),
    w(
        "10",
        "大雨注意報",
        "レベル２大雨注意報",
        P::HeavyRain,
        S::Advisory,
        Some(2),
        Some(2),
    ),
    w(
        "12",
        "大雪注意報",
        "大雪注意報",
        P::HeavySnow,
        S::Advisory,
        None,
        None,
    ),
    w(
        "13",
        "風雪注意報",
        "風雪注意報",
        P::WindSnow,
        S::Advisory,
        None,
        None,
    ),
    w(
        "14",
        "雷注意報",
        "雷注意報",
        P::Thunder,
        S::Advisory,
        None,
        None,
    ),
    w(
        "15",
        "強風注意報",
        "強風注意報",
        P::StrongWind,
        S::Advisory,
        None,
        None,
    ),
    w(
        "16",
        "波浪注意報",
        "波浪注意報",
        P::HighWaves,
        S::Advisory,
        None,
        None,
    ),
    w(
        "17",
        "融雪注意報",
        "融雪注意報",
        P::Snowmelt,
        S::Advisory,
        None,
        None,
    ),
    legacy(w(
        "18",
        "洪水注意報",
        "洪水注意報",
        P::Flood,
        S::Advisory,
        Some(2),
        Some(2),
    )),
    w(
        "19",
        "高潮注意報",
        "レベル２高潮注意報",
        P::StormSurge,
        S::Advisory,
        Some(2),
        Some(2),
    ),
    w(
        "20",
        "濃霧注意報",
        "濃霧注意報",
        P::DenseFog,
        S::Advisory,
        None,
        None,
    ),
    w(
        "21",
        "乾燥注意報",
        "乾燥注意報",
        P::Dry,
        S::Advisory,
        None,
        None,
    ),
    w(
        "22",
        "なだれ注意報",
        "なだれ注意報",
        P::Avalanche,
        S::Advisory,
        None,
        None,
    ),
    w(
        "23",
        "低温注意報",
        "低温注意報",
        P::LowTemperature,
        S::Advisory,
        None,
        None,
    ),
    w(
        "24",
        "霜注意報",
        "霜注意報",
        P::Frost,
        S::Advisory,
        None,
        None,
    ),
    w(
        "25",
        "着氷注意報",
        "着氷注意報",
        P::Icing,
        S::Advisory,
        None,
        None,
    ),
    w(
        "26",
        "着雪注意報",
        "着雪注意報",
        P::SnowAccretion,
        S::Advisory,
        None,
        None,
    ),
    w(
        "27",
        "その他の注意報",
        "その他の注意報",
        P::Other,
        S::Advisory,
        None,
        None,
    ),
    w(
        "29",
        "レベル２土砂災害注意報",
        "レベル２土砂災害注意報",
        P::Landslide,
        S::Advisory,
        Some(2),
        Some(2),
    ),
    w(
        "32",
        "暴風雪特別警報",
        "暴風雪特別警報",
        P::Blizzard,
        S::Emergency,
        None,
        None,
    ),
    w(
        "33",
        "大雨特別警報",
        "レベル５大雨特別警報",
        P::HeavyRain,
        S::Emergency,
        Some(5),
        Some(5),
    ),
    w(
        "35",
        "暴風特別警報",
        "暴風特別警報",
        P::Storm,
        S::Emergency,
        None,
        None,
    ),
    w(
        "36",
        "大雪特別警報",
        "大雪特別警報",
        P::HeavySnow,
        S::Emergency,
        None,
        None,
    ),
    w(
        "37",
        "波浪特別警報",
        "波浪特別警報",
        P::HighWaves,
        S::Emergency,
        None,
        None,
    ),
    w(
        "38",
        "高潮特別警報",
        "レベル５高潮特別警報",
        P::StormSurge,
        S::Emergency,
        Some(4),
        Some(5),
    ),
    w(
        "39",
        "レベル５土砂災害特別警報",
        "レベル５土砂災害特別警報",
        P::Landslide,
        S::Emergency,
        Some(5),
        Some(5),
    ),
    w(
        "43",
        "レベル４大雨危険警報",
        "レベル４大雨危険警報",
        P::HeavyRain,
        S::DangerWarning,
        Some(4),
        Some(4),
    ),
    w(
        "48",
        "レベル４高潮危険警報",
        "レベル４高潮危険警報",
        P::StormSurge,
        S::DangerWarning,
        Some(4),
        Some(4),
    ),
    w(
        "49",
        "レベル４土砂災害危険警報",
        "レベル４土砂災害危険警報",
        P::Landslide,
        S::DangerWarning,
        Some(4),
        Some(4),
    ),
];

/// Looks up a warning kind code as written in the XML (`"03"`). Tolerates surrounding spaces and a
/// missing leading zero (`"3"`), as found in Excel-derived tables. `None` for unknown codes and `00` 解除.
pub fn warning(code: &str) -> Option<&'static WarningCode> {
    let code = code.trim();
    let padded;
    let code = if code.len() == 1 && code.as_bytes()[0].is_ascii_digit() {
        padded = format!("0{code}");
        padded.as_str()
    } else {
        code
    };
    WARNING_CODES.iter().find(|c| c.code == code)
}

/// 土砂災害警戒情報 (VXWW50) Kind codes: 3 警戒 (警戒レベル４相当; since 2026-05-28 named
/// レベル４土砂災害危険警報), 1 解除, 0 なし.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum LandslideAlert {
    None,
    Lifted,
    InForce,
}

pub fn landslide_alert(code: &str) -> Option<LandslideAlert> {
    match code.trim() {
        "0" => Some(LandslideAlert::None),
        "1" => Some(LandslideAlert::Lifted),
        "3" => Some(LandslideAlert::InForce),
        _ => None,
    }
}

/// 指定河川洪水予報 (VXKO) Kind codes, stable across the 2026 renaming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RiverFloodCode {
    pub code: &'static str,
    /// Name until 2026-05-27.
    pub name: &'static str,
    /// Name since 2026-05-28.
    pub new_name: &'static str,
    /// 警戒レベル相当; `None` for 解除.
    pub level: Option<u8>,
    /// True for the 解除 kinds (10 注意報解除; 22 is a downgrade to 注意報 and keeps level 2).
    pub lifted: bool,
}

pub static RIVER_FLOOD_CODES: &[RiverFloodCode] = &[
    RiverFloodCode {
        code: "10",
        name: "氾濫注意情報解除",
        new_name: "レベル２氾濫注意報解除",
        level: None,
        lifted: true,
    },
    RiverFloodCode {
        code: "20",
        name: "氾濫注意情報",
        new_name: "レベル２氾濫注意報",
        level: Some(2),
        lifted: false,
    },
    RiverFloodCode {
        code: "21",
        name: "氾濫注意情報",
        new_name: "レベル２氾濫注意報",
        level: Some(2),
        lifted: false,
    },
    RiverFloodCode {
        code: "22",
        name: "氾濫注意情報（警戒情報解除）",
        new_name: "レベル２氾濫注意報（警報解除）",
        level: Some(2),
        lifted: false,
    },
    RiverFloodCode {
        code: "30",
        name: "氾濫警戒情報",
        new_name: "レベル３氾濫警報",
        level: Some(3),
        lifted: false,
    },
    RiverFloodCode {
        code: "31",
        name: "氾濫警戒情報",
        new_name: "レベル３氾濫警報",
        level: Some(3),
        lifted: false,
    },
    RiverFloodCode {
        code: "40",
        name: "氾濫危険情報",
        new_name: "レベル４氾濫危険警報",
        level: Some(4),
        lifted: false,
    },
    RiverFloodCode {
        code: "41",
        name: "氾濫危険情報",
        new_name: "レベル４氾濫危険警報",
        level: Some(4),
        lifted: false,
    },
    RiverFloodCode {
        code: "51",
        name: "氾濫発生情報",
        new_name: "レベル５氾濫特別警報",
        level: Some(5),
        lifted: false,
    },
    RiverFloodCode {
        code: "53",
        name: "氾濫発生情報（氾濫水の予報）",
        new_name: "レベル５氾濫特別警報（氾濫水の予報）",
        level: Some(5),
        lifted: false,
    },
];

pub fn river_flood(code: &str) -> Option<&'static RiverFloodCode> {
    let code = code.trim();
    RIVER_FLOOD_CODES.iter().find(|c| c.code == code)
}

/// Tsunami Kind codes (VTSE41 `Category/Kind/Code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum TsunamiLevel {
    /// 00 津波なし, 50/60 解除.
    None,
    /// 71/72/73 津波予報（若干の海面変動）.
    Forecast,
    /// 62 津波注意報.
    Advisory,
    /// 51 津波警報.
    Warning,
    /// 52/53 大津波警報.
    MajorWarning,
}

pub fn tsunami(code: &str) -> Option<TsunamiLevel> {
    Some(match code.trim() {
        "00" | "50" | "60" => TsunamiLevel::None,
        "71" | "72" | "73" => TsunamiLevel::Forecast,
        "62" => TsunamiLevel::Advisory,
        "51" => TsunamiLevel::Warning,
        "52" | "53" => TsunamiLevel::MajorWarning,
        _ => return None,
    })
}

/// 震度 as ordered values: `1`…`4`, `5-`(5弱), `5+`(5強), `6-`, `6+`, `7`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum SeismicIntensity {
    I1,
    I2,
    I3,
    I4,
    I5Lower,
    I5Upper,
    I6Lower,
    I6Upper,
    I7,
}

pub fn seismic_intensity(s: &str) -> Option<SeismicIntensity> {
    use SeismicIntensity::*;
    Some(match s.trim() {
        "1" => I1,
        "2" => I2,
        "3" => I3,
        "4" => I4,
        "5-" => I5Lower,
        "5+" => I5Upper,
        "6-" => I6Lower,
        "6+" => I6Upper,
        "7" => I7,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = include_str!("data/WeatherWarning.csv");

    #[test]
    fn every_named_code_in_jmas_table_is_known_with_the_same_name() {
        let mut n = 0;
        for line in CSV.lines() {
            let mut f = line.split(',');
            let (code, name) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
            if name.is_empty() || code == "0" {
                continue; // reserved codes (42, 45–47) and 00 解除 are not kinds
            }
            let c = warning(code).unwrap_or_else(|| panic!("code {code} {name} missing"));
            // JMA writes "大雨警報　又はレベル３大雨警報" for codes renamed in 2026.
            let expected = name.split("　又は").next().unwrap_or(name);
            assert_eq!(c.name, expected, "code {code}");
            if let Some(new) = name.split("　又は").nth(1) {
                assert_eq!(c.new_name, new, "code {code}");
            }
            n += 1;
        }
        assert_eq!(n, WARNING_CODES.len(), "table has codes JMA does not");
    }

    #[test]
    fn new_2026_codes_have_the_documented_severity_and_level() {
        let c = warning("43").unwrap();
        assert_eq!(
            (c.phenomenon, c.severity, c.level(Family::R06)),
            (P::HeavyRain, S::DangerWarning, Some(4))
        );
        let c = warning("49").unwrap();
        assert_eq!((c.phenomenon, c.severity), (P::Landslide, S::DangerWarning));
        assert_eq!(warning("39").unwrap().severity, S::Emergency);
        assert_eq!(warning("09").unwrap().level(Family::R06), Some(3));
        assert_eq!(warning("29").unwrap().severity, S::Advisory);
    }

    #[test]
    fn storm_surge_warning_level_depends_on_the_telegram_family() {
        let c = warning("08").unwrap();
        assert_eq!(c.level(Family::Legacy), Some(4));
        assert_eq!(c.level(Family::R06), Some(3));
        assert_eq!(warning("38").unwrap().level(Family::R06), Some(5));
    }

    #[test]
    fn unknown_and_odd_codes_give_none_without_panicking() {
        for c in ["", "00", "42", "99", "3x", "０３", "\u{0}", "1000", "-1"] {
            assert!(warning(c).is_none(), "{c:?}");
        }
        assert_eq!(warning(" 3 ").map(|c| c.code), Some("03"));
        assert!(river_flood("99").is_none());
        assert!(tsunami("x").is_none());
        assert!(landslide_alert("2").is_none());
        assert!(seismic_intensity("5弱").is_none());
    }

    #[test]
    fn tsunami_and_soil_codes_cover_jmas_tables() {
        for line in include_str!("data/TsunamiWarning.csv").lines() {
            let code = line.split(',').next().unwrap_or("");
            assert!(tsunami(code).is_some(), "tsunami code {code}");
        }
        for line in include_str!("data/SoilWarning.csv").lines() {
            let code = line.split(',').next().unwrap_or("");
            assert!(landslide_alert(code).is_some(), "soil code {code}");
        }
        assert!(tsunami("52") > tsunami("51") && tsunami("51") > tsunami("62"));
    }

    #[test]
    fn intensities_order_as_on_the_jma_scale() {
        assert!(seismic_intensity("5+") > seismic_intensity("5-"));
        assert!(seismic_intensity("7") > seismic_intensity("6+"));
        assert_eq!(seismic_intensity(" 4 "), Some(SeismicIntensity::I4));
    }
}
