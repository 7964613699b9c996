//! LINE's documented limits that the OpenAPI schemas leave out (research/line-api.md §11, §15).
//!
//! The stand-in enforces these after the spec check; the client can use the same constants to check a
//! message before sending it.

use serde_json::Value;

/// `altText` of Flex, template and imagemap messages: at most 1,500 characters.
pub const ALT_TEXT_MAX_CHARS: usize = 1500;
/// A text message: at most 5,000 characters, counted in UTF-16 code units.
pub const TEXT_MAX_UTF16: usize = 5000;
/// A Flex bubble's JSON: at most 30 KB (30 × 1,024 bytes of compact JSON).
pub const BUBBLE_MAX_BYTES: usize = 30 * 1024;
/// A Flex carousel's JSON: at most 50 KB.
pub const CAROUSEL_MAX_BYTES: usize = 50 * 1024;
/// A Flex carousel: at most 12 bubbles.
pub const CAROUSEL_MAX_BUBBLES: usize = 12;
/// Quick-reply buttons on one message.
pub const QUICK_REPLY_MAX_ITEMS: usize = 13;
/// Message objects per request.
pub const MESSAGES_MAX: usize = 5;
/// Recipients of one multicast request.
pub const MULTICAST_MAX_RECIPIENTS: usize = 500;
/// User ids in one bulk link/unlink request.
pub const BULK_MAX_USERS: usize = 500;
/// Request bodies over 2 MB get 413.
pub const BODY_MAX_BYTES: usize = 2 * 1024 * 1024;
/// Rich-menu image: JPEG or PNG, at most 1 MB.
pub const RICH_MENU_IMAGE_MAX_BYTES: usize = 1024 * 1024;
/// Rich-menu image width range in pixels.
pub const RICH_MENU_WIDTH: std::ops::RangeInclusive<u64> = 800..=2500;
/// Rich-menu image minimum height in pixels.
pub const RICH_MENU_MIN_HEIGHT: u64 = 250;
/// Rich-menu image minimum width / height.
pub const RICH_MENU_MIN_RATIO: f64 = 1.45;
/// Tappable areas on one rich menu.
pub const RICH_MENU_MAX_AREAS: usize = 20;
/// `chatBarText` of a rich menu.
pub const CHAT_BAR_TEXT_MAX_CHARS: usize = 14;

/// One documented-limit violation: (property path, message), as LINE's `details[]`.
pub type Detail = (String, String);

/// Checks every message of a request; `path` is the array's name (`messages`).
pub fn check_messages(messages: &[Value], out: &mut Vec<Detail>) {
    for (i, m) in messages.iter().enumerate() {
        check_message(m, &format!("messages[{i}]"), out);
    }
}

fn check_message(m: &Value, path: &str, out: &mut Vec<Detail>) {
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "text" {
        if let Some(t) = m.get("text").and_then(Value::as_str) {
            let n = t.encode_utf16().count();
            if n > TEXT_MAX_UTF16 {
                out.push((
                    format!("{path}.text"),
                    format!("Length must be between 0 and {TEXT_MAX_UTF16}"),
                ));
            }
        }
    }
    if matches!(kind, "flex" | "template" | "imagemap") {
        match m.get("altText").and_then(Value::as_str) {
            None => out.push((format!("{path}.altText"), "May not be empty".into())),
            Some(a) if a.is_empty() || a.chars().count() > ALT_TEXT_MAX_CHARS => out.push((
                format!("{path}.altText"),
                format!("Length must be between 1 and {ALT_TEXT_MAX_CHARS}"),
            )),
            Some(_) => {}
        }
    }
    if kind == "flex" {
        if let Some(c) = m.get("contents") {
            check_flex_container(c, &format!("{path}.contents"), out);
        }
    }
    if let Some(items) = m.pointer("/quickReply/items").and_then(Value::as_array) {
        if items.len() > QUICK_REPLY_MAX_ITEMS {
            out.push((
                format!("{path}.quickReply.items"),
                format!("Size must be between 0 and {QUICK_REPLY_MAX_ITEMS}"),
            ));
        }
    }
}

fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

fn check_flex_container(c: &Value, path: &str, out: &mut Vec<Detail>) {
    match c.get("type").and_then(Value::as_str) {
        Some("bubble") => {
            let n = json_len(c);
            if n > BUBBLE_MAX_BYTES {
                out.push((
                    path.to_string(),
                    format!("A bubble must be at most {BUBBLE_MAX_BYTES} bytes of JSON, is {n}"),
                ));
            }
        }
        Some("carousel") => {
            let bubbles = c.get("contents").and_then(Value::as_array);
            let count = bubbles.map_or(0, Vec::len);
            if count == 0 || count > CAROUSEL_MAX_BUBBLES {
                out.push((
                    format!("{path}.contents"),
                    format!("Size must be between 1 and {CAROUSEL_MAX_BUBBLES}"),
                ));
            }
            let n = json_len(c);
            if n > CAROUSEL_MAX_BYTES {
                out.push((
                    path.to_string(),
                    format!(
                        "A carousel must be at most {CAROUSEL_MAX_BYTES} bytes of JSON, is {n}"
                    ),
                ));
            }
            for (i, b) in bubbles.into_iter().flatten().enumerate() {
                check_flex_container(b, &format!("{path}.contents[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Rich-menu object rules beyond the spec (which marks nothing required on `RichMenuRequest`).
pub fn check_rich_menu(m: &Value, out: &mut Vec<Detail>) {
    for key in ["size", "selected", "name", "chatBarText", "areas"] {
        if m.get(key).is_none() {
            out.push((key.to_string(), "May not be null".into()));
        }
    }
    let w = m
        .pointer("/size/width")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let h = m
        .pointer("/size/height")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if m.get("size").is_some() {
        if let Some(msg) = image_size_problem(w, h) {
            out.push(("size".into(), msg));
        }
    }
    if let Some(t) = m.get("chatBarText").and_then(Value::as_str) {
        let n = t.chars().count();
        if n == 0 || n > CHAT_BAR_TEXT_MAX_CHARS {
            out.push((
                "chatBarText".into(),
                format!("Length must be between 1 and {CHAT_BAR_TEXT_MAX_CHARS}"),
            ));
        }
    }
    if let Some(areas) = m.get("areas").and_then(Value::as_array) {
        if areas.len() > RICH_MENU_MAX_AREAS {
            out.push((
                "areas".into(),
                format!("Size must be between 0 and {RICH_MENU_MAX_AREAS}"),
            ));
        }
        for (i, a) in areas.iter().enumerate() {
            let b = |k: &str| a.pointer(&format!("/bounds/{k}")).and_then(Value::as_u64);
            match (b("x"), b("y"), b("width"), b("height")) {
                (Some(x), Some(y), Some(bw), Some(bh)) => {
                    if x + bw > w || y + bh > h {
                        out.push((
                            format!("areas[{i}].bounds"),
                            "The area is outside the rich menu".into(),
                        ));
                    }
                }
                _ => out.push((format!("areas[{i}].bounds"), "May not be null".into())),
            }
            let action = a.get("action");
            if action.is_none() {
                out.push((format!("areas[{i}].action"), "May not be null".into()));
            }
            if action.and_then(|a| a.get("type")).and_then(Value::as_str) == Some("richmenuswitch")
            {
                for key in ["richMenuAliasId", "data"] {
                    if action.and_then(|a| a.get(key)).is_none() {
                        out.push((format!("areas[{i}].action.{key}"), "May not be null".into()));
                    }
                }
            }
        }
    }
}

/// The image (and menu) size rule: width 800–2,500 px, height ≥ 250 px, width/height ≥ 1.45.
pub fn image_size_problem(w: u64, h: u64) -> Option<String> {
    if !RICH_MENU_WIDTH.contains(&w)
        || h < RICH_MENU_MIN_HEIGHT
        || (w as f64) / (h as f64) < RICH_MENU_MIN_RATIO
    {
        Some(format!(
            "The image size is not allowed for richmenu: {w}x{h} (width 800-2500, height >= 250, width/height >= 1.45)"
        ))
    } else {
        None
    }
}

/// Reads the pixel size of a PNG (IHDR) or a baseline/progressive JPEG (SOF marker).
pub fn image_dimensions(content_type: &str, bytes: &[u8]) -> Option<(u64, u64)> {
    match content_type {
        "image/png" => {
            if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR"
            {
                return None;
            }
            let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
            let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
            Some((w as u64, h as u64))
        }
        "image/jpeg" => {
            if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
                return None;
            }
            let mut i = 2;
            while i + 9 < bytes.len() {
                if bytes[i] != 0xFF {
                    return None;
                }
                let marker = bytes[i + 1];
                if marker == 0xFF {
                    i += 1;
                    continue;
                }
                let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
                let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
                if is_sof {
                    let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]);
                    let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]);
                    return Some((w as u64, h as u64));
                }
                i += 2 + len;
            }
            None
        }
        _ => None,
    }
}

/// A minimal valid PNG header of the given size (IHDR only): enough for the size rules, used by tests
/// and the demo to make rich-menu images without an image library.
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend_from_slice(&13u32.to_be_bytes());
    v.extend_from_slice(b"IHDR");
    v.extend_from_slice(&width.to_be_bytes());
    v.extend_from_slice(&height.to_be_bytes());
    v.extend_from_slice(&[8, 2, 0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0, 0]); // CRC (not checked)
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn details(msgs: Value) -> Vec<Detail> {
        let mut out = Vec::new();
        check_messages(msgs.as_array().unwrap(), &mut out);
        out
    }

    #[test]
    fn alt_text_of_1500_passes_and_1501_fails() {
        let bubble = json!({"type": "bubble"});
        let ok = json!([{"type": "flex", "altText": "あ".repeat(1500), "contents": bubble}]);
        assert!(details(ok).is_empty());
        let bad = json!([{"type": "flex", "altText": "あ".repeat(1501), "contents": bubble}]);
        assert_eq!(details(bad)[0].0, "messages[0].altText");
    }

    #[test]
    fn text_length_counts_utf16_units() {
        // U+1F300 is two UTF-16 units: 2,501 of them are 5,002 units.
        let bad = json!([{"type": "text", "text": "🌀".repeat(2501)}]);
        assert_eq!(details(bad)[0].0, "messages[0].text");
        let ok = json!([{"type": "text", "text": "🌀".repeat(2500)}]);
        assert!(details(ok).is_empty());
    }

    #[test]
    fn a_carousel_of_13_bubbles_and_an_oversized_bubble_are_rejected() {
        let b = json!({"type": "bubble"});
        let bad = json!([{"type": "flex", "altText": "a", "contents": {"type": "carousel", "contents": vec![b.clone(); 13]}}]);
        assert!(details(bad)
            .iter()
            .any(|d| d.0 == "messages[0].contents.contents"));
        let big = json!({"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "x".repeat(BUBBLE_MAX_BYTES)}]}});
        let bad = json!([{"type": "flex", "altText": "a", "contents": big}]);
        assert!(details(bad).iter().any(|d| d.0 == "messages[0].contents"));
    }

    #[test]
    fn image_rules_follow_the_documented_sizes() {
        assert!(image_size_problem(2500, 1686).is_none());
        assert!(image_size_problem(800, 250).is_none());
        assert!(image_size_problem(799, 250).is_some());
        assert!(image_size_problem(2501, 843).is_some());
        assert!(image_size_problem(1200, 900).is_some(), "ratio 1.33 < 1.45");
        assert!(image_size_problem(1000, 249).is_some());
    }

    #[test]
    fn png_and_jpeg_dimensions_are_read_from_their_headers() {
        assert_eq!(
            image_dimensions("image/png", &png_header(2500, 843)),
            Some((2500, 843))
        );
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x03,
            0x4B, 0x09, 0xC4, 0x03, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(image_dimensions("image/jpeg", &jpeg), Some((2500, 843)));
        assert_eq!(image_dimensions("image/jpeg", &png_header(1, 1)), None);
    }
}
