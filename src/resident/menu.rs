//! The account as the city's window: the rich-menu buttons that are not a service of their own yet, 受信設定,
//! and the fallback that answers anything no service claims — so no button and no message meets silence.
//!
//! * `action=settings` (受信設定): what the resident receives now (district, レベル3 notices, plow notices)
//!   with quick replies to change each.
//! * `action=news`, `action=garbage`, `action=road_report`, `action=contact`: the services behind them
//!   (the city's news, the garbage calendar and sorting chatbot, citizen reports, the FAQ) are being built;
//!   until then each button says plainly what works now, what is coming, and where to turn meanwhile.
//! * Fallback: a text or postback no service claims gets a short list of what the account can do, as quick
//!   replies. Other event kinds (stickers, images) get the same list.

use serde_json::{json, Value};

use crate::line::events::{handler_fn, postback_data, reply, Claim, Event};
use crate::line::LineRuntime;
use crate::services::Registry;

/// Menu actions this service answers.
pub const ACTIONS: [&str; 5] = ["settings", "news", "garbage", "road_report", "contact"];

fn postback_item(label: &str, data: String) -> Value {
    json!({"type": "action", "action": {"type": "postback", "label": label, "data": data, "displayText": label}})
}

fn message_item(label: &str, text: &str) -> Value {
    json!({"type": "action", "action": {"type": "message", "label": label, "text": text}})
}

fn uri_item(label: &str, uri: String) -> Value {
    json!({"type": "action", "action": {"type": "uri", "label": label, "uri": uri}})
}

/// What the account can do, as quick replies (also the fallback's answer).
fn what_i_can_do(public_url: &str, plow: bool) -> Vec<Value> {
    let base = public_url.trim_end_matches('/');
    let mut items = vec![
        postback_item("地区の登録", postback_data(&[("action", "register")])),
        postback_item("受信設定", postback_data(&[("action", "settings")])),
        uri_item("避難所マップ", format!("{base}/shelters")),
        postback_item("安否の報告", postback_data(&[("action", "safety_report")])),
    ];
    if plow {
        items.push(message_item("除雪通知", "除雪通知"));
    }
    items
}

fn text(t: impl Into<String>, items: Vec<Value>) -> Value {
    let t = t.into();
    if items.is_empty() {
        json!({"type": "text", "text": t})
    } else {
        json!({"type": "text", "text": t, "quickReply": {"items": items}})
    }
}

/// The answer to a menu button that has no service of its own yet.
fn interim(action: &str, city: &str, public_url: &str, plow: bool) -> Option<Value> {
    let (body, extra): (String, Vec<Value>) = match action {
        "news" => (
            format!("{city}からのお知らせの配信は準備中です。始まりましたら、このボタンで最新のお知らせを読めるようになります。\n\nいまこのアカウントでは、大雨・地震などの警報や市の避難情報を、登録した地区に合わせてお届けしています。"),
            vec![],
        ),
        "garbage" => (
            format!("ごみ出しの日のお知らせと分別の案内は準備中です。始まりましたら、地区ごとの収集日と前日のお知らせ、品目を送ると出し方が分かる案内をご利用いただけます。\n\nそれまでは{city}のホームページのごみ・資源物のページをご覧ください。"),
            vec![],
        ),
        "road_report" => (
            format!("道路の損傷などを写真で通報する機能は準備中です。始まりましたら、写真と場所を送るだけで担当課に届き、対応状況もこのアカウントでお知らせします。\n\nそれまでは{city}の道路の担当窓口へお電話ください。事故やけが人があるときは110番・119番へ。"),
            vec![],
        ),
        "contact" => (
            format!("このアカウントへのメッセージには、担当者が個別にお返事することはできません。よくある質問への自動応答は準備中です。\n\nお問い合わせは{city}の代表電話または各担当課へお願いします。緊急の通報は110番・119番へ。"),
            vec![],
        ),
        _ => return None,
    };
    let mut items = extra;
    items.extend(what_i_can_do(public_url, plow));
    Some(text(body, items))
}

