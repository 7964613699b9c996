//! JMA's Atom feeds → entries. Pure: no I/O.
//!
//! A feed is accepted only if it is well-formed **and complete** (the root `<feed>` is closed): a truncated
//! download must not be mistaken for a short feed, or the entries cut off would look "gone" and the next
//! complete poll would still have them — harmless — but a truncated *entry* could yield a wrong URL. So a
//! truncated feed is an error and the poll is retried.

use chrono::{DateTime, FixedOffset};
use quick_xml::events::Event;
use quick_xml::Reader;

/// One `<entry>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `<id>`: the telegram URL.
    pub id: String,
    pub title: String,
    /// `<updated>` (UTC in JMA feeds; = Control/DateTime).
    pub updated: Option<DateTime<FixedOffset>>,
    /// `<link href>`; falls back to `id` when there is no link.
    pub link: String,
    /// `<author><name>`: the publishing office.
    pub author: String,
}

impl Entry {
    /// The URL to fetch: the link, or the id when the link is missing.
    pub fn url(&self) -> &str {
        if self.link.is_empty() {
            &self.id
        } else {
            &self.link
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Feed {
    pub id: String,
    pub title: String,
    pub updated: Option<DateTime<FixedOffset>>,
    pub entries: Vec<Entry>,
}

impl Feed {
    /// The oldest entry time, used to detect a gap longer than the feed's window.
    pub fn oldest_entry(&self) -> Option<DateTime<FixedOffset>> {
        self.entries.iter().filter_map(|e| e.updated).min()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AtomError {
    #[error("not well-formed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    #[error("the document ends before </feed> (truncated download?)")]
    Truncated,
    #[error("the root element is <{0}>, not an Atom <feed>")]
    NotAFeed(String),
    #[error("an entry has neither <id> nor <link href>")]
    EntryWithoutUrl,
}

fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s.trim()).ok()
}

/// Parses an Atom feed.
pub fn parse(bytes: &[u8]) -> Result<Feed, AtomError> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut feed = Feed::default();
    let mut entry: Option<Entry> = None;
    let mut closed = false;
    let mut text = String::new();
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| AtomError::Malformed {
                position: reader.buffer_position(),
                message: e.to_string(),
            })?;
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() && name != "feed" {
                    return Err(AtomError::NotAFeed(name));
                }
                if path.len() == 1 && name == "entry" {
                    entry = Some(Entry {
                        id: String::new(),
                        title: String::new(),
                        updated: None,
                        link: String::new(),
                        author: String::new(),
                    });
                }
                if name == "link" {
                    take_link(&e, entry.as_mut());
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    return Err(AtomError::NotAFeed(name));
                }
                if name == "link" {
                    take_link(&e, entry.as_mut());
                }
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| AtomError::Malformed {
                    position: reader.buffer_position(),
                    message: e.to_string(),
                })?;
                text.push_str(&s);
            }
            Event::CData(c) => text.push_str(&String::from_utf8_lossy(&c)),
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err(AtomError::Malformed {
                        position: reader.buffer_position(),
                        message: "unexpected end tag".into(),
                    });
                };
                let parent = path.last().map(String::as_str);
                match (&mut entry, parent, name.as_str()) {
                    (Some(en), Some("entry"), "id") => en.id = text.trim().to_string(),
                    (Some(en), Some("entry"), "title") => en.title = text.trim().to_string(),
                    (Some(en), Some("entry"), "updated") => en.updated = parse_time(&text),
                    (Some(en), Some("author"), "name") => en.author = text.trim().to_string(),
                    (_, Some("feed"), "id") => feed.id = text.trim().to_string(),
                    (_, Some("feed"), "title") => feed.title = text.trim().to_string(),
                    (_, Some("feed"), "updated") => feed.updated = parse_time(&text),
                    (Some(_), Some("feed"), "entry") => {
                        let en = entry.take().ok_or(AtomError::EntryWithoutUrl)?;
                        if en.id.is_empty() && en.link.is_empty() {
                            return Err(AtomError::EntryWithoutUrl);
                        }
                        feed.entries.push(en);
                    }
                    (_, None, "feed") => closed = true,
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !closed {
        return Err(AtomError::Truncated);
    }
    Ok(feed)
}

fn take_link(e: &quick_xml::events::BytesStart<'_>, entry: Option<&mut Entry>) {
    let Some(entry) = entry else { return };
    let mut href = None;
    let mut rel = None;
    for a in e.attributes().flatten() {
        let v = a
            .unescape_value()
            .map(|v| v.into_owned())
            .unwrap_or_default();
        match a.key.local_name().as_ref() {
            b"href" => href = Some(v),
            b"rel" => rel = Some(v),
            _ => {}
        }
    }
    // Entries carry one link (no rel, or rel="alternate"); ignore any other relation.
    if matches!(rel.as_deref(), None | Some("alternate")) {
        if let Some(h) = href {
            entry.link = h.trim().to_string();
        }
    }
}

