//! The opt-in "a plow has entered your district" notice: the commands, the opt-in state (the residents' topic
//! subscriptions, topic [`TOPIC`], scope = plow district) and the claim that enqueues a notice.
//!
//! Rules (issue 6, item 6):
//! * a resident opts in per district (text 「除雪通知」 or the postback `action=plow-notice&set=on&district=…`)
//!   and out with 「除雪通知停止」 / `action=plow-notice&set=off`; opting out deletes the subscription, so no
//!   later claim can include them;
//! * a notice goes out at most once per subscription, district and storm: each claim records up to which
//!   subscription start it covered (`plow_notice_claims`), and the next claim in that storm streams only
//!   subscriptions that began later. A resident who opts out and in again after being told counts as a new
//!   subscription;
//! * only the district name is sent — never a vehicle's exact position or anyone else's location.
//!
//! Sending (durable outbox, rate limits) is the delivery module's job: [`claim_and_enqueue`] streams the
//! subscribers into the outbox in the ingest's transaction; the message text comes from [`notice_text`].

use rusqlite::{params, Transaction};

use crate::ids::LineUserId;
use crate::resident::topics;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Subscribe,
    Unsubscribe,
}

/// The postback action: `action=plow-notice&set=on|off[&district=ID]`.
pub const ACTION: &str = "plow-notice";

/// Recognises a postback of [`ACTION`] by its `set` field.
pub fn parse_postback(pb: &crate::line::events::Postback) -> Option<Command> {
    if pb.action().as_deref() != Some(ACTION) {
        return None;
    }
    match pb.field("set").as_deref() {
        Some("on") => Some(Command::Subscribe),
        Some("off") => Some(Command::Unsubscribe),
        _ => None,
    }
}

/// Recognises the resident's text. Full-width spaces and surrounding blanks are ignored.
pub fn parse_command(text: &str) -> Option<Command> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    match t.as_str() {
        "除雪通知" | "除雪通知登録" | "除雪通知を受け取る" => {
            Some(Command::Subscribe)
        }
        "除雪通知停止" | "除雪通知解除" | "除雪通知をやめる" => {
            Some(Command::Unsubscribe)
        }
        _ => None,
    }
}

/// The message residents receive (Japanese, as the city writes it).
pub fn notice_text(district_name: &str) -> String {
    format!(
        "【除雪情報】{district_name}で除雪車の作業が始まりました。\n\
         作業中の道路には近づかず、路上駐車はお控えください。\n\
         ※GPSの通過記録は、道路の除雪が完了していることを保証するものではありません。\n\
         通知を止めるには「除雪通知停止」と送ってください。"
    )
}

/// The topic residents subscribe to ([`crate::resident::topics`]); the scope is the plow district id.
pub const TOPIC: &str = "plow-notice";

/// Opts a resident in for a district (idempotent).
pub fn subscribe(tx: &Transaction<'_>, user: &LineUserId, district: &str) -> anyhow::Result<()> {
    topics::subscribe(
        tx,
        user,
        TOPIC,
        district,
        chrono::Utc::now().timestamp_millis(),
    )
}

/// Opts a resident out of one district, or of all with `None`. Returns how many subscriptions were removed.
pub fn unsubscribe(
    tx: &Transaction<'_>,
    user: &LineUserId,
    district: Option<&str>,
) -> anyhow::Result<usize> {
    topics::unsubscribe(tx, user, TOPIC, district)
}

/// Outbox priority of a notice: normal traffic (`disaster::engine::Priority::Normal`), so alerts overtake it.
pub const PRIORITY: i64 = 10;

