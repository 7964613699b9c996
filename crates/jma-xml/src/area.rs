//! JMA 7-digit 市町村等 codes ↔ JIS municipality codes (全国地方公共団体コード, 6 digits with check digit)
//! and names, from JMA's AreaInformationCity table (`data/AreaInformationCity.csv`, 2,082 rows, 2026-07).
//!
//! Rule (verified on 1,915 JIS codes, see `shared/jma/codes/README.md` §3): JMA code = the 5-digit JIS code
//! without its check digit + a 2-digit suffix. Suffix `00` is a whole municipality (or a ward of a designated
//! city); other suffixes (`01`–`05`, `11`–`16`) are JMA sub-areas such as 横浜市北部 `1410011`, which belong
//! to the municipality of their first 5 digits and have no JIS code of their own.

use std::sync::OnceLock;

const CSV: &str = include_str!("data/AreaInformationCity.csv");

/// One row of JMA's AreaInformationCity table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Municipality {
    /// 7-digit 市町村等 code.
    pub code: &'static str,
    /// Official description, e.g. 山形県山形市, 神奈川県横浜市のうち鶴見区、….
    pub description: &'static str,
    /// Name in weather telegrams (empty when weather products do not use this code, e.g. wards).
    pub name: &'static str,
    pub kana: &'static str,
    /// Used in 気象警報・注意報 (column 5).
    pub in_warnings: bool,
    /// Used in 竜巻注意情報.
    pub in_tornado: bool,
    /// Used in 土砂災害警戒情報.
    pub in_landslide: bool,
    /// Used in 指定河川洪水予報.
    pub in_river_flood: bool,
    /// Name in earthquake/tsunami information (e.g. 仙台青葉区; may differ from the weather name).
    pub seismic_name: &'static str,
}

impl Municipality {
    /// The best display name: the weather name, else the seismic name, else the description.
    pub fn display_name(&self) -> &'static str {
        [self.name, self.seismic_name, self.description]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or(self.code)
    }
}

fn table() -> &'static [Municipality] {
    static TABLE: OnceLock<Vec<Municipality>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rows: Vec<Municipality> = CSV
            .lines()
            .filter_map(|line| {
                let f: Vec<&'static str> = line.split(',').collect();
                if f.len() < 15 || f[0].len() != 7 {
                    return None;
                }
                Some(Municipality {
                    code: f[0],
                    description: f[1],
                    name: f[2],
                    kana: f[3],
                    in_warnings: f[5] == "1",
                    in_tornado: f[6] == "1",
                    in_landslide: f[9] == "1",
                    in_river_flood: f[10] == "1",
                    seismic_name: f[13],
                })
            })
            .collect();
        rows.sort_by(|a, b| a.code.cmp(b.code));
        rows
    })
}

/// All rows, sorted by code.
pub fn all() -> &'static [Municipality] {
    table()
}

/// Looks up a 7-digit 市町村等 code. `None` for unknown codes.
pub fn lookup(code: &str) -> Option<&'static Municipality> {
    let code = code.trim();
    let t = table();
    t.binary_search_by(|m| m.code.cmp(code)).ok().map(|i| &t[i])
}

/// Display name of a 7-digit code.
pub fn name(code: &str) -> Option<&'static str> {
    lookup(code).map(Municipality::display_name)
}

/// JIS X 0402 check digit of a 5-digit municipality code: `(11 - (6d1+5d2+4d3+3d4+2d5) % 11) % 10`.
pub fn jis_check_digit(five: &str) -> Option<u8> {
    let b = five.as_bytes();
    if b.len() != 5 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let s: u32 = b
        .iter()
        .zip([6u32, 5, 4, 3, 2])
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    Some(((11 - s % 11) % 10) as u8)
}

