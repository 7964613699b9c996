//! The registration conversation, as pure functions: an event in, LINE message objects (JSON, valid per the
//! official Messaging API spec) and one [`Effect`] out. The webhook worker sends the messages as the reply and
//! stores the effect ([`super::apply_effect`]).
//!
//! A resident registers a district in one of two ways:
//! * **share location** (quick-reply location action) → the district containing the point;
//! * **pick from a list**: groups (wards) as quick-reply buttons, then town names grouped by their base name
//!   (`大通西一丁目`…`大通西二十八丁目` → `大通西`), then the district — each level a paged Flex carousel of
//!   at most 4 bubbles × 10 buttons (40 per page; 中央区's 79 base names take 2 pages), with 前へ/次へ as
//!   quick replies. Typing a town name (e.g. `大通西3丁目`) also finds it; names are compared with
//!   [`crate::text::name_key`] (3 = 三, ケ = ヶ = が, full and half width, hiragana and katakana alike).
//!
//! Postback data (≤ 300 chars) in the one grammar ([`crate::line::events::postback_data`]):
//! `action=register` (the rich menu's 「地区の登録」; starts over), `…&step=start&page=P`,
//! `…&step=group&page=P&group=G`, `…&step=base&page=P&group=G&base=B`, `…&step=set&district=ID`,
//! `…&step=level3&on=1|0`; the group is empty for districts without one.

use serde_json::{json, Value};

use crate::line::events::{postback_data, Postback};
use crate::place::{District, Districts, LatLon};
use crate::text::name_key;

fn reg(fields: &[(&str, &str)]) -> String {
    let mut all = vec![("action", ACTION)];
    all.extend_from_slice(fields);
    postback_data(&all)
}

/// The postback action of registration.
pub const ACTION: &str = "register";

/// What the reply asks the store to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    Register { district_id: String },
    SetLevel3(bool),
}

/// Messages to reply with and the effect to store.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub messages: Vec<Value>,
    pub effect: Effect,
}

impl Reply {
    fn say(messages: Vec<Value>) -> Reply {
        Reply {
            messages,
            effect: Effect::None,
        }
    }
}

/// Buttons per bubble and bubbles per page of a list: 40 items per page keeps a carousel far below LINE's
/// 50 KB (a page is about 12 KB) and 12-bubble limits.
pub const PER_BUBBLE: usize = 10;
pub const BUBBLES_PER_PAGE: usize = 4;
pub const PER_PAGE: usize = PER_BUBBLE * BUBBLES_PER_PAGE;

/// LINE's limit for action labels is 20 characters.
fn label(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 20 {
        s.to_string()
    } else {
        chars[..19].iter().collect::<String>() + "…"
    }
}

fn postback(text: &str, data: String) -> Value {
    json!({"type": "postback", "label": label(text), "data": data, "displayText": text})
}

fn qr(action: Value) -> Value {
    json!({"type": "action", "action": action})
}

fn location_item() -> Value {
    qr(json!({"type": "location", "label": "位置情報を送る"}))
}

fn text_with(text: String, items: Vec<Value>) -> Value {
    if items.is_empty() {
        json!({"type": "text", "text": text})
    } else {
        json!({"type": "text", "text": text, "quickReply": {"items": items}})
    }
}

/// Full display name of a district, e.g. `中央区 大通西一丁目`.
pub fn display_name(d: &District) -> String {
    match &d.group {
        Some(g) => format!("{g} {}", d.name),
        None => d.name.clone(),
    }
}

/// The base of a town name: a trailing `…丁目` in kanji or digits is removed (`大通西一丁目` → `大通西`).
pub fn base_name(name: &str) -> &str {
    let Some(stem) = name.strip_suffix("丁目") else {
        return name;
    };
    let trimmed = stem.trim_end_matches(|c: char| {
        "一二三四五六七八九十〇0123456789０１２３４５６７８９".contains(c)
    });
    if trimmed.is_empty() || trimmed.len() == stem.len() {
        name
    } else {
        trimmed
    }
}

/// Reply to a follow event. `returning` is the district a returning follower registered before.
pub fn welcome(districts: &Districts, city: &str, returning: Option<&str>) -> Vec<Value> {
    if let Some(d) = returning.and_then(|id| districts.get(id)) {
        return vec![text_with(
            format!(
                "おかえりなさい。{city}の防災情報をお届けします。\n登録中の地区は「{}」です。変更するときは下のボタンを押すか、「地区変更」と送ってください。",
                display_name(d)
            ),
            vec![qr(postback("地区を変更する", reg(&[("step", "start")])))],
        )];
    }
    let mut out = vec![json!({"type": "text", "text": format!(
        "友だち追加ありがとうございます。{city}の防災情報をお届けする公式アカウントです。\n大雨や地震などで避難が必要になったとき、お住まいの地区に合わせて、避難の呼びかけと近くの避難場所をお知らせします。"
    )})];
    out.extend(start(districts).messages);
    out
}