/// A plow entered `district` in storm `storm_id`: enqueues the notice for every subscriber of the district
/// not told yet in this storm, and records the claim — in the caller's transaction (the ingest's, with the
/// positions). Returns how many residents it goes to (0: nothing enqueued).
///
/// Once per resident, district and storm: a claim covers the subscriptions that began up to `now_ms`; the
/// next claim in the same storm streams only those that began after the previous one. Recipients are
/// streamed from the subscriptions into batch rows ([`crate::delivery::Recipients::Subscribers`]).
pub fn claim_and_enqueue(
    tx: &Transaction<'_>,
    storm_id: i64,
    district_id: &str,
    district_name: &str,
    now_ms: i64,
) -> anyhow::Result<usize> {
    let after: i64 = tx.query_row(
        "SELECT coalesce(max(until_ms), -1) FROM plow_notice_claims WHERE storm_id = ?1 AND district = ?2",
        params![storm_id, district_id],
        |r| r.get(0),
    )?;
    let until = now_ms.max(after + 1);
    let who = topics::Subscribers {
        topic: TOPIC.into(),
        scope: district_id.into(),
        began_after_ms: after,
        began_until_ms: until,
    };
    let n = topics::count(tx, &who)?;
    if n == 0 {
        return Ok(0);
    }
    tx.execute(
        "INSERT INTO plow_notice_claims (storm_id, district, until_ms, recipients, claimed_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            storm_id,
            district_id,
            until,
            n as i64,
            chrono::Utc::now().to_rfc3339()
        ],
    )?;
    let alert = crate::delivery::NewAlert {
        step_key: format!("plow-notice/{storm_id}/{district_id}/{until}"),
        source: "plow".into(),
        kind: "plow_notice".into(),
        priority: PRIORITY,
        summary: format!("除雪通知（{district_name}）"),
        detail: serde_json::json!({
            "storm_id": storm_id,
            "district_id": district_id,
            "district_name": district_name,
            "recipients": n,
        }),
    };
    let plan = crate::delivery::Planned {
        messages: vec![notice_message(district_name)],
        recipients: crate::delivery::Recipients::Subscribers(who),
    };
    crate::delivery::enqueue(tx, &alert, &[plan], now_ms)?;
    Ok(n)
}

/// The notice as a LINE text message with a quick reply that stops further notices.
pub fn notice_message(district_name: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "text",
        "text": notice_text(district_name),
        "quickReply": {"items": [stop_item()]},
    })
}

fn stop_item() -> serde_json::Value {
    serde_json::json!({"type": "action", "action": {
        "type": "postback", "label": "除雪通知を止める", "data": "action=plow-notice&set=off", "displayText": "除雪通知停止"}})
}

/// What a resident's request resolved to; [`reply_message`] words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Subscribed {
        district_name: String,
    },
    Unsubscribed {
        removed: usize,
    },
    /// Text 「除雪通知」 from a resident who has not registered a district.
    NoDistrict,
    /// The district is not one the plow data covers (postback from an old menu, or a district outside it).
    UnknownDistrict,
    /// Plow tracking runs without a road network: no district entries are detected, so nothing could be sent.
    Unavailable,
}

/// The reply (LINE text message) to a resident's request, in the city's words.
pub fn reply_message(outcome: &Outcome) -> serde_json::Value {
    use serde_json::json;
    match outcome {
        Outcome::Subscribed { district_name } => json!({
            "type": "text",
            "text": format!(
                "除雪通知を受け付けました。降雪対応中に除雪車が{district_name}に入ったときに、一度お知らせします。\n止めるときは「除雪通知停止」と送ってください。"
            ),
            "quickReply": {"items": [stop_item()]},
        }),
        Outcome::Unsubscribed { removed } if *removed > 0 => json!({
            "type": "text",
            "text": "除雪通知を停止しました。再開するときは「除雪通知」と送ってください。",
        }),
        Outcome::Unsubscribed { .. } => json!({
            "type": "text",
            "text": "除雪通知は登録されていません。受け取るときは「除雪通知」と送ってください。",
        }),
        Outcome::NoDistrict => json!({
            "type": "text",
            "text": "除雪通知をお送りするには、先にお住まいの地区を登録してください。登録後にもう一度「除雪通知」と送ってください。",
            "quickReply": {"items": [{"type": "action", "action": {
                "type": "postback", "label": "地区を登録する", "data": "action=register", "displayText": "地区登録"}}]},
        }),
        Outcome::UnknownDistrict => json!({
            "type": "text",
            "text": "お住まいの地区は除雪車の位置情報の対象区域に含まれていないため、除雪通知を登録できませんでした。",
        }),
        Outcome::Unavailable => json!({
            "type": "text",
            "text": "申し訳ありません。現在、除雪通知はご利用いただけません。",
        }),
    }
}

