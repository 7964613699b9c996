//! A LINE Flex message drawn as HTML, for the console's preview of exactly what residents will see.
//!
//! Covers the components Sonae's templates use (bubble with header/body/footer, box in vertical, horizontal
//! and baseline layouts, text, separator, spacer, button, image) with LINE's size keywords. The preview page
//! is a separate document with its own CSP allowing inline styles (colours come from the templates), shown
//! in a phone-sized frame; every text is HTML-escaped.

use serde_json::Value;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Only `#RRGGBB`/`#RRGGBBAA` colours reach a style attribute.
fn colour(v: &Value, key: &str) -> Option<String> {
    let c = v.get(key)?.as_str()?;
    let ok = (c.len() == 7 || c.len() == 9)
        && c.starts_with('#')
        && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| c.to_string())
}

fn size_px(s: Option<&str>) -> u32 {
    match s.unwrap_or("md") {
        "xxs" => 11,
        "xs" => 13,
        "sm" => 14,
        "md" => 16,
        "lg" => 19,
        "xl" => 22,
        "xxl" => 29,
        "3xl" => 35,
        "4xl" => 48,
        "5xl" => 74,
        _ => 16,
    }
}

fn spacing_px(s: Option<&str>) -> u32 {
    match s.unwrap_or("none") {
        "xs" => 2,
        "sm" => 4,
        "md" => 8,
        "lg" => 12,
        "xl" => 16,
        "xxl" => 20,
        other => other.trim_end_matches("px").parse().unwrap_or(0),
    }
}