/// The first step of registration: share location, or pick a group (or, without groups, the first page).
pub fn start(districts: &Districts) -> Reply {
    let groups = districts.groups();
    let text = "お住まいの地区を登録してください。\n・「位置情報を送る」を押して、ご自宅の位置を送る\n・下のボタンから区を選ぶ\nのどちらかでお選びいただけます。町名（例：大通西3丁目）を送っていただいても探せます。".to_string();
    if !groups.is_empty() && groups.len() <= 12 {
        let mut items = vec![location_item()];
        items.extend(groups.iter().map(|g| {
            qr(postback(
                g,
                reg(&[("step", "group"), ("page", "0"), ("group", g)]),
            ))
        }));
        return Reply::say(vec![text_with(text, items)]);
    }
    if groups.is_empty() {
        let mut r = base_page(districts, None, 0);
        r.messages.insert(
            0,
            text_with(
                "お住まいの地区を登録してください。「位置情報を送る」でご自宅の位置を送るか、一覧から町名を選んでください。".into(),
                vec![location_item()],
            ),
        );
        return r;
    }
    // More than 12 groups: a paged list of groups.
    let items: Vec<(String, String)> = groups
        .iter()
        .map(|g| {
            (
                g.to_string(),
                reg(&[("step", "group"), ("page", "0"), ("group", g)]),
            )
        })
        .collect();
    Reply::say(vec![
        text_with(text, vec![location_item()]),
        list_page("区を選んでください", &items, 0, |p| {
            reg(&[("step", "start"), ("page", &p.to_string())])
        }),
    ])
}

/// Bases of a group with the data their button sends: a base with one district registers it directly.
fn bases(districts: &Districts, group: Option<&str>) -> Vec<(String, String)> {
    let g = group.unwrap_or("");
    let mut out: Vec<(String, Vec<&District>)> = Vec::new();
    for d in districts.in_group(group) {
        let b = base_name(&d.name);
        match out.iter_mut().find(|(name, _)| name == b) {
            Some((_, v)) => v.push(d),
            None => out.push((b.to_string(), vec![d])),
        }
    }
    out.into_iter()
        .map(|(b, ds)| {
            if ds.len() == 1 {
                (
                    ds[0].name.clone(),
                    reg(&[("step", "set"), ("district", &ds[0].id)]),
                )
            } else {
                (
                    b.clone(),
                    reg(&[
                        ("step", "base"),
                        ("page", "0"),
                        ("group", g),
                        ("base", b.as_str()),
                    ]),
                )
            }
        })
        .collect()
}

fn base_page(districts: &Districts, group: Option<&str>, page: usize) -> Reply {
    let items = bases(districts, group);
    let g = group.unwrap_or("");
    let title = match group {
        Some(g) => format!("{g}の町名を選んでください"),
        None => "町名を選んでください".into(),
    };
    Reply::say(vec![list_page(&title, &items, page, |p| {
        reg(&[("step", "group"), ("page", &p.to_string()), ("group", g)])
    })])
}

fn district_page(districts: &Districts, group: Option<&str>, base: &str, page: usize) -> Reply {
    let items: Vec<(String, String)> = districts
        .in_group(group)
        .filter(|d| base_name(&d.name) == base)
        .map(|d| (d.name.clone(), reg(&[("step", "set"), ("district", &d.id)])))
        .collect();
    let g = group.unwrap_or("");
    Reply::say(vec![list_page(
        &format!("{base}：地区を選んでください"),
        &items,
        page,
        |p| {
            reg(&[
                ("step", "base"),
                ("page", &p.to_string()),
                ("group", g),
                ("base", base),
            ])
        },
    )])
}