/// The plow district (index into `net.districts`) a resident's district id stands for: the plow district with
/// that id, else (the plow map uses coarser districts, e.g. wards while residents register towns) the plow
/// district containing the centre of the resident's registered district. A network without district polygons
/// has one district, the whole city, which every known district maps to.
pub fn resolve_district(
    net: &super::coverage::RoadNetwork,
    resident_districts: Option<&crate::place::Districts>,
    id: &str,
) -> Option<usize> {
    if let Some(i) = net.districts.iter().position(|d| d.id == id) {
        return Some(i);
    }
    let d = resident_districts?.get(id)?;
    net.district_at(d.label_point.lat, d.label_point.lon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn u(n: u8) -> LineUserId {
        LineUserId::new(format!("U{:032x}", n))
    }

    #[test]
    fn text_and_postback_commands_are_recognised() {
        assert_eq!(parse_command(" 除雪通知 "), Some(Command::Subscribe));
        assert_eq!(parse_command("除雪通知　停止"), Some(Command::Unsubscribe));
        let pb = |data: &str| crate::line::events::Postback {
            data: data.into(),
            ..Default::default()
        };
        assert_eq!(
            parse_postback(&pb("action=plow-notice&set=on&district=01101")),
            Some(Command::Subscribe)
        );
        assert_eq!(
            parse_postback(&pb("action=plow-notice&set=off")),
            Some(Command::Unsubscribe)
        );
        assert_eq!(parse_postback(&pb("action=news&set=on")), None);
        assert_eq!(parse_command("ごみの日"), None);
    }

    /// The recipients of every plow notice in the outbox, oldest first.
    fn notified(store: &Store) -> Vec<Vec<String>> {
        store
            .read_blocking(|c| {
                let mut st = c.prepare(
                    "SELECT a.id, b.recipients FROM delivery_alerts a JOIN delivery_batches b ON b.alert_id = a.id
                     WHERE a.kind = 'plow_notice' ORDER BY a.id, b.id",
                )?;
                let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
                let mut out: Vec<(i64, Vec<String>)> = Vec::new();
                for row in rows {
                    let (id, rec) = row?;
                    let users = rec.lines().map(str::to_string);
                    match out.last_mut() {
                        Some(last) if last.0 == id => last.1.extend(users),
                        _ => out.push((id, users.collect())),
                    }
                }
                Ok(out.into_iter().map(|(_, u)| u).collect())
            })
            .unwrap()
    }

    #[test]
    fn the_notice_goes_once_per_subscription_district_and_storm_and_never_after_opt_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let sub = |n: u8, d: &'static str, at: i64| {
            store
                .write_blocking(move |tx| {
                    crate::resident::follow_tx(tx, &u(n))?;
                    topics::subscribe(tx, &u(n), TOPIC, d, at)
                })
                .unwrap()
        };
        sub(1, "01101", 10);
        sub(2, "01101", 20);
        sub(3, "01102", 30);
        let (storm1, storm2) = store
            .write_blocking(|tx| {
                let s1 = match crate::plow::store::start_storm(tx, 1_000, "dispatcher", "")? {
                    crate::plow::store::StormChange::Started(s) => s.id,
                    other => panic!("{other:?}"),
                };
                crate::plow::store::end_storm(tx, 2_000, "dispatcher")?;
                let s2 = match crate::plow::store::start_storm(tx, 3_000, "dispatcher", "")? {
                    crate::plow::store::StormChange::Started(s) => s.id,
                    other => panic!("{other:?}"),
                };
                Ok((s1, s2))
            })
            .unwrap();
        let claim = |storm: i64, d: &'static str, now: i64| {
            store
                .write_blocking(move |tx| claim_and_enqueue(tx, storm, d, "中央区", now))
                .unwrap()
        };
        let id = |n: u8| u(n).as_str().to_string();
        assert_eq!(claim(storm1, "01101", 1_500), 2);
        assert_eq!(
            claim(storm1, "01101", 1_600),
            0,
            "second entry in the same storm"
        );
        assert_eq!(claim(storm1, "01102", 1_700), 1);
        assert_eq!(notified(&store), vec![vec![id(1), id(2)], vec![id(3)]]);
        // Resident 2 opts out; the next storm notifies only resident 1.
        store
            .write_blocking(|tx| unsubscribe(tx, &u(2), None))
            .unwrap();
        assert_eq!(claim(storm2, "01101", 3_500), 1);
        // Opting in again after that claim is a new subscription: told at the next entry, once.
        sub(2, "01101", 3_600);
        assert_eq!(claim(storm2, "01101", 3_700), 1);
        assert_eq!(claim(storm2, "01101", 3_800), 0);
        let all = notified(&store);
        assert_eq!(all[2], vec![id(1)]);
        assert_eq!(all[3], vec![id(2)]);
        assert_eq!(all.len(), 4);
    }

    /// A square town of ±0.002° around a point, as the registration districts file has them.
    fn town(id: &str, lat: f64, lon: f64) -> String {
        let (a, b, c, d) = (lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002);
        format!(
            r#"{{"type":"Feature","properties":{{"id":"{id}","name":"{id}","jma_code":"0110000"}},
               "geometry":{{"type":"Polygon","coordinates":[[[{a},{b}],[{c},{b}],[{c},{d}],[{a},{d}],[{a},{b}]]]}}}}"#
        )
    }

    #[test]
    fn a_registered_town_maps_to_the_plow_ward_that_contains_it() {
        use crate::plow::coverage::{load_districts, RoadNetwork};
        let wards = load_districts(
            include_str!("../../deploy/demo/sapporo-wards.geojson"),
            "id",
            "name",
        )
        .unwrap();
        let net = RoadNetwork::from_geojson(
            include_str!("../../tests/fixtures/plow/sapporo-odori-excerpt.geojson"),
            Some(wards),
        )
        .unwrap();
        let (towns, _) = crate::place::Districts::from_geojson_str(&format!(
            r#"{{"type":"FeatureCollection","features":[{},{},{}]}}"#,
            town("odori", 43.0597, 141.3468),
            town("hokudai", 43.0770, 141.3400),
            town("tokyo", 35.68, 139.76),
        ))
        .unwrap();
        let name = |id: &str| {
            resolve_district(&net, Some(&towns), id).map(|i| net.districts[i].name.clone())
        };
        assert_eq!(name("odori").as_deref(), Some("中央区"));
        assert_eq!(name("hokudai").as_deref(), Some("北区"));
        assert_eq!(name("01101").as_deref(), Some("中央区"), "a ward id as is");
        assert_eq!(name("tokyo"), None, "outside every ward");
        assert_eq!(name("nowhere"), None, "unknown id");
        assert_eq!(resolve_district(&net, None, "odori"), None);
        // Without ward polygons the whole city is one district; known towns map to it.
        let city = RoadNetwork::from_geojson(
            include_str!("../../tests/fixtures/plow/sapporo-odori-excerpt.geojson"),
            None,
        )
        .unwrap();
        assert_eq!(resolve_district(&city, Some(&towns), "odori"), Some(0));
        assert_eq!(city.districts[0].id, "all");
    }

    #[test]
    fn every_reply_is_a_valid_line_message_in_japanese() {
        let outcomes = [
            Outcome::Subscribed {
                district_name: "中央区".into(),
            },
            Outcome::Unsubscribed { removed: 1 },
            Outcome::Unsubscribed { removed: 0 },
            Outcome::NoDistrict,
            Outcome::UnknownDistrict,
            Outcome::Unavailable,
        ];
        for o in &outcomes {
            let m = reply_message(o);
            let typed: crate::line::message::Message =
                serde_json::from_value(m.clone()).unwrap_or_else(|e| panic!("{o:?}: {e}"));
            assert!(
                crate::line::limits::check_messages(&[typed]).is_ok(),
                "{o:?}"
            );
            assert!(m["text"].as_str().unwrap().contains("除雪通知"), "{o:?}");
        }
        assert!(reply_message(&outcomes[0])["text"]
            .as_str()
            .unwrap()
            .contains("除雪車が中央区に入ったとき"));
        let n: crate::line::message::Message =
            serde_json::from_value(notice_message("中央区")).unwrap();
        assert!(crate::line::limits::check_messages(&[n]).is_ok());
    }

    #[test]
    fn the_notice_text_names_the_district_and_how_to_stop() {
        let t = notice_text("中央区");
        assert!(t.contains("中央区で除雪車の作業が始まりました"));
        assert!(t.contains("除雪通知停止"));
    }
}
