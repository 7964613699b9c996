//! Japan Standard Time, in one place: UTC+9 all year (Japan has kept no daylight saving time since 1951), so
//! a fixed offset is exact and no time-zone database is needed. Resident messages and console pages show
//! times through this module.

use chrono::{DateTime, FixedOffset, TimeZone};

/// UTC+9.
pub fn offset() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("UTC+9 is a valid offset")
}

/// `t` as Japan time.
pub fn to_jst<Tz: TimeZone>(t: &DateTime<Tz>) -> DateTime<FixedOffset> {
    t.with_timezone(&offset())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn japan_time_is_nine_hours_ahead_all_year() {
        for (utc, jst) in [
            ("2026-01-15T15:30:00Z", "2026-01-16 00:30"),
            ("2026-07-15T15:30:00Z", "2026-07-16 00:30"),
        ] {
            let t: DateTime<Utc> = utc.parse().unwrap();
            assert_eq!(to_jst(&t).format("%Y-%m-%d %H:%M").to_string(), jst);
        }
        let other: DateTime<FixedOffset> = "2026-11-22T09:05:00+02:00".parse().unwrap();
        assert_eq!(to_jst(&other).to_rfc3339(), "2026-11-22T16:05:00+09:00");
    }
}