/// A Flex carousel of at most [`PER_PAGE`] postback buttons, with 前へ/次へ/最初から as quick replies.
pub fn list_page(
    title: &str,
    items: &[(String, String)],
    page: usize,
    page_data: impl Fn(usize) -> String,
) -> Value {
    let pages = items.len().div_ceil(PER_PAGE).max(1);
    let page = page.min(pages - 1);
    let slice =
        &items[(page * PER_PAGE).min(items.len())..((page + 1) * PER_PAGE).min(items.len())];
    let bubbles: Vec<Value> = slice
        .chunks(PER_BUBBLE)
        .map(|chunk| {
            let buttons: Vec<Value> = chunk
                .iter()
                .map(|(text, data)| {
                    json!({"type": "button", "style": "secondary", "height": "sm",
                           "action": postback(text, data.clone())})
                })
                .collect();
            json!({
                "type": "bubble",
                "size": "kilo",
                "header": {"type": "box", "layout": "vertical", "contents": [
                    {"type": "text", "text": title, "weight": "bold", "wrap": true, "size": "sm"}
                ]},
                "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": buttons}
            })
        })
        .collect();
    let mut nav = Vec::new();
    if page > 0 {
        nav.push(qr(postback("前のページ", page_data(page - 1))));
    }
    if page + 1 < pages {
        nav.push(qr(postback("次のページ", page_data(page + 1))));
    }
    nav.push(location_item());
    nav.push(qr(postback("最初から選び直す", reg(&[("step", "start")]))));
    let alt = if pages > 1 {
        format!("{title}（{}/{pages}ページ）", page + 1)
    } else {
        title.to_string()
    };
    json!({
        "type": "flex",
        "altText": alt,
        "contents": {"type": "carousel", "contents": bubbles},
        "quickReply": {"items": nav}
    })
}

fn registered(d: &District) -> Reply {
    Reply {
        messages: vec![text_with(
            format!(
                "「{}」を登録しました。この地区に避難の呼びかけや避難場所の情報をお知らせします。\n\n警戒レベル3（高齢者等避難）にあたる情報も受け取りたい方は「レベル3も受け取る」を押してください。",
                display_name(d)
            ),
            vec![
                qr(postback("レベル3も受け取る", reg(&[("step", "level3"), ("on", "1")]))),
                qr(postback("地区を変更する", reg(&[("step", "start")]))),
            ],
        )],
        effect: Effect::Register {
            district_id: d.id.clone(),
        },
    }
}

/// Reply to a location message. A resident who has no district yet registers the one they are in (the
/// registration's own 「位置情報を送る」). A registered resident may be sharing where they are now — to find a
/// shelter, or from a relative's house — so their home registration is never moved silently: they are told
/// where the location is and asked, and nothing changes until they say so.
pub fn on_location(
    districts: &Districts,
    city: &str,
    at: LatLon,
    current: Option<&str>,
    public_url: &str,
) -> Reply {
    let here = districts.locate(at);
    let home = current.and_then(|id| districts.get(id));
    match (here, home) {
        (Some(d), None) => registered(d),
        (Some(d), Some(h)) => {
            let shelters = json!({"type": "action", "action": {"type": "uri", "label": "この近くの避難所",
                "uri": format!("{}/shelters?lat={:.6}&lon={:.6}", public_url.trim_end_matches('/'), at.lat, at.lon)}});
            let (text, mut items) = if d.id == h.id {
                (
                    format!(
                        "送っていただいた位置は、登録中の地区「{}」の中です。",
                        display_name(h)
                    ),
                    vec![],
                )
            } else {
                (
                    format!(
                        "送っていただいた位置は「{}」です。登録中の地区「{}」は変えていません。\nこの場所を新しい登録地区にするときは、下のボタンを押してください。",
                        display_name(d),
                        display_name(h)
                    ),
                    vec![qr(postback(
                        &format!("{}を登録", d.name),
                        reg(&[("step", "set"), ("district", &d.id)]),
                    ))],
                )
            };
            items.push(shelters);
            Reply {
                messages: vec![text_with(text, items)],
                effect: Effect::None,
            }
        }
        (None, _) => {
            let mut r = start(districts);
            r.messages.insert(
                0,
                json!({"type": "text", "text": format!(
                    "送っていただいた位置は{city}の区域の外のようです。お住まいの地区を一覧から選んでください。"
                )}),
            );
            if home.is_some() {
                r.messages[0] = json!({"type": "text", "text": format!(
                    "送っていただいた位置は{city}の区域の外のようです。登録中の地区は変えていません。"
                )});
                r.messages.truncate(1);
            }
            r
        }
    }
}

