//! A local JMA feed replaying the recorded 札幌市 heavy-rain telegrams, moved to yesterday so the daemon's
//! age check accepts them. Shared by the crash test and `benches/fanout.rs` (included there with `#[path]`),
//! so it uses nothing from the test crate.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The telegrams the feed lists: a 札幌市 大雨警報 sequence that puts the city in disaster mode.
pub const TELEGRAMS: &[&str] = &["01_VPWW55.xml", "02_VPWW55.xml", "03_VPWW56.xml"];

/// A JMA-style Atom feed (`/extra.xml` and its long twin `/extra_l.xml`) listing [`TELEGRAMS`], and the
/// telegrams themselves under `/t/`.
pub struct FeedServer {
    pub addr: SocketAddr,
    revealed: Arc<AtomicBool>,
    first_served: Arc<Mutex<Option<Instant>>>,
}

impl FeedServer {
    /// A feed that lists the telegrams from the start.
    pub async fn start(telegrams: &'static [&'static str]) -> FeedServer {
        let server = FeedServer::start_hidden(telegrams).await;
        server.reveal();
        server
    }

    /// A feed that lists nothing until [`FeedServer::reveal`] (a daemon already running sees them on its next
    /// poll, as with a new JMA telegram).
    pub async fn start_hidden(telegrams: &'static [&'static str]) -> FeedServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let published = chrono::Utc::now();
        let feed = Arc::new(atom(addr, telegrams, published));
        let empty = Arc::new(atom(addr, &[], published));
        let revealed = Arc::new(AtomicBool::new(false));
        let first_served = Arc::new(Mutex::new(None));
        let (r, f) = (revealed.clone(), first_served.clone());
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let (feed, empty, r, f) = (feed.clone(), empty.clone(), r.clone(), f.clone());
            async move {
                let listed = r.load(Ordering::SeqCst);
                if listed && matches!(uri.path(), "/extra.xml" | "/extra_l.xml") {
                    f.lock().unwrap().get_or_insert_with(Instant::now);
                }
                serve(uri, if listed { &feed } else { &empty }, telegrams)
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        FeedServer {
            addr,
            revealed,
            first_served,
        }
    }

    /// Lists the telegrams from now on.
    pub fn reveal(&self) {
        self.revealed.store(true, Ordering::SeqCst);
    }

    /// When a poll first received the feed listing the telegrams.
    pub fn first_served(&self) -> Option<Instant> {
        *self.first_served.lock().unwrap()
    }

    pub fn feed_url(&self) -> String {
        format!("http://{}/extra.xml", self.addr)
    }
}

fn atom(addr: SocketAddr, telegrams: &[&str], at: chrono::DateTime<chrono::Utc>) -> String {
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" lang=\"ja\">\n\
         <title>高頻度（随時）</title><subtitle>JMAXML publishing feed</subtitle>\n\
         <updated>{at}</updated><id>http://{addr}/extra.xml</id>\n<link rel=\"self\" href=\"http://{addr}/extra.xml\"/>\n"
    );
    for t in telegrams {
        let u = format!("http://{addr}/t/{t}");
        xml.push_str(&format!(
            "<entry><title>気象警報・注意報（Ｈ２７）</title><id>{u}</id><updated>{at}</updated>\
             <author><name>札幌管区気象台</name></author><link type=\"application/xml\" href=\"{u}\"/>\
             <content type=\"text\">【石狩・空知・後志地方気象警報・注意報】</content></entry>\n"
        ));
    }
    xml.push_str("</feed>\n");
    xml
}

fn serve(uri: Uri, feed: &str, telegrams: &[&str]) -> Response {
    let path = uri.path();
    if path == "/extra.xml" || path == "/extra_l.xml" {
        return ([("content-type", "application/atom+xml")], feed.to_string()).into_response();
    }
    if let Some(name) = path.strip_prefix("/t/") {
        if telegrams.contains(&name) {
            let file = repo(&format!("feeds/demo-heavy-rain/telegrams/{name}"));
            if let Ok(body) = std::fs::read_to_string(file) {
                return ([("content-type", "application/xml")], recent(&body)).into_response();
            }
        }
    }
    StatusCode::NOT_FOUND.into_response()
}

/// The recorded scenario is dated 2026-09-12 (JST); the daemon ignores reports older than a week, so the served
/// copy is moved to yesterday (JST), whole days only, keeping every time of day and the 09-11 → 09-12 order.
fn recent(xml: &str) -> String {
    let jst = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    let yesterday = chrono::Utc::now().with_timezone(&jst).date_naive() - chrono::Days::new(1);
    let base = chrono::NaiveDate::from_ymd_opt(2026, 9, 12).unwrap();
    let shift = yesterday - base;
    let mut out = xml.to_string();
    for day in ["2026-09-11", "2026-09-12"] {
        let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap() + shift;
        out = out.replace(day, &d.format("%Y-%m-%d").to_string());
    }
    out
}
