//! The two position formats Sonae accepts over MQTT, parsed into one [`Message`].
//!
//! * **Sonae JSON** on `sonae/plows/{vehicle}/position`:
//!   `{"vehicle": str, "lat": f64, "lon": f64, "ts": RFC 3339, "speed_kmh": f64?, "heading": f64?, "blade": "down"|"up"?}`.
//!   The `vehicle` must equal the topic's `{vehicle}` level.
//! * **OwnTracks** on `owntracks/{user}/{device}`: `_type = "location"` with `lat`, `lon`, `tst` (epoch s) and the
//!   optional `vel` (km/h), `cog` (degrees), `tid`, `acc` (m). OwnTracks omits `acc`, `alt`, `cog`, `vac` and `vel`
//!   when they are zero, so a missing `vel` means 0 km/h, and a missing `cog` means "no course" (not north).
//!   `_type = "lwt"` (the broker's last will for the device) marks the vehicle offline. Other `_type`s
//!   (`transition`, `waypoint`, `card`, …) are ignored, not rejected. The vehicle id is `{user}/{device}`.
//!
//! Parsing is total: every byte string gives a [`Message`] or a [`Reject`] reason, never a panic.

use std::borrow::Cow;

use serde::Deserialize;

use super::Millis;

/// Payloads larger than this are rejected before parsing (a position is about 150 bytes).
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// Longest accepted vehicle id, in bytes.
pub const MAX_VEHICLE_BYTES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Blade {
    Down,
    Up,
    Unknown,
}

impl Blade {
    pub fn as_str(self) -> &'static str {
        match self {
            Blade::Down => "down",
            Blade::Up => "up",
            Blade::Unknown => "unknown",
        }
    }

    pub fn from_db(s: &str) -> Blade {
        match s {
            "down" => Blade::Down,
            "up" => Blade::Up,
            _ => Blade::Unknown,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Sonae,
    OwnTracks,
}

impl Format {
    pub fn label(self) -> &'static str {
        match self {
            Format::Sonae => "sonae",
            Format::OwnTracks => "owntracks",
        }
    }
}

/// One accepted-format position, not yet checked against the vehicle's history or the service area.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    pub vehicle: String,
    pub ts_ms: Millis,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: Option<f64>,
    /// Course over ground, degrees clockwise from north, `0..360`.
    pub heading: Option<f64>,
    pub blade: Blade,
    pub format: Format,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Position(Position),
    /// The device's connection was lost (OwnTracks last will).
    Offline {
        vehicle: String,
        ts_ms: Option<Millis>,
    },
    /// A well-formed message Sonae has no use for (another OwnTracks `_type`); counted, not an error.
    Ignored(&'static str),
}

/// Why a payload was rejected. `label()` is the `reason` label on `sonae_plow_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    /// Larger than [`MAX_PAYLOAD_BYTES`].
    TooLarge,
    /// Not JSON, or a required field is missing or of the wrong type.
    Malformed,
    /// A topic no format lives on.
    UnknownTopic,
    /// Empty, too long, or containing control characters or spaces.
    BadVehicle,
    /// The payload's `vehicle` differs from the topic's.
    TopicMismatch,
    /// `ts` is not RFC 3339, or `tst` is not a plausible epoch.
    BadTimestamp,
    /// An optional field has an impossible value (negative speed, heading outside 0..360, unknown blade).
    BadField,
    /// Latitude or longitude out of range or not finite.
    BadCoordinates,
    /// Valid coordinates outside the configured service area (plus margin).
    OutsideArea,
    /// Timestamp further in the future than the clock-skew allowance.
    FutureTimestamp,
    /// Implies a faster move since the vehicle's previous position than a plow can make.
    ImplausibleSpeed,
}

