//! LINE's sending rules, checked on our side before a request leaves the daemon.
//!
//! # Rate limits
//! LINE limits each channel per endpoint with a token bucket (ref `#rate-limits`; tips article 2026-09-10:
//! "a 60/h endpoint refills one request per minute; right after a 429 the bucket is empty"). We keep one
//! [`TokenBucket`] per [`RateClass`] with the same capacity and refill rate, so in normal operation LINE never
//! has to answer 429. Endpoints LINE limits separately at 2,000/s but that we group into one class
//! ([`RateClass::RichMenu`]) share one bucket: stricter than LINE, never looser. Every request passes through
//! exactly one bucket: the client's [`RateLimiter`] holds them all except multicast's, which the outbox's
//! dispatcher holds (`delivery::sender`; it is the only sender of multicasts and paces them at
//! `delivery.multicast_per_sec`, at most LINE's 200/s).
//!
//! | class | LINE's limit | bucket |
//! | --- | --- | --- |
//! | push, reply, profile, content | 2,000/s each | 2,000 tokens, 2,000/s |
//! | multicast | 200/s | in the outbox: `delivery.multicast_per_sec` tokens and per second (≤ 200) |
//! | broadcast | 60/h | 60 tokens, 1/min |
//! | rich menu create, delete, alias delete | 100/h each | 100 tokens, 1 per 36 s |
//! | rich-menu batch control | 3/h | 3 tokens, 1 per 20 min (the 3/h budget is also tracked in SQLite, see `richmenu`) |
//! | rich-menu batch progress | 100/h | 100 tokens, 1 per 36 s |
//!
//! The buckets are pure ([`TokenBucket::take`] is given `now`); [`RateLimiter`] wraps them for async code
//! and sleeps with `tokio::time` so tests can pause time.
//!
//! # Message limits
//! [`check_messages`] applies the documented limits the OpenAPI schemas omit: 1–5 messages per request,
//! text ≤ 5,000 UTF-16 units, `altText` ≤ 1,500 characters, a bubble's JSON ≤ 30 KB, a carousel ≤ 12
//! bubbles and ≤ 50 KB, quick reply ≤ 13 items. "KB" is taken as 1,000 bytes, the stricter reading.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::line::message::{FlexCarousel, FlexContainer, Message};

/// A group of endpoints sharing one LINE rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateClass {
    Push,
    Reply,
    Multicast,
    Broadcast,
    Profile,
    Content,
    RichMenuCreate,
    RichMenuDelete,
    AliasDelete,
    /// Every other rich-menu endpoint (validate, upload, list, get, default, link, unlink, bulk, alias).
    RichMenu,
    BatchControl,
    BatchProgress,
}

impl RateClass {
    pub const ALL: [RateClass; 12] = [
        RateClass::Push,
        RateClass::Reply,
        RateClass::Multicast,
        RateClass::Broadcast,
        RateClass::Profile,
        RateClass::Content,
        RateClass::RichMenuCreate,
        RateClass::RichMenuDelete,
        RateClass::AliasDelete,
        RateClass::RichMenu,
        RateClass::BatchControl,
        RateClass::BatchProgress,
    ];

    /// Whether the client's [`RateLimiter`] paces this class. Multicast is paced by the outbox's
    /// dispatcher instead, so a multicast passes one bucket, not two.
    pub fn paced_by_client(self) -> bool {
        self != RateClass::Multicast
    }

    /// `(capacity, refill period per token)` at LINE's documented limit.
    pub fn limit(self) -> (u32, Duration) {
        const HOUR: u64 = 3600;
        match self {
            RateClass::Push
            | RateClass::Reply
            | RateClass::Profile
            | RateClass::Content
            | RateClass::RichMenu => (2000, Duration::from_micros(500)),
            RateClass::Multicast => (200, Duration::from_millis(5)),
            RateClass::Broadcast => (60, Duration::from_secs(HOUR / 60)),
            RateClass::RichMenuCreate
            | RateClass::RichMenuDelete
            | RateClass::AliasDelete
            | RateClass::BatchProgress => (100, Duration::from_secs(HOUR / 100)),
            RateClass::BatchControl => (3, Duration::from_secs(HOUR / 3)),
        }
    }

    /// Label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::Push => "push",
            RateClass::Reply => "reply",
            RateClass::Multicast => "multicast",
            RateClass::Broadcast => "broadcast",
            RateClass::Profile => "profile",
            RateClass::Content => "content",
            RateClass::RichMenuCreate => "richmenu_create",
            RateClass::RichMenuDelete => "richmenu_delete",
            RateClass::AliasDelete => "alias_delete",
            RateClass::RichMenu => "richmenu",
            RateClass::BatchControl => "batch_control",
            RateClass::BatchProgress => "batch_progress",
        }
    }
}