/// The data-type code in a telegram URL's file name (`20260112065719_0_VPWW54_350000.xml` → `VPWW54`;
/// the official sample names `15_12_01_161130_VPWW54.xml` work too). Research notes §1: the URL code is the
/// most robust discriminator.
pub fn data_type_of_url(url: &str) -> Option<String> {
    let file = url.rsplit('/').next()?;
    let stem = file.strip_suffix(".xml").unwrap_or(file);
    stem.split('_')
        .rev()
        .find(|tok| {
            let b = tok.as_bytes();
            b.len() == 6
                && b[..4].iter().all(|c| c.is_ascii_uppercase())
                && b[4..].iter().all(|c| c.is_ascii_alphanumeric())
        })
        .map(str::to_string)
}

/// The long-feed twin of a short feed URL: `…/extra.xml` → `…/extra_l.xml`. `None` when the URL does not end in
/// `.xml` or already names a long feed.
pub fn long_feed_url(short: &str) -> Option<String> {
    let (base, query) = match short.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (short, None),
    };
    let stem = base.strip_suffix(".xml")?;
    if stem.ends_with("_l") {
        return None;
    }
    Some(match query {
        Some(q) => format!("{stem}_l.xml?{q}"),
        None => format!("{stem}_l.xml"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/jma/samples/feeds/extra.xml"
    );

    #[test]
    fn the_shared_example_feed_parses_with_every_entry_field() {
        let bytes = std::fs::read(SAMPLE).unwrap();
        let feed = parse(&bytes).unwrap();
        assert_eq!(feed.title, "高頻度（随時）");
        assert!(feed.id.ends_with("extra.xml#short_1710767045"));
        assert!(feed.entries.len() >= 3);
        let e = &feed.entries[0];
        assert_eq!(e.title, "気象警報・注意報（Ｈ２７）");
        assert_eq!(
            e.url(),
            "https://mican3.github.io/jmaxml_test/vpww54/15_11_01_150916_VPWW54.xml"
        );
        assert_eq!(e.id, e.link);
        assert_eq!(e.author, "下関地方気象台");
        assert_eq!(e.updated.unwrap().to_rfc3339(), "2015-06-22T09:00:00+00:00");
        // The feed-level <link rel="self"> etc. never leak into entries.
        assert_eq!(feed.entries.len(), 10);
        assert!(feed
            .entries
            .iter()
            .all(|e| e.link.contains("mican3.github.io/jmaxml_test/")));
    }

    #[test]
    fn every_prefix_of_the_example_feed_is_an_error_not_a_shorter_feed() {
        let bytes = std::fs::read(SAMPLE).unwrap();
        let full = parse(&bytes).unwrap();
        let end = bytes.windows(7).rposition(|w| w == b"</feed>").unwrap();
        for cut in (0..end).step_by(97) {
            match parse(&bytes[..cut]) {
                Err(_) => {}
                Ok(f) => panic!(
                    "prefix of {cut} bytes parsed as a feed with {} of {} entries",
                    f.entries.len(),
                    full.entries.len()
                ),
            }
        }
    }

    #[test]
    fn a_non_feed_document_is_refused() {
        assert_eq!(
            parse(b"<html><body>503</body></html>"),
            Err(AtomError::NotAFeed("html".into()))
        );
        assert!(matches!(
            parse(b"<feed><entry></feed>"),
            Err(AtomError::Malformed { .. })
        ));
    }

    #[test]
    fn data_type_codes_come_from_the_url_file_name() {
        assert_eq!(
            data_type_of_url(
                "https://www.data.jma.go.jp/developer/xml/data/20260112065719_0_VPWW54_350000.xml"
            )
            .as_deref(),
            Some("VPWW54")
        );
        assert_eq!(
            data_type_of_url("http://x/15_12_01_161130_VPWW53.xml").as_deref(),
            Some("VPWW53")
        );
        assert_eq!(
            data_type_of_url("http://x/16_04_01_220728_VXKOii.xml").as_deref(),
            Some("VXKOii")
        );
        assert_eq!(
            data_type_of_url("http://x/20231009064018_06274659_VTSE41.xml").as_deref(),
            Some("VTSE41")
        );
        assert_eq!(data_type_of_url("http://x/index.html"), None);
    }

    #[test]
    fn long_feed_urls_are_derived_from_short_ones() {
        assert_eq!(
            long_feed_url("https://www.data.jma.go.jp/developer/xml/feed/regular.xml").as_deref(),
            Some("https://www.data.jma.go.jp/developer/xml/feed/regular_l.xml")
        );
        assert_eq!(
            long_feed_url("http://127.0.0.1:9/feed/extra.xml?x=1").as_deref(),
            Some("http://127.0.0.1:9/feed/extra_l.xml?x=1")
        );
        assert_eq!(long_feed_url("http://h/feed/extra_l.xml"), None);
        assert_eq!(long_feed_url("http://h/feed/atom"), None);
    }
}
