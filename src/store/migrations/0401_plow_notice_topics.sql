-- Plow-notice opt-ins move to the residents' topic subscriptions (topic 'plow-notice', scope = plow
-- district); the per-resident record of decided notices becomes one claim per storm and district: the
-- notice streams the subscribers that began after the previous claim.
INSERT OR IGNORE INTO resident_topics (topic, scope, user_id, since_ms)
    SELECT 'plow-notice', district, user_id,
           CAST(strftime('%s', created_at) AS INTEGER) * 1000
    FROM plow_notice_subscriptions;
DROP TABLE plow_notice_subscriptions;

CREATE TABLE plow_notice_claims (
    storm_id    INTEGER NOT NULL REFERENCES plow_storms (id),
    district    TEXT NOT NULL,
    -- Subscribers who began at or before this moment (ms) have been notified in this storm.
    until_ms    INTEGER NOT NULL,
    recipients  INTEGER NOT NULL,
    claimed_at  TEXT NOT NULL,
    PRIMARY KEY (storm_id, district, until_ms)
) WITHOUT ROWID;
DROP TABLE plow_notices;
