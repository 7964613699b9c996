//! Topic subscriptions (`resident_topics`): a resident's opt-in to a service's notices, by topic and scope
//! (`plow-notice` per plow district; later news segments, garbage reminders per area).
//!
//! Opt-in services do not add columns to `residents` or keep their own lists: they subscribe here, and their
//! notices go out as [`crate::delivery::Recipients::Subscribers`], streamed from this table into batch rows
//! inside the outbox transaction like an alert's district audience. Unfollowing the account removes every
//! subscription of the resident ([`super::unfollow_tx`]).

use rusqlite::{params, Connection, Transaction};

use crate::ids::LineUserId;

/// The active residents subscribed to `topic` in `scope` whose subscription began in
/// `(began_after_ms, began_until_ms]` — a service that notifies once per episode streams only those who
/// began after its previous claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribers {
    pub topic: String,
    pub scope: String,
    pub began_after_ms: i64,
    pub began_until_ms: i64,
}

/// Subscribes (idempotent: an existing subscription keeps its start).
pub fn subscribe(
    tx: &Transaction<'_>,
    user: &LineUserId,
    topic: &str,
    scope: &str,
    now_ms: i64,
) -> anyhow::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO resident_topics (topic, scope, user_id, since_ms) VALUES (?1, ?2, ?3, ?4)",
        params![topic, scope, user.as_str(), now_ms],
    )?;
    Ok(())
}

/// Removes the resident's subscription to `topic` in `scope`, or in every scope with `None`. Returns how
/// many were removed.
pub fn unsubscribe(
    tx: &Transaction<'_>,
    user: &LineUserId,
    topic: &str,
    scope: Option<&str>,
) -> anyhow::Result<usize> {
    Ok(match scope {
        Some(s) => tx.execute(
            "DELETE FROM resident_topics WHERE topic = ?1 AND scope = ?2 AND user_id = ?3",
            params![topic, s, user.as_str()],
        )?,
        None => tx.execute(
            "DELETE FROM resident_topics WHERE topic = ?1 AND user_id = ?2",
            params![topic, user.as_str()],
        )?,
    })
}

/// Removes every subscription of the resident (unfollow).
pub fn unsubscribe_all(tx: &Transaction<'_>, user: &LineUserId) -> anyhow::Result<usize> {
    Ok(tx.execute(
        "DELETE FROM resident_topics WHERE user_id = ?1",
        [user.as_str()],
    )?)
}

/// The resident's subscriptions as (topic, scope), for the console and the resident's settings.
pub fn of_user(conn: &Connection, user: &LineUserId) -> anyhow::Result<Vec<(String, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT topic, scope FROM resident_topics WHERE user_id = ?1 ORDER BY topic, scope",
    )?;
    let rows = st.query_map([user.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

const SUBSCRIBERS: &str = "SELECT t.user_id FROM resident_topics t
     JOIN residents r ON r.user_id = t.user_id AND r.active = 1
     WHERE t.topic = ?1 AND t.scope = ?2 AND t.since_ms > ?3 AND t.since_ms <= ?4
     ORDER BY t.user_id";

/// Calls `f` with every subscriber's id in index order, without allocating per row. Returns how many.
pub fn for_each_subscriber(
    conn: &Connection,
    s: &Subscribers,
    mut f: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let mut stmt = conn.prepare_cached(SUBSCRIBERS)?;
    let mut rows = stmt.query(params![
        s.topic,
        s.scope,
        s.began_after_ms,
        s.began_until_ms
    ])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        f(row.get_ref(0)?.as_str()?)?;
        n += 1;
    }
    Ok(n)
}

/// How many subscribers `s` selects.
pub fn count(conn: &Connection, s: &Subscribers) -> anyhow::Result<usize> {
    for_each_subscriber(conn, s, |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn u(n: u32) -> LineUserId {
        LineUserId::new(format!("U{n:032}"))
    }

    fn all(s: &Store, topic: &str, scope: &str, after: i64, until: i64) -> Vec<String> {
        let q = Subscribers {
            topic: topic.into(),
            scope: scope.into(),
            began_after_ms: after,
            began_until_ms: until,
        };
        s.read_blocking(|c| {
            let mut v = Vec::new();
            for_each_subscriber(c, &q, |id| {
                v.push(id.to_string());
                Ok(())
            })?;
            Ok(v)
        })
        .unwrap()
    }

    #[test]
    fn subscribers_are_active_residents_of_the_topic_and_scope_in_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .write_blocking(|tx| {
                for n in 1..=4 {
                    crate::resident::follow_tx(tx, &u(n))?;
                }
                subscribe(tx, &u(1), "plow-notice", "01101", 100)?;
                subscribe(tx, &u(2), "plow-notice", "01101", 200)?;
                subscribe(tx, &u(3), "plow-notice", "01102", 100)?;
                subscribe(tx, &u(4), "news", "01101", 100)?;
                // A repeat keeps the first start.
                subscribe(tx, &u(1), "plow-notice", "01101", 999)?;
                Ok(())
            })
            .unwrap();
        let id = |n| u(n).as_str().to_string();
        assert_eq!(
            all(&store, "plow-notice", "01101", 0, 1000),
            vec![id(1), id(2)]
        );
        assert_eq!(all(&store, "plow-notice", "01101", 100, 1000), vec![id(2)]);
        assert_eq!(all(&store, "plow-notice", "01101", 0, 150), vec![id(1)]);
        store
            .write_blocking(|tx| {
                crate::resident::unfollow_tx(tx, &u(2))?;
                Ok(())
            })
            .unwrap();
        assert_eq!(
            all(&store, "plow-notice", "01101", 0, 1000),
            vec![id(1)],
            "unfollowing ends every subscription"
        );
        let n = store
            .write_blocking(|tx| unsubscribe(tx, &u(1), "plow-notice", None))
            .unwrap();
        assert_eq!(n, 1);
        assert!(all(&store, "plow-notice", "01101", 0, 1000).is_empty());
        assert_eq!(
            store.read_blocking(|c| of_user(c, &u(4))).unwrap(),
            vec![("news".to_string(), "01101".to_string())]
        );
    }
}