/// A token bucket, the one type for every bucket Sonae keeps (the client's per class, the outbox's for
/// multicast). Pure: every method takes `now` (tokio's clock, so tests pause time).
#[derive(Clone, Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_token: Duration,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u32, per_token: Duration, now: Instant) -> Self {
        TokenBucket {
            capacity: capacity as f64,
            per_token,
            tokens: capacity as f64,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() / self.per_token.as_secs_f64()).min(self.capacity);
        self.last = now;
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.per_token.mul_f64(1.0 - self.tokens))
        }
    }

    /// Empties the bucket (LINE's bucket is empty right after it answered 429).
    pub fn drain(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = 0.0;
    }

    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }
}

/// The buckets of every [`RateClass`] the client paces ([`RateClass::paced_by_client`]).
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<RateClass, TokenBucket>>,
}

/// Waiting for a token would take longer than the caller allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("LINE rate limit for {class:?}: next request possible in {retry_after:?}")]
pub struct WouldExceed {
    pub class: RateClass,
    pub retry_after: Duration,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimiter {
    /// Buckets at LINE's documented limits, all full.
    pub fn new() -> Self {
        let now = Instant::now();
        let buckets = RateClass::ALL
            .iter()
            .filter(|c| c.paced_by_client())
            .map(|&c| {
                let (cap, per) = c.limit();
                (c, TokenBucket::new(cap, per, now))
            })
            .collect();
        RateLimiter {
            buckets: Mutex::new(buckets),
        }
    }

    fn try_take(&self, class: RateClass) -> Result<(), Duration> {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match b.get_mut(&class) {
            Some(bucket) => bucket.take(Instant::now()),
            None => Ok(()),
        }
    }

    /// Waits for a token of `class`, at most `max_wait`. A class the client does not pace (multicast)
    /// passes at once.
    pub async fn acquire(&self, class: RateClass, max_wait: Duration) -> Result<(), WouldExceed> {
        let start = Instant::now();
        loop {
            match self.try_take(class) {
                Ok(()) => return Ok(()),
                Err(wait) => {
                    if start.elapsed() + wait > max_wait {
                        return Err(WouldExceed {
                            class,
                            retry_after: wait,
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Empties a bucket after LINE answered 429 for it (the outbox empties its multicast bucket itself).
    pub fn drain(&self, class: RateClass) {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = b.get_mut(&class) {
            bucket.drain(Instant::now());
        }
    }
}

// ---------------------------------------------------------------- message limits

pub const MAX_MESSAGES_PER_REQUEST: usize = 5;
pub const MAX_MULTICAST_RECIPIENTS: usize = 500;
pub const MAX_BULK_LINK_USERS: usize = 500;
pub const MAX_ALT_TEXT_CHARS: usize = 1500;
pub const MAX_TEXT_UTF16: usize = 5000;
pub const MAX_BUBBLE_BYTES: usize = 30_000;
pub const MAX_CAROUSEL_BYTES: usize = 50_000;
pub const MAX_CAROUSEL_BUBBLES: usize = 12;
pub const MAX_QUICK_REPLY_ITEMS: usize = 13;

/// A request that LINE would reject, caught before sending.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("a request carries 1 to 5 messages; this one has {0}")]
    MessageCount(usize),
    #[error("a multicast goes to 1 to 500 users; this one has {0}")]
    Recipients(usize),
    #[error("messages[{index}]: text is {units} UTF-16 units; the limit is 5,000")]
    TextTooLong { index: usize, units: usize },
    #[error("messages[{index}]: text is empty")]
    EmptyText { index: usize },
    #[error("messages[{index}]: altText is {chars} characters; the limit is 1,500")]
    AltTextTooLong { index: usize, chars: usize },
    #[error("messages[{index}]: altText is empty")]
    AltTextEmpty { index: usize },
    #[error("messages[{index}]: a Flex bubble is {bytes} bytes of JSON; the limit is 30 KB")]
    BubbleTooLarge { index: usize, bytes: usize },
    #[error("messages[{index}]: a Flex carousel has {bubbles} bubbles; the limit is 12")]
    TooManyBubbles { index: usize, bubbles: usize },
    #[error("messages[{index}]: a Flex carousel is {bytes} bytes of JSON; the limit is 50 KB")]
    CarouselTooLarge { index: usize, bytes: usize },
    #[error("messages[{index}]: quick reply has {items} items; the limit is 13")]
    QuickReplyTooLong { index: usize, items: usize },
    #[error("a bulk link or unlink goes to 1 to 500 users; this one has {0}")]
    BulkUsers(usize),
}

fn json_len<T: serde::Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

/// Checks the documented message limits (see the module doc) for one request's messages.
pub fn check_messages(messages: &[Message]) -> Result<(), LimitError> {
    if messages.is_empty() || messages.len() > MAX_MESSAGES_PER_REQUEST {
        return Err(LimitError::MessageCount(messages.len()));
    }
    for (index, m) in messages.iter().enumerate() {
        match m {
            Message::Text(t) => {
                let units = t.text.encode_utf16().count();
                if units == 0 {
                    return Err(LimitError::EmptyText { index });
                }
                if units > MAX_TEXT_UTF16 {
                    return Err(LimitError::TextTooLong { index, units });
                }
            }
            Message::Flex(f) => {
                check_alt_text(index, &f.alt_text)?;
                match &f.contents {
                    FlexContainer::Bubble(b) => {
                        let bytes = json_len(b);
                        if bytes > MAX_BUBBLE_BYTES {
                            return Err(LimitError::BubbleTooLarge { index, bytes });
                        }
                    }
                    FlexContainer::Carousel(FlexCarousel { contents }) => {
                        if contents.len() > MAX_CAROUSEL_BUBBLES || contents.is_empty() {
                            return Err(LimitError::TooManyBubbles {
                                index,
                                bubbles: contents.len(),
                            });
                        }
                        for b in contents {
                            let bytes = json_len(b);
                            if bytes > MAX_BUBBLE_BYTES {
                                return Err(LimitError::BubbleTooLarge { index, bytes });
                            }
                        }
                        let bytes = json_len(&f.contents);
                        if bytes > MAX_CAROUSEL_BYTES {
                            return Err(LimitError::CarouselTooLarge { index, bytes });
                        }
                    }
                }
            }
            Message::Template(t) => check_alt_text(index, &t.alt_text)?,
            Message::Image(_) | Message::Location(_) => {}
        }
        if let Some(q) = &m.common().quick_reply {
            if q.items.len() > MAX_QUICK_REPLY_ITEMS {
                return Err(LimitError::QuickReplyTooLong {
                    index,
                    items: q.items.len(),
                });
            }
        }
    }
    Ok(())
}

fn check_alt_text(index: usize, alt: &str) -> Result<(), LimitError> {
    let chars = alt.chars().count();
    if chars == 0 {
        return Err(LimitError::AltTextEmpty { index });
    }
    if chars > MAX_ALT_TEXT_CHARS {
        return Err(LimitError::AltTextTooLong { index, chars });
    }
    Ok(())
}

/// Checks a multicast's recipient count.
pub fn check_recipients(n: usize) -> Result<(), LimitError> {
    if n == 0 || n > MAX_MULTICAST_RECIPIENTS {
        return Err(LimitError::Recipients(n));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::message::{Action, FlexBubble, FlexComponent, QuickReplyItem};

    fn bubble_with_text(n: usize) -> FlexBubble {
        FlexBubble {
            body: Some(FlexComponent::boxed(
                "vertical",
                vec![FlexComponent::text("あ".repeat(n))],
            )),
            ..FlexBubble::default()
        }
    }

    #[test]
    fn a_full_bucket_allows_a_burst_of_its_capacity_then_refills_one_token_per_period() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, Duration::from_secs(1200), t0);
        for _ in 0..3 {
            b.take(t0).unwrap();
        }
        let wait = b.take(t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1200));
        assert!(b.take(t0 + Duration::from_secs(1199)).is_err());
        b.take(t0 + Duration::from_secs(1200)).unwrap();
    }

    #[test]
    fn a_drained_bucket_waits_a_full_period() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(200, Duration::from_millis(5), t0);
        b.drain(t0);
        assert_eq!(b.take(t0).unwrap_err(), Duration::from_millis(5));
    }

    #[test]
    fn the_classes_carry_lines_documented_limits() {
        let per_sec = |c: RateClass| 1.0 / c.limit().1.as_secs_f64();
        assert_eq!(per_sec(RateClass::Push).round(), 2000.0);
        assert_eq!(per_sec(RateClass::Multicast).round(), 200.0);
        assert_eq!((per_sec(RateClass::Broadcast) * 3600.0).round(), 60.0);
        assert_eq!((per_sec(RateClass::RichMenuCreate) * 3600.0).round(), 100.0);
        assert_eq!(RateClass::BatchControl.limit().0, 3);
        assert_eq!((per_sec(RateClass::BatchControl) * 3600.0).round(), 3.0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_paces_push_at_2000_per_second_and_leaves_multicast_to_the_outbox() {
        let l = RateLimiter::new();
        let start = Instant::now();
        for _ in 0..4000 {
            l.acquire(RateClass::Push, Duration::from_secs(10))
                .await
                .unwrap();
        }
        // 2,000 from the full bucket, then 2,000 more at 0.5 ms each.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(995) && took <= Duration::from_millis(1005),
            "{took:?}"
        );
        // Multicast's one bucket is the outbox's: the client does not take a second token.
        let start = Instant::now();
        for _ in 0..1000 {
            l.acquire(RateClass::Multicast, Duration::ZERO)
                .await
                .unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.drain(RateClass::Multicast);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_refuses_to_wait_longer_than_allowed() {
        let l = RateLimiter::new();
        for _ in 0..3 {
            l.acquire(RateClass::BatchControl, Duration::ZERO)
                .await
                .unwrap();
        }
        let e = l
            .acquire(RateClass::BatchControl, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert_eq!(e.retry_after, Duration::from_secs(1200));
    }

    #[test]
    fn one_to_five_messages_per_request() {
        assert_eq!(check_messages(&[]), Err(LimitError::MessageCount(0)));
        let six = vec![Message::text("a"); 6];
        assert_eq!(check_messages(&six), Err(LimitError::MessageCount(6)));
        assert!(check_messages(&six[..5]).is_ok());
    }

    #[test]
    fn alt_text_over_1500_characters_is_refused_and_1500_is_fine() {
        let ok = Message::flex("警".repeat(1500), FlexContainer::Bubble(Box::default()));
        assert!(check_messages(&[ok]).is_ok());
        let bad = Message::flex("警".repeat(1501), FlexContainer::Bubble(Box::default()));
        assert_eq!(
            check_messages(&[bad]),
            Err(LimitError::AltTextTooLong {
                index: 0,
                chars: 1501
            })
        );
    }

    #[test]
    fn a_bubble_over_30_kb_is_refused() {
        // Each あ is 3 bytes of UTF-8.
        let ok = Message::flex(
            "a",
            FlexContainer::Bubble(Box::new(bubble_with_text(9_900))),
        );
        assert!(check_messages(&[ok]).is_ok());
        let bad = Message::flex(
            "a",
            FlexContainer::Bubble(Box::new(bubble_with_text(10_100))),
        );
        assert!(matches!(
            check_messages(&[bad]),
            Err(LimitError::BubbleTooLarge { .. })
        ));
    }

    #[test]
    fn a_carousel_takes_at_most_12_bubbles_and_50_kb() {
        let c = |n, size| {
            Message::flex(
                "a",
                FlexContainer::carousel(vec![bubble_with_text(size); n]),
            )
        };
        assert!(check_messages(&[c(12, 10)]).is_ok());
        assert_eq!(
            check_messages(&[c(13, 10)]),
            Err(LimitError::TooManyBubbles {
                index: 0,
                bubbles: 13
            })
        );
        assert!(matches!(
            check_messages(&[c(6, 3_000)]),
            Err(LimitError::CarouselTooLarge { .. })
        ));
    }

    #[test]
    fn quick_reply_takes_at_most_13_items() {
        let items = |n| vec![QuickReplyItem::new(Action::message("a", "a")); n];
        assert!(check_messages(&[Message::text("x").with_quick_reply(items(13))]).is_ok());
        assert_eq!(
            check_messages(&[Message::text("x").with_quick_reply(items(14))]),
            Err(LimitError::QuickReplyTooLong {
                index: 0,
                items: 14
            })
        );
    }

    #[test]
    fn text_is_counted_in_utf16_units() {
        // 😀 is two UTF-16 units.
        assert!(check_messages(&[Message::text("😀".repeat(2500))]).is_ok());
        assert_eq!(
            check_messages(&[Message::text("😀".repeat(2501))]),
            Err(LimitError::TextTooLong {
                index: 0,
                units: 5002
            })
        );
    }

    #[test]
    fn multicast_recipients_are_1_to_500() {
        assert!(check_recipients(500).is_ok());
        assert_eq!(check_recipients(501), Err(LimitError::Recipients(501)));
        assert_eq!(check_recipients(0), Err(LimitError::Recipients(0)));
    }
}