/// 受信設定: what the resident receives now, with a way to change each.
async fn settings(d: &Deps, ev: &Event) -> anyhow::Result<Vec<Value>> {
    let (line, city, place) = (&d.line, d.city.as_str(), d.place.as_deref());
    let Some(user) = ev.user_id().cloned() else {
        return Ok(vec![]);
    };
    let u = user.clone();
    let (resident, topics) = line
        .store
        .read(move |c| Ok((super::get(c, &u)?, super::topics::of_user(c, &u)?)))
        .await?;
    let district = resident
        .as_ref()
        .and_then(|r| r.district_id.as_deref())
        .map(|id| {
            place
                .and_then(|p| p.districts.get(id))
                .map(super::flow::display_name)
                .unwrap_or_else(|| id.to_string())
        });
    let level3 = resident.as_ref().is_some_and(|r| r.opt_level3);
    let plow = d
        .plow_topic
        .is_some_and(|p| topics.iter().any(|(t, _)| t == p));
    let mut lines = vec![format!("{city}の防災情報の受信設定です。")];
    lines.push(match &district {
        Some(d) => format!("・登録地区：{d}"),
        None => "・登録地区：未登録（地区を登録すると、お住まいの地区に合わせた避難の呼びかけが届きます）".into(),
    });
    lines.push(format!(
        "・警戒レベル3（高齢者等避難など）の通知：{}",
        if level3 {
            "受け取る"
        } else {
            "受け取らない（レベル4以上だけ）"
        }
    ));
    if d.plow_topic.is_some() {
        lines.push(format!(
            "・除雪車の通知：{}",
            if plow {
                "受け取る"
            } else {
                "受け取らない"
            }
        ));
    }
    let reg = |fields: &[(&str, &str)]| {
        let mut all = vec![("action", "register")];
        all.extend_from_slice(fields);
        postback_data(&all)
    };
    let mut items = vec![postback_item(
        if district.is_some() {
            "地区を変更する"
        } else {
            "地区を登録する"
        },
        reg(&[("step", "start")]),
    )];
    if district.is_some() {
        items.push(if level3 {
            postback_item(
                "レベル3を受け取らない",
                reg(&[("step", "level3"), ("on", "0")]),
            )
        } else {
            postback_item("レベル3も受け取る", reg(&[("step", "level3"), ("on", "1")]))
        });
    }
    if d.plow_topic.is_some() {
        items.push(if plow {
            message_item("除雪通知をやめる", "除雪通知停止")
        } else {
            message_item("除雪通知を受け取る", "除雪通知")
        });
    }
    Ok(vec![text(lines.join("\n"), items)])
}

/// What the menu service needs.
#[derive(Clone)]
pub struct Deps {
    pub line: LineRuntime,
    pub place: Option<std::sync::Arc<crate::place::PlaceData>>,
    pub city: String,
    pub public_url: String,
    /// The plow-notice topic when plow tracking is on (its quick replies and setting are shown only then).
    pub plow_topic: Option<&'static str>,
}

const SERVICES_PAGE: &str = include_str!("../../templates/web/services.html");
const SERVICES_STYLE: &str = include_str!("../../templates/web/services.css");

/// `GET /services` (各種手続き, the menu's link): what the account does and where the city's online procedures
/// will be listed. Names are HTML-escaped.
fn services_page(city: &str, public_url: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    SERVICES_PAGE
        .replace("{{city}}", &esc(city))
        .replace("{{public_url}}", &esc(public_url.trim_end_matches('/')))
}

/// Installs the menu buttons' answers, `/services`, and the fallback (install last: it answers what nobody
/// claimed).
pub fn install(reg: &mut Registry, deps: Deps) {
    let page = services_page(&deps.city, &deps.public_url);
    let routes = axum::Router::new()
        .route(
            "/services",
            axum::routing::get(move || {
                let page = page.clone();
                async move { axum::response::Html(page) }
            }),
        )
        .route(
            "/assets/services.css",
            axum::routing::get(|| async {
                crate::place::web::asset("text/css; charset=utf-8", SERVICES_STYLE)
            }),
        );
    let mut service = reg.service("menu").routes(routes);
    for action in ACTIONS {
        let d = deps.clone();
        let handler = handler_fn(move |ev: Event| {
            let d = d.clone();
            async move {
                let messages = if action == "settings" {
                    settings(&d, &ev).await?
                } else {
                    interim(action, &d.city, &d.public_url, d.plow_topic.is_some())
                        .into_iter()
                        .collect()
                };
                reply(&d.line.client, &ev, messages).await?;
                Ok(Claim::Handled)
            }
        });
        service = service.postback(action, handler);
    }
    let d = deps.clone();
    let fallback = handler_fn(move |ev: Event| {
        let d = d.clone();
        async move {
            let known_postback = ev.postback.is_some();
            let body = if known_postback {
                "この操作にはお答えできませんでした。古いボタンを押した可能性があります。下のボタンからお選びください。"
            } else {
                "ご用件を読み取れませんでした。このアカウントでできることを下のボタンからお選びください。\n（このアカウントへのメッセージに、担当者が個別にお返事することはできません。緊急の通報は110番・119番へ）"
            };
            let items = what_i_can_do(&d.public_url, d.plow_topic.is_some());
            reply(&d.line.client, &ev, vec![text(body, items)]).await?;
            Ok(Claim::Handled)
        }
    });
    service.fallback(fallback);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interim_answer_is_a_valid_line_message_with_quick_replies() {
        for a in ACTIONS.iter().filter(|a| **a != "settings") {
            let m = interim(a, "札幌市", "https://bousai.example.lg.jp", true).unwrap();
            crate::line::spec::validate_schema("Message", &m).unwrap();
            assert!(m["quickReply"]["items"].as_array().unwrap().len() <= 13);
        }
        let fb = text("x", what_i_can_do("https://bousai.example.lg.jp", true));
        crate::line::spec::validate_schema("Message", &fb).unwrap();
    }
}
