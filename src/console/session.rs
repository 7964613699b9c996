//! Console sessions and login throttling.
//!
//! # Design constraints (OWASP Session Management and Authentication cheat sheets)
//! * A session id is 256 random bits from the OS CSPRNG, sent only in the cookie. The database keeps its
//!   SHA-256, so a leaked database or backup does not hand out live sessions.
//! * A new id is issued at every login (no fixation); logout and `sonae user disable` delete the row.
//! * **Idle timeout 30 min, absolute timeout 12 h** by default (`console.idle_timeout_secs`,
//!   `console.absolute_timeout_secs`): an alert console is high-value, but a disaster shift is long and a
//!   forced re-login in the middle of a typhoon night must stay rare.
//! * Each session has its own CSRF synchronizer token (256 bits), compared in constant time.
//! * Time is an input: [`SessionPolicy::check`] and [`Throttle`] take `now`, so tests move the clock.
//!
//! # Throttling
//! After [`Throttle::MAX_FAILURES_PER_USER`] failed logins for one user name within
//! [`Throttle::WINDOW_SECS`], that name is refused (even with the right password) until the window has
//! passed since the last failure; the same for one client address after [`Throttle::MAX_FAILURES_PER_IP`]
//! failures. The table is in memory and bounded ([`Throttle::MAX_KEYS`] keys, oldest dropped first): a restart
//! forgets it, which costs an attacker a restart of the city's server per 5 guesses.