impl Reject {
    pub const ALL: [Reject; 11] = [
        Reject::TooLarge,
        Reject::Malformed,
        Reject::UnknownTopic,
        Reject::BadVehicle,
        Reject::TopicMismatch,
        Reject::BadTimestamp,
        Reject::BadField,
        Reject::BadCoordinates,
        Reject::OutsideArea,
        Reject::FutureTimestamp,
        Reject::ImplausibleSpeed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reject::TooLarge => "too_large",
            Reject::Malformed => "malformed",
            Reject::UnknownTopic => "unknown_topic",
            Reject::BadVehicle => "bad_vehicle",
            Reject::TopicMismatch => "topic_mismatch",
            Reject::BadTimestamp => "bad_timestamp",
            Reject::BadField => "bad_field",
            Reject::BadCoordinates => "bad_coordinates",
            Reject::OutsideArea => "outside_area",
            Reject::FutureTimestamp => "future_timestamp",
            Reject::ImplausibleSpeed => "implausible_speed",
        }
    }

    /// Operator-facing description (Japanese), for the problems list.
    pub fn describe_ja(self) -> &'static str {
        match self {
            Reject::TooLarge => "除雪車の位置データが大きすぎるため受け付けませんでした",
            Reject::Malformed => "除雪車の位置データの形式が正しくありません",
            Reject::UnknownTopic => "想定していないMQTTトピックにデータが届きました",
            Reject::BadVehicle => "車両IDが空、長すぎる、または使えない文字を含んでいます",
            Reject::TopicMismatch => "データ内の車両IDとトピックの車両IDが一致しません",
            Reject::BadTimestamp => "位置データの時刻が読み取れません",
            Reject::BadField => "速度・方位・ブレードのいずれかの値が正しくありません",
            Reject::BadCoordinates => "緯度・経度が範囲外です",
            Reject::OutsideArea => "市の除雪区域の外の位置データが届きました",
            Reject::FutureTimestamp => {
                "未来の時刻の位置データが届きました（車載機の時計がずれている可能性があります）"
            }
            Reject::ImplausibleSpeed => {
                "前回位置からあり得ない速さで移動した位置データが届きました（GPSの誤測位の可能性）"
            }
        }
    }
}

/// A vehicle id as it appears on the map: 1–64 bytes, no whitespace or control characters.
pub fn valid_vehicle(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_VEHICLE_BYTES
        && !v.chars().any(|c| c.is_control() || c.is_whitespace())
}

#[derive(Deserialize)]
struct SonaeWire<'a> {
    #[serde(borrow)]
    vehicle: Cow<'a, str>,
    lat: f64,
    lon: f64,
    #[serde(borrow)]
    ts: Cow<'a, str>,
    speed_kmh: Option<f64>,
    heading: Option<f64>,
    #[serde(borrow)]
    blade: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct OwnTracksWire<'a> {
    #[serde(rename = "_type", borrow)]
    kind: Cow<'a, str>,
    lat: Option<f64>,
    lon: Option<f64>,
    tst: Option<f64>,
    vel: Option<f64>,
    cog: Option<f64>,
}

fn check_optional(speed: Option<f64>, heading: Option<f64>) -> Result<(), Reject> {
    if let Some(s) = speed {
        if !(0.0..=1000.0).contains(&s) {
            return Err(Reject::BadField);
        }
    }
    if let Some(h) = heading {
        if !(0.0..=360.0).contains(&h) {
            return Err(Reject::BadField);
        }
    }
    Ok(())
}

fn check_coordinates(lat: f64, lon: f64) -> Result<(), Reject> {
    if lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
    {
        Ok(())
    } else {
        Err(Reject::BadCoordinates)
    }
}

/// Parses one MQTT publish. `owntracks_blade_down` is the configured assumption for OwnTracks positions.
pub fn parse(topic: &str, payload: &[u8], owntracks_blade_down: bool) -> Result<Message, Reject> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Reject::TooLarge);
    }
    let levels: Vec<&str> = topic.split('/').collect();
    match levels.as_slice() {
        ["owntracks", user, device] => parse_owntracks(user, device, payload, owntracks_blade_down),
        ["owntracks", ..] => Ok(Message::Ignored("owntracks_subtopic")),
        ["sonae", "plows", vehicle, "position"] => parse_sonae(vehicle, payload),
        _ => Err(Reject::UnknownTopic),
    }
}

fn parse_sonae(topic_vehicle: &str, payload: &[u8]) -> Result<Message, Reject> {
    let w: SonaeWire<'_> = serde_json::from_slice(payload).map_err(|_| Reject::Malformed)?;
    if !valid_vehicle(&w.vehicle) {
        return Err(Reject::BadVehicle);
    }
    if w.vehicle != topic_vehicle {
        return Err(Reject::TopicMismatch);
    }
    let ts = chrono::DateTime::parse_from_rfc3339(&w.ts).map_err(|_| Reject::BadTimestamp)?;
    check_coordinates(w.lat, w.lon)?;
    check_optional(w.speed_kmh, w.heading)?;
    let blade = match w.blade.as_deref() {
        None => Blade::Unknown,
        Some("down") => Blade::Down,
        Some("up") => Blade::Up,
        Some(_) => return Err(Reject::BadField),
    };
    Ok(Message::Position(Position {
        vehicle: w.vehicle.into_owned(),
        ts_ms: ts.timestamp_millis(),
        lat: w.lat,
        lon: w.lon,
        speed_kmh: w.speed_kmh,
        heading: w.heading.map(|h| h % 360.0),
        blade,
        format: Format::Sonae,
    }))
}

