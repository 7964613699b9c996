//! CAP 1.2 and Atom documents written with quick-xml (escaping is the writer's; element order is the schema's
//! `xs:sequence` order, which `tests/it/cap.rs` checks with `xmllint --schema` against the vendored XSD).

use std::io;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::area::CapArea;
use super::model::CapAlert;

pub const CAP_NS: &str = "urn:oasis:names:tc:emergency:cap:1.2";
const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

type W = Writer<Vec<u8>>;

fn text(w: &mut W, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn pair(w: &mut W, name: &str, (k, v): &(String, String)) -> io::Result<()> {
    w.create_element(name).write_inner_content(|w| {
        text(w, "valueName", k)?;
        text(w, "value", v)
    })?;
    Ok(())
}

fn polygon_text(ring: &[(f64, f64)]) -> String {
    ring.iter()
        .map(|(lat, lon)| format!("{lat:.5},{lon:.5}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CAP document of one alert.
pub fn alert(a: &CapAlert, areas: &[CapArea]) -> io::Result<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("alert")
        .with_attribute(("xmlns", CAP_NS))
        .write_inner_content(|w| {
            text(w, "identifier", &a.identifier)?;
            text(w, "sender", &a.sender)?;
            text(w, "sent", &a.sent)?;
            text(w, "status", a.status)?;
            text(w, "msgType", a.msg_type)?;
            if let Some(s) = &a.source {
                text(w, "source", s)?;
            }
            text(w, "scope", "Public")?;
            if let Some(n) = &a.note {
                text(w, "note", n)?;
            }
            if !a.references.is_empty() {
                text(w, "references", &a.references.join(" "))?;
            }
            if let Some(i) = &a.incidents {
                text(w, "incidents", i)?;
            }
            let info = &a.info;
            w.create_element("info").write_inner_content(|w| {
                text(w, "language", "ja-JP")?;
                for c in &info.categories {
                    text(w, "category", c)?;
                }
                text(w, "event", &info.event)?;
                for r in &info.response_types {
                    text(w, "responseType", r)?;
                }
                text(w, "urgency", info.urgency)?;
                text(w, "severity", info.severity)?;
                text(w, "certainty", info.certainty)?;
                for e in &info.event_codes {
                    pair(w, "eventCode", e)?;
                }
                if let Some(e) = &info.effective {
                    text(w, "effective", e)?;
                }
                text(w, "senderName", &info.sender_name)?;
                text(w, "headline", &info.headline)?;
                text(w, "description", &info.description)?;
                if let Some(i) = &info.instruction {
                    text(w, "instruction", i)?;
                }
                text(w, "web", &info.web)?;
                for p in &info.parameters {
                    pair(w, "parameter", p)?;
                }
                for area in areas {
                    w.create_element("area").write_inner_content(|w| {
                        text(w, "areaDesc", &area.desc)?;
                        for ring in &area.polygons {
                            text(w, "polygon", &polygon_text(ring))?;
                        }
                        for g in &area.geocodes {
                            pair(w, "geocode", g)?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

/// One entry of the Atom feed.
pub struct Entry {
    pub url: String,
    pub title: String,
    pub updated: String,
    pub summary: String,
    pub msg_type: &'static str,
}

/// The Atom feed listing CAP documents, newest first.
pub fn feed(
    self_url: &str,
    title: &str,
    author: &str,
    updated: &str,
    entries: &[Entry],
) -> io::Result<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("feed")
        .with_attribute(("xmlns", ATOM_NS))
        .with_attribute(("xml:lang", "ja"))
        .write_inner_content(|w| {
            text(w, "id", self_url)?;
            text(w, "title", title)?;
            text(w, "updated", updated)?;
            w.create_element("author")
                .write_inner_content(|w| text(w, "name", author))?;
            w.create_element("link")
                .with_attribute(("rel", "self"))
                .with_attribute(("type", "application/atom+xml"))
                .with_attribute(("href", self_url))
                .write_empty()?;
            for e in entries {
                w.create_element("entry").write_inner_content(|w| {
                    text(w, "id", &e.url)?;
                    text(w, "title", &e.title)?;
                    text(w, "updated", &e.updated)?;
                    w.create_element("category")
                        .with_attribute(("term", e.msg_type))
                        .write_empty()?;
                    w.create_element("link")
                        .with_attribute(("rel", "alternate"))
                        .with_attribute(("type", "application/cap+xml"))
                        .with_attribute(("href", e.url.as_str()))
                        .write_empty()?;
                    text(w, "summary", &e.summary)
                })?;
            }
            Ok(())
        })?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}