use std::collections::HashMap;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 random bits, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What the database stores for a session id.
pub fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Constant-time equality of two tokens (length differences return early, which reveals only the length
/// of a fixed-size token).
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionCheck {
    Valid,
    IdleExpired,
    AbsoluteExpired,
}

impl SessionPolicy {
    /// Pure: is a session created at `created` and last used at `last_seen` still valid at `now`?
    pub fn check(
        &self,
        created: DateTime<Utc>,
        last_seen: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> SessionCheck {
        if now - created >= self.absolute {
            SessionCheck::AbsoluteExpired
        } else if now - last_seen >= self.idle {
            SessionCheck::IdleExpired
        } else {
            SessionCheck::Valid
        }
    }
}

/// A live session as the handlers see it.
#[derive(Clone, Debug)]
pub struct Session {
    pub id_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
}

/// Creates a session for `user_id`; returns (cookie value, session). Also drops the user's expired sessions.
pub fn create(
    tx: &Transaction<'_>,
    user_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<(String, Session)> {
    let id = random_token();
    let s = Session {
        id_hash: hash_id(&id),
        user_id,
        csrf_token: random_token(),
    };
    tx.execute(
        "INSERT INTO console_sessions (id_hash, user_id, csrf_token, created_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        rusqlite::params![s.id_hash, user_id, s.csrf_token, now.to_rfc3339()],
    )?;
    tx.execute(
        "UPDATE console_users SET last_login_at = ?1 WHERE id = ?2",
        rusqlite::params![now.to_rfc3339(), user_id],
    )?;
    Ok((id, s))
}

/// Looks up the session for a cookie value at `now`, and on success records `now` as its last use when
/// `activity` (the automatic live refresh is not activity: an unattended console still times out). Expired
/// sessions are deleted. Sessions of disabled users are refused.
pub fn touch(
    tx: &Transaction<'_>,
    cookie_value: &str,
    policy: SessionPolicy,
    now: DateTime<Utc>,
    activity: bool,
) -> anyhow::Result<Result<Session, SessionCheck>> {
    let id_hash = hash_id(cookie_value);
    let row = tx
        .query_row(
            "SELECT s.user_id, s.csrf_token, s.created_at, s.last_seen_at, u.disabled
             FROM console_sessions s JOIN console_users u ON u.id = s.user_id
             WHERE s.id_hash = ?1",
            [&id_hash],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, bool>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((user_id, csrf_token, created, last_seen, disabled)) = row else {
        // Unknown id: treat like an expired one (the handler sends the user to the login page).
        return Ok(Err(SessionCheck::IdleExpired));
    };
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| anyhow::anyhow!("bad session timestamp {s:?}: {e}"))
    };
    let check = if disabled {
        SessionCheck::AbsoluteExpired
    } else {
        policy.check(parse(&created)?, parse(&last_seen)?, now)
    };
    if check != SessionCheck::Valid {
        tx.execute(
            "DELETE FROM console_sessions WHERE id_hash = ?1",
            [&id_hash],
        )?;
        return Ok(Err(check));
    }
    if activity {
        tx.execute(
            "UPDATE console_sessions SET last_seen_at = ?1 WHERE id_hash = ?2",
            rusqlite::params![now.to_rfc3339(), id_hash],
        )?;
    }
    Ok(Ok(Session {
        id_hash,
        user_id,
        csrf_token,
    }))
}

pub fn delete(tx: &Transaction<'_>, id_hash: &str) -> anyhow::Result<()> {
    tx.execute("DELETE FROM console_sessions WHERE id_hash = ?1", [id_hash])?;
    Ok(())
}

/// Removes sessions past the absolute timeout (housekeeping at login).
pub fn prune(
    tx: &Transaction<'_>,
    policy: SessionPolicy,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let cutoff = (now - policy.absolute).to_rfc3339();
    tx.execute(
        "DELETE FROM console_sessions WHERE created_at < ?1",
        [cutoff],
    )?;
    Ok(())
}

pub fn count(conn: &Connection) -> anyhow::Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM console_sessions", [], |r| r.get(0))?)
}

/// Failed-login bookkeeping; pure (time passed in), bounded.
#[derive(Debug, Default)]
pub struct Throttle {
    /// key → failure times within the window, oldest first.
    failures: HashMap<String, Vec<DateTime<Utc>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleCheck {
    Allowed,
    Locked { until: DateTime<Utc> },
}

impl Throttle {
    pub const MAX_FAILURES_PER_USER: usize = 5;
    pub const MAX_FAILURES_PER_IP: usize = 20;
    pub const WINDOW_SECS: i64 = 15 * 60;
    pub const MAX_KEYS: usize = 10_000;

    fn window() -> Duration {
        Duration::seconds(Self::WINDOW_SECS)
    }

    pub fn user_key(name: &str) -> String {
        format!("u:{}", name.to_lowercase())
    }

    pub fn ip_key(ip: std::net::IpAddr) -> String {
        format!("ip:{ip}")
    }

    fn limit(key: &str) -> usize {
        if key.starts_with("ip:") {
            Self::MAX_FAILURES_PER_IP
        } else {
            Self::MAX_FAILURES_PER_USER
        }
    }

    fn recent(&mut self, key: &str, now: DateTime<Utc>) -> &[DateTime<Utc>] {
        let w = Self::window();
        match self.failures.get_mut(key) {
            Some(v) => {
                v.retain(|t| now - *t < w);
                v
            }
            None => &[],
        }
    }

    pub fn check(&mut self, key: &str, now: DateTime<Utc>) -> ThrottleCheck {
        let limit = Self::limit(key);
        let recent = self.recent(key, now);
        if recent.len() >= limit {
            let last = *recent.last().expect("non-empty: len >= limit >= 1");
            ThrottleCheck::Locked {
                until: last + Self::window(),
            }
        } else {
            ThrottleCheck::Allowed
        }
    }

    pub fn record_failure(&mut self, key: &str, now: DateTime<Utc>) {
        if !self.failures.contains_key(key) && self.failures.len() >= Self::MAX_KEYS {
            // Bounded: forget the key whose latest failure is oldest.
            if let Some(oldest) = self
                .failures
                .iter()
                .min_by_key(|(_, v)| v.last().copied())
                .map(|(k, _)| k.clone())
            {
                self.failures.remove(&oldest);
            }
        }
        let limit = Self::limit(key);
        let v = self.failures.entry(key.to_string()).or_default();
        v.push(now);
        // Keep only what the check needs.
        if v.len() > limit {
            let drop = v.len() - limit;
            v.drain(..drop);
        }
    }

    /// A successful login clears the user's failures (not the address's).
    pub fn record_success(&mut self, key: &str) {
        self.failures.remove(key);
    }

    pub fn len(&self) -> usize {
        self.failures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T09:00:00+09:00")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_session_expires_after_thirty_idle_minutes() {
        let p = SessionPolicy::default();
        let c = t0();
        assert_eq!(
            p.check(c, c, c + Duration::minutes(29)),
            SessionCheck::Valid
        );
        assert_eq!(
            p.check(c, c, c + Duration::minutes(30)),
            SessionCheck::IdleExpired
        );
    }

    #[test]
    fn a_busy_session_still_ends_after_twelve_hours() {
        let p = SessionPolicy::default();
        let c = t0();
        let now = c + Duration::hours(12);
        assert_eq!(
            p.check(c, now - Duration::minutes(1), now),
            SessionCheck::AbsoluteExpired
        );
        assert_eq!(
            p.check(c, now - Duration::minutes(1), now - Duration::seconds(1)),
            SessionCheck::Valid
        );
    }

    #[test]
    fn five_failures_lock_a_user_for_the_window_after_the_last_one() {
        let mut t = Throttle::default();
        let k = Throttle::user_key("Tanaka");
        let now = t0();
        for i in 0..5 {
            assert_eq!(t.check(&k, now), ThrottleCheck::Allowed, "attempt {i}");
            t.record_failure(&k, now + Duration::seconds(i));
        }
        let last = now + Duration::seconds(4);
        assert_eq!(
            t.check(&Throttle::user_key("tanaka"), last),
            ThrottleCheck::Locked {
                until: last + Duration::minutes(15)
            }
        );
        assert_eq!(
            t.check(&k, last + Duration::minutes(15)),
            ThrottleCheck::Allowed
        );
    }

    #[test]
    fn an_address_is_locked_only_after_twenty_failures() {
        let mut t = Throttle::default();
        let k = Throttle::ip_key("192.0.2.7".parse().unwrap());
        for _ in 0..19 {
            t.record_failure(&k, t0());
        }
        assert_eq!(t.check(&k, t0()), ThrottleCheck::Allowed);
        t.record_failure(&k, t0());
        assert!(matches!(t.check(&k, t0()), ThrottleCheck::Locked { .. }));
    }

    #[test]
    fn success_clears_a_users_failures() {
        let mut t = Throttle::default();
        let k = Throttle::user_key("a");
        for _ in 0..4 {
            t.record_failure(&k, t0());
        }
        t.record_success(&k);
        t.record_failure(&k, t0());
        assert_eq!(t.check(&k, t0()), ThrottleCheck::Allowed);
    }

    #[test]
    fn the_table_never_grows_past_its_bound() {
        let mut t = Throttle::default();
        for i in 0..(Throttle::MAX_KEYS + 50) {
            t.record_failure(
                &Throttle::user_key(&format!("u{i}")),
                t0() + Duration::seconds(i as i64),
            );
        }
        assert_eq!(t.len(), Throttle::MAX_KEYS);
        // The newest keys are kept.
        let newest = Throttle::user_key(&format!("u{}", Throttle::MAX_KEYS + 49));
        assert_eq!(t.recent(&newest, t0()).len(), 1);
    }

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert!(tokens_equal(&a, &a.clone()));
        assert!(!tokens_equal(&a, &random_token()));
        assert!(!tokens_equal(&a, ""));
    }
}
