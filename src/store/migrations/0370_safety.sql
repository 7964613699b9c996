-- Safety replies (安否, issue 12 item 5): the latest answer of each resident to each evacuation alert, and the
-- staff follow-up of 「助けが必要」. `ref` identifies the alert in postback data (see src/disaster/safety.rs).
CREATE TABLE safety_replies (
    id          INTEGER PRIMARY KEY,
    ref         TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    answer      TEXT NOT NULL CHECK (answer IN ('evacuated', 'safe', 'help')),
    district_id TEXT,
    at          TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',   -- what a resident who needs help wrote afterwards
    lat         REAL,                       -- where they are, if they shared a location
    lon         REAL,
    follow_up   TEXT NOT NULL DEFAULT 'open' CHECK (follow_up IN ('open', 'in_progress', 'done')),
    handled_by  TEXT,
    UNIQUE (ref, user_id)
);
CREATE INDEX safety_replies_help ON safety_replies (follow_up, at) WHERE answer = 'help';
