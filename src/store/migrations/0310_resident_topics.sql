-- Topic subscriptions: a resident's opt-in to a service's notices (plow notices per district; later news
-- segments, garbage reminders per area). One row per (topic, scope, resident); opting out deletes it, and
-- unfollowing the account deletes every row of the resident. `since_ms` is when the subscription began:
-- a service that notifies "once per episode" streams subscribers that began after its last claim.
CREATE TABLE resident_topics (
    topic    TEXT NOT NULL,
    scope    TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, scope, user_id)
) WITHOUT ROWID;
CREATE INDEX resident_topics_by_user ON resident_topics (user_id);