/// JMA 7-digit code → 6-digit JIS code (with check digit). Sub-areas (suffix ≠ `00`) map to the JIS code of
/// the municipality they belong to. `None` when the code is malformed, unknown to JMA's table, or a JMA-only
/// grouping without a municipality row (e.g. `1340000` 八丈支庁管内 gives its digits, as JMA defines them).
pub fn jis_from_jma(code7: &str) -> Option<String> {
    let code7 = code7.trim();
    if code7.len() != 7 || !code7.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    lookup(code7)?;
    let five = &code7[..5];
    let check = jis_check_digit(five)?;
    Some(format!("{five}{check}"))
}

/// 6-digit JIS code (check digit verified) or 5-digit JIS code → JMA 7-digit code of the whole municipality
/// (suffix `00`), if JMA's table has it.
pub fn jma_from_jis(jis: &str) -> Option<&'static str> {
    let jis = jis.trim();
    let five = match jis.len() {
        6 => {
            let (five, check) = jis.split_at(5);
            let want = jis_check_digit(five)?;
            if check.as_bytes()[0] != b'0' + want {
                return None;
            }
            five
        }
        5 => {
            jis_check_digit(jis)?;
            jis
        }
        _ => return None,
    };
    lookup(&format!("{five}00")).map(|m| m.code)
}

/// The parent municipality row of a JMA sub-area code (`1410011` 横浜市北部 → `1410000` 横浜市).
pub fn parent(code7: &str) -> Option<&'static Municipality> {
    let code7 = code7.trim();
    if code7.len() != 7 || !code7.is_ascii() {
        return None;
    }
    lookup(&format!("{}00", &code7[..5]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_table_loads() {
        assert_eq!(all().len(), 2082);
        assert!(all().windows(2).all(|w| w[0].code < w[1].code));
    }

    #[test]
    fn yamagata_and_sapporo_map_both_ways() {
        assert_eq!(jis_from_jma("0620100").as_deref(), Some("062014"));
        assert_eq!(jma_from_jis("062014"), Some("0620100"));
        assert_eq!(jma_from_jis("06201"), Some("0620100"));
        assert_eq!(name("0620100"), Some("山形市"));
        assert_eq!(jis_from_jma("0110100").as_deref(), Some("011011")); // 札幌市中央区
        assert_eq!(name("0110100"), Some("札幌中央区"));
        assert_eq!(name("0110000"), Some("札幌市"));
    }

    #[test]
    fn a_wrong_check_digit_is_rejected() {
        assert_eq!(jma_from_jis("062015"), None);
        assert_eq!(jma_from_jis("06201x"), None);
        assert_eq!(jma_from_jis(""), None);
    }

    #[test]
    fn sub_areas_belong_to_their_municipality() {
        let m = lookup("1410011").unwrap();
        assert_eq!(m.name, "横浜市北部");
        assert!(m.in_warnings);
        assert!(
            !lookup("1410000").unwrap().in_warnings,
            "since 2026 横浜市 is split for warnings"
        );
        assert_eq!(parent("1410011").unwrap().code, "1410000");
        assert_eq!(jis_from_jma("1410011").as_deref(), Some("141003"));
    }

    #[test]
    fn check_digit_matches_known_jis_codes() {
        // 北海道札幌市 011002, 東京都千代田区 131016, 沖縄県那覇市 472018, 山形県鶴岡市 062031
        for jis in ["011002", "131016", "472018", "062031"] {
            assert_eq!(
                jis_check_digit(&jis[..5]),
                Some(jis.as_bytes()[5] - b'0'),
                "{jis}"
            );
        }
    }

    #[test]
    fn every_whole_municipality_round_trips_through_jis() {
        let mut n = 0;
        for m in all().iter().filter(|m| m.code.ends_with("00")) {
            let jis = jis_from_jma(m.code).unwrap();
            assert_eq!(jma_from_jis(&jis), Some(m.code));
            n += 1;
        }
        assert!(n > 1900, "{n}");
    }

    #[test]
    fn garbage_codes_give_none() {
        for c in [
            "",
            "123",
            "abcdefg",
            "06201００",
            "99999999",
            "９９９９９９９",
        ] {
            assert!(lookup(c).is_none());
            assert!(jis_from_jma(c).is_none());
            assert!(parent(c).is_none() || c.len() == 7);
        }
    }
}