fn component(v: &Value, horizontal_parent: bool, out: &mut String) {
    let flex = v.get("flex").and_then(Value::as_u64);
    let flex_style = match (horizontal_parent, flex) {
        (true, Some(f)) => format!("flex:{f} 1 0;"),
        (true, None) => "flex:1 1 0;".to_string(),
        _ => String::new(),
    };
    match v.get("type").and_then(Value::as_str) {
        Some("box") => {
            let layout = v
                .get("layout")
                .and_then(Value::as_str)
                .unwrap_or("vertical");
            let dir = if layout == "vertical" {
                "column"
            } else {
                "row"
            };
            let mut style = format!(
                "display:flex;flex-direction:{dir};gap:{}px;{flex_style}",
                spacing_px(v.get("spacing").and_then(Value::as_str))
            );
            if layout == "baseline" {
                style.push_str("align-items:baseline;");
            }
            if let Some(c) = colour(v, "backgroundColor") {
                style.push_str(&format!("background:{c};"));
            }
            if let Some(p) = v.get("paddingAll").and_then(Value::as_str) {
                style.push_str(&format!("padding:{}px;", spacing_px(Some(p))));
            }
            out.push_str(&format!("<div class=\"box\" style=\"{style}\">"));
            for c in v
                .get("contents")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                component(c, layout != "vertical", out);
            }
            out.push_str("</div>");
        }
        Some("text") => {
            let mut style = format!(
                "font-size:{}px;{flex_style}",
                size_px(v.get("size").and_then(Value::as_str))
            );
            if v.get("weight").and_then(Value::as_str) == Some("bold") {
                style.push_str("font-weight:bold;");
            }
            if let Some(c) = colour(v, "color") {
                style.push_str(&format!("color:{c};"));
            }
            if let Some(a) = v.get("align").and_then(Value::as_str) {
                let a = match a {
                    "end" => "right",
                    "center" => "center",
                    _ => "left",
                };
                style.push_str(&format!("text-align:{a};"));
            }
            if v.get("decoration").and_then(Value::as_str) == Some("underline") {
                style.push_str("text-decoration:underline;");
            }
            if v.get("wrap").and_then(Value::as_bool) != Some(true) {
                style.push_str("white-space:nowrap;overflow:hidden;text-overflow:ellipsis;");
            }
            let text = v.get("text").and_then(Value::as_str).unwrap_or("");
            out.push_str(&format!(
                "<p class=\"text\" style=\"{style}\">{}</p>",
                esc(text)
            ));
        }
        Some("separator") => out.push_str("<hr class=\"separator\">"),
        Some("spacer") => out.push_str("<div class=\"spacer\"></div>"),
        Some("button") => {
            let style_kind = v.get("style").and_then(Value::as_str).unwrap_or("link");
            let label = v
                .get("action")
                .and_then(|a| a.get("label"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let mut style = flex_style;
            match (style_kind, colour(v, "color")) {
                ("primary", c) => style.push_str(&format!(
                    "background:{};color:#fff;",
                    c.unwrap_or("#17c950".into())
                )),
                ("secondary", c) => style.push_str(&format!(
                    "background:{};color:#111;",
                    c.unwrap_or("#dcdfe5".into())
                )),
                (_, c) => style.push_str(&format!("color:{};", c.unwrap_or("#42659a".into()))),
            }
            out.push_str(&format!(
                "<div class=\"button {}\" style=\"{style}\">{}</div>",
                esc(style_kind),
                esc(label)
            ));
        }
        Some("image") => out.push_str("<div class=\"image\">[画像]</div>"),
        _ => {}
    }
}

/// The HTML of one Flex message (`{"type": "flex", "altText", "contents": bubble}`); other message types
/// are shown as their text.
pub fn message_html(m: &Value) -> String {
    let mut out = String::new();
    match m.get("type").and_then(Value::as_str) {
        Some("flex") => {
            let b = m.get("contents").unwrap_or(&Value::Null);
            out.push_str("<div class=\"bubble\">");
            for part in ["header", "hero", "body", "footer"] {
                if let Some(p) = b.get(part) {
                    out.push_str(&format!("<div class=\"{part}\">"));
                    component(p, false, &mut out);
                    out.push_str("</div>");
                }
            }
            out.push_str("</div>");
            if let Some(alt) = m.get("altText").and_then(Value::as_str) {
                out.push_str(&format!(
                    "<p class=\"alt\">通知に表示される文：{}</p>",
                    esc(alt)
                ));
            }
        }
        _ => {
            let text = m.get("text").and_then(Value::as_str).unwrap_or("");
            out.push_str(&format!("<div class=\"plain\">{}</div>", esc(text)));
        }
    }
    out
}

/// A whole preview document: the messages in a phone-sized chat column.
pub fn preview_document(title: &str, messages: &[Value]) -> String {
    let mut body = String::new();
    for m in messages {
        body.push_str(&message_html(m));
    }
    format!(
        "<!DOCTYPE html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head>\
         <body><div class=\"chat\">{body}</div></body></html>",
        esc(title)
    )
}

const CSS: &str = "body{margin:0;background:#8cabd8;font-family:'Noto Sans CJK JP','Hiragino Sans',sans-serif;}\
.chat{padding:12px;}\
.bubble{background:#fff;border-radius:16px;overflow:hidden;max-width:300px;box-shadow:0 1px 2px rgba(0,0,0,.2);}\
.body>.box,.footer>.box{padding:16px;}\
.text{margin:0;line-height:1.4;}\
.separator{border:0;border-top:1px solid #e0e0e0;margin:4px 0;width:100%;}\
.button{border-radius:8px;text-align:center;padding:8px;font-size:14px;}\
.button.link{background:transparent;}\
.alt{font-size:12px;color:#123;margin:8px 0 0;max-width:300px;}\
.plain{background:#fff;border-radius:16px;padding:10px 14px;max-width:300px;white-space:pre-wrap;}";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn texts_are_escaped_and_only_hex_colours_reach_a_style() {
        let m = json!({"type": "flex", "altText": "a<b", "contents": {"type": "bubble", "body": {
        "type": "box", "layout": "vertical", "contents": [
            {"type": "text", "text": "<script>x</script>", "color": "red;background:url(x)"},
            {"type": "text", "text": "ok", "color": "#AA00AA"}
        ]}}});
        let h = message_html(&m);
        assert!(h.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!h.contains("url(x)"));
        assert!(h.contains("color:#AA00AA"));
        assert!(h.contains("a&lt;b"));
    }
}