/// Reply to a postback; `None` when the data is not part of registration.
pub fn on_postback(districts: &Districts, data: &str) -> Option<Reply> {
    let pb = Postback {
        data: data.to_string(),
        ..Postback::default()
    };
    if pb.action().as_deref() != Some(ACTION) {
        return None;
    }
    let field = |k: &str| pb.field(k);
    let page = || field("page").and_then(|p| p.parse::<usize>().ok());
    let group_of = |g: Option<String>| g.filter(|g| !g.is_empty());
    Some(match field("step").as_deref().unwrap_or("start") {
        "start" => match page() {
            Some(page) if page > 0 => {
                let items: Vec<(String, String)> = districts
                    .groups()
                    .iter()
                    .map(|g| {
                        (
                            g.to_string(),
                            reg(&[("step", "group"), ("page", "0"), ("group", g)]),
                        )
                    })
                    .collect();
                Reply::say(vec![list_page(
                    "区を選んでください",
                    &items,
                    page,
                    |p| reg(&[("step", "start"), ("page", &p.to_string())]),
                )])
            }
            _ => start(districts),
        },
        "group" => {
            let page = page()?;
            let group = group_of(field("group"));
            if group.is_some() && !districts.groups().contains(&group.as_deref()?) {
                return Some(start(districts));
            }
            base_page(districts, group.as_deref(), page)
        }
        "base" => {
            let page = page()?;
            let group = group_of(field("group"));
            let base = field("base")?;
            district_page(districts, group.as_deref(), &base, page)
        }
        "set" => {
            let id = field("district")?;
            match districts.get(&id) {
                Some(d) => registered(d),
                // The list was built from an older districts file.
                None => {
                    let mut r = start(districts);
                    r.messages.insert(
                        0,
                        json!({"type": "text", "text": "選ばれた地区は現在の一覧にありません。お手数ですが、もう一度お選びください。"}),
                    );
                    r
                }
            }
        }
        "level3" => {
            let on = field("on")? == "1";
            Reply {
                messages: vec![text_with(
                    if on {
                        "警戒レベル3にあたる情報もお知らせします。止めるときは下のボタンを押してください。".into()
                    } else {
                        "警戒レベル3にあたる情報のお知らせを止めました。レベル4以上の避難の呼びかけは引き続きお知らせします。".into()
                    },
                    vec![if on {
                        qr(postback(
                            "レベル3を止める",
                            reg(&[("step", "level3"), ("on", "0")]),
                        ))
                    } else {
                        qr(postback(
                            "レベル3も受け取る",
                            reg(&[("step", "level3"), ("on", "1")]),
                        ))
                    }],
                )],
                effect: Effect::SetLevel3(on),
            }
        }
        _ => return None,
    })
}

/// Reply to a text message; `None` when the text is not part of registration (another feature may answer).
pub fn on_text(districts: &Districts, text: &str) -> Option<Reply> {
    let t = text.trim();
    if matches!(t, "地区登録" | "地区変更" | "登録" | "地区") {
        return Some(start(districts));
    }
    let wanted = name_key(t);
    if wanted.chars().count() < 2 {
        return None;
    }
    let exact = districts.named(t);
    let hits: Vec<&District> = if exact.is_empty() {
        districts
            .all()
            .iter()
            .filter(|d| name_key(&display_name(d)).contains(&wanted))
            .collect()
    } else {
        exact
    };
    match hits.len() {
        0 => None,
        1..=PER_PAGE => {
            let items: Vec<(String, String)> = hits
                .iter()
                .map(|d| (display_name(d), reg(&[("step", "set"), ("district", &d.id)])))
                .collect();
            Some(Reply::say(vec![list_page(
                &format!("「{t}」に当てはまる地区"),
                &items,
                0,
                |_| reg(&[("step", "start")]),
            )]))
        }
        n => Some(Reply::say(vec![text_with(
            format!("「{t}」に当てはまる地区が{n}件あります。もう少し詳しく（例：大通西3丁目）送るか、一覧から選んでください。"),
            vec![qr(postback("一覧から選ぶ", reg(&[("step", "start")]))), location_item()],
        )])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_drop_a_trailing_chome_number() {
        assert_eq!(base_name("大通西二十八丁目"), "大通西");
        assert_eq!(base_name("北一条西一丁目"), "北一条西");
        assert_eq!(base_name("宮の森1丁目"), "宮の森");
        assert_eq!(base_name("南郷通一丁目北"), "南郷通一丁目北");
        assert_eq!(base_name("丁目"), "丁目");
        assert_eq!(base_name("円山西町"), "円山西町");
    }

    #[test]
    fn long_labels_are_cut_to_twenty_characters() {
        let l = label("あいうえおかきくけこさしすせそたちつてとな");
        assert_eq!(l.chars().count(), 20);
        assert!(l.ends_with('…'));
    }
}