/// Epoch seconds accepted from `tst`: 2000-01-01 .. 2100-01-01.
const TST_RANGE: std::ops::RangeInclusive<f64> = 946_684_800.0..=4_102_444_800.0;

fn parse_owntracks(
    user: &str,
    device: &str,
    payload: &[u8],
    blade_down: bool,
) -> Result<Message, Reject> {
    let w: OwnTracksWire<'_> = serde_json::from_slice(payload).map_err(|_| Reject::Malformed)?;
    let vehicle = format!("{user}/{device}");
    if !valid_vehicle(user) || !valid_vehicle(device) || !valid_vehicle(&vehicle) {
        return Err(Reject::BadVehicle);
    }
    let tst_ms = |tst: f64| -> Result<Millis, Reject> {
        if TST_RANGE.contains(&tst) {
            Ok((tst * 1000.0) as Millis)
        } else {
            Err(Reject::BadTimestamp)
        }
    };
    match w.kind.as_ref() {
        "location" => {
            let (Some(lat), Some(lon), Some(tst)) = (w.lat, w.lon, w.tst) else {
                return Err(Reject::Malformed);
            };
            let ts_ms = tst_ms(tst)?;
            check_coordinates(lat, lon)?;
            // Omitted when zero: a missing `vel` is 0 km/h; a missing `cog` is "no course".
            let speed = Some(w.vel.unwrap_or(0.0));
            check_optional(speed, w.cog)?;
            Ok(Message::Position(Position {
                vehicle,
                ts_ms,
                lat,
                lon,
                speed_kmh: speed,
                heading: w.cog.map(|h| h % 360.0),
                blade: if blade_down {
                    Blade::Down
                } else {
                    Blade::Unknown
                },
                format: Format::OwnTracks,
            }))
        }
        "lwt" => Ok(Message::Offline {
            vehicle,
            ts_ms: w.tst.and_then(|t| tst_ms(t).ok()),
        }),
        _ => Ok(Message::Ignored("owntracks_other_type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(m: Result<Message, Reject>) -> Position {
        match m {
            Ok(Message::Position(p)) => p,
            other => panic!("expected a position, got {other:?}"),
        }
    }

    #[test]
    fn a_sonae_position_with_every_field_is_parsed() {
        let p = pos(parse(
            "sonae/plows/P-017/position",
            br#"{"vehicle":"P-017","lat":38.2554,"lon":140.3396,"ts":"2026-01-10T05:30:00+09:00","speed_kmh":18.5,"heading":270,"blade":"down"}"#,
            true,
        ));
        assert_eq!(p.vehicle, "P-017");
        assert_eq!(
            p.ts_ms, 1_767_990_600_000,
            "05:30 JST is 20:30 UTC the day before"
        );
        assert_eq!((p.lat, p.lon), (38.2554, 140.3396));
        assert_eq!(p.speed_kmh, Some(18.5));
        assert_eq!(p.heading, Some(270.0));
        assert_eq!(p.blade, Blade::Down);
        assert_eq!(p.format, Format::Sonae);
    }

    #[test]
    fn a_sonae_position_without_optional_fields_has_unknown_blade() {
        let p = pos(parse(
            "sonae/plows/P1/position",
            br#"{"vehicle":"P1","lat":38.2,"lon":140.3,"ts":"2026-01-10T00:00:00Z"}"#,
            true,
        ));
        assert_eq!(
            (p.speed_kmh, p.heading, p.blade),
            (None, None, Blade::Unknown)
        );
    }

    #[test]
    fn an_owntracks_location_with_omitted_zero_fields_means_standing_still() {
        let p = pos(parse(
            "owntracks/yamagata-city/plow-017",
            br#"{"_type":"location","lat":38.2554,"lon":140.3396,"tst":1738900000,"tid":"P1","batt":87}"#,
            true,
        ));
        assert_eq!(p.vehicle, "yamagata-city/plow-017");
        assert_eq!(p.ts_ms, 1_738_900_000_000);
        assert_eq!(p.speed_kmh, Some(0.0), "a missing vel is 0 km/h");
        assert_eq!(p.heading, None, "a missing cog is no course, not north");
        assert_eq!(p.blade, Blade::Down);
        assert_eq!(p.format, Format::OwnTracks);
    }

    #[test]
    fn an_owntracks_location_carries_vel_and_cog() {
        let p = pos(parse(
            "owntracks/u/d",
            br#"{"_type":"location","lat":38.2554,"lon":140.3396,"tst":1738900000,"acc":8,"vel":23,"cog":90}"#,
            false,
        ));
        assert_eq!(
            (p.speed_kmh, p.heading, p.blade),
            (Some(23.0), Some(90.0), Blade::Unknown)
        );
    }

    #[test]
    fn an_owntracks_last_will_marks_the_device_offline() {
        assert_eq!(
            parse(
                "owntracks/u/d",
                br#"{"_type":"lwt","tst":1738900000}"#,
                true
            ),
            Ok(Message::Offline {
                vehicle: "u/d".into(),
                ts_ms: Some(1_738_900_000_000)
            })
        );
    }

    #[test]
    fn other_owntracks_types_and_subtopics_are_ignored_not_rejected() {
        assert_eq!(
            parse(
                "owntracks/u/d",
                br#"{"_type":"transition","event":"enter"}"#,
                true
            ),
            Ok(Message::Ignored("owntracks_other_type"))
        );
        assert_eq!(
            parse("owntracks/u/d/event", b"anything", true),
            Ok(Message::Ignored("owntracks_subtopic"))
        );
    }

    #[test]
    fn every_parse_rejection_reason_is_reachable() {
        let cases: &[(&str, &[u8], Reject)] = &[
            ("sonae/plows/P1/position", &[b'x'; MAX_PAYLOAD_BYTES + 1], Reject::TooLarge),
            ("sonae/plows/P1/position", b"\xff\xfe garbage", Reject::Malformed),
            ("sonae/plows/P1/position", br#"{"vehicle":"P1","lat":"38","lon":140,"ts":"2026-01-10T00:00:00Z"}"#, Reject::Malformed),
            ("sonae/plows/P1/position", br#"{"vehicle":"P1","lon":140,"ts":"2026-01-10T00:00:00Z"}"#, Reject::Malformed),
            ("owntracks/u/d", br#"{"_type":"location","lat":38.2}"#, Reject::Malformed),
            ("weather/x", b"{}", Reject::UnknownTopic),
            ("sonae/plows/a b/position", br#"{"vehicle":"a b","lat":38.2,"lon":140.3,"ts":"2026-01-10T00:00:00Z"}"#, Reject::BadVehicle),
            ("sonae/plows/P1/position", br#"{"vehicle":"P2","lat":38.2,"lon":140.3,"ts":"2026-01-10T00:00:00Z"}"#, Reject::TopicMismatch),
            ("sonae/plows/P1/position", br#"{"vehicle":"P1","lat":38.2,"lon":140.3,"ts":"yesterday"}"#, Reject::BadTimestamp),
            ("owntracks/u/d", br#"{"_type":"location","lat":38.2,"lon":140.3,"tst":-5}"#, Reject::BadTimestamp),
            ("sonae/plows/P1/position", br#"{"vehicle":"P1","lat":38.2,"lon":140.3,"ts":"2026-01-10T00:00:00Z","speed_kmh":-3}"#, Reject::BadField),
            ("sonae/plows/P1/position", br#"{"vehicle":"P1","lat":38.2,"lon":140.3,"ts":"2026-01-10T00:00:00Z","heading":400}"#, Reject::BadField),
            ("sonae/plows/P1/position", br#"{"vehicle":"P1","lat":38.2,"lon":140.3,"ts":"2026-01-10T00:00:00Z","blade":"sideways"}"#, Reject::BadField),
            ("sonae/plows/P1/position", br#"{"vehicle":"P1","lat":98.2,"lon":140.3,"ts":"2026-01-10T00:00:00Z"}"#, Reject::BadCoordinates),
            ("owntracks/u/d", br#"{"_type":"location","lat":38.2,"lon":200.3,"tst":1738900000}"#, Reject::BadCoordinates),
        ];
        for (topic, payload, want) in cases {
            assert_eq!(
                parse(topic, payload, true),
                Err(*want),
                "{topic} {}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        use proptest::prelude::*;
        proptest!(|(topic in "[a-z/+#]{0,30}", payload in proptest::collection::vec(any::<u8>(), 0..300))| {
            let _ = parse(&topic, &payload, true);
            let _ = parse("sonae/plows/x/position", &payload, true);
            let _ = parse("owntracks/a/b", &payload, true);
        });
    }
}
