-- Disaster engine memory and the durable outbox (issue 5 items 4 and 6). See src/delivery/mod.rs.

-- The engine's memory (what was announced per thread, the mode and its timing), one JSON row. Written in the
-- same transaction as the outbox rows of the decision that produced it.
CREATE TABLE disaster_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    state       TEXT NOT NULL,            -- JSON of disaster::engine::EngineState
    updated_at  TEXT NOT NULL
);

-- Every mode change, with its reason (console history; the audit log has the same).
CREATE TABLE disaster_mode_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('normal', 'disaster')),
    previous    TEXT NOT NULL,
    reason      TEXT NOT NULL             -- JSON of disaster::engine::ModeReason
);

-- One row per alert step (or any other fan-out, e.g. plow notices). step_key makes a step idempotent.
CREATE TABLE delivery_alerts (
    id          INTEGER PRIMARY KEY,
    step_key    TEXT NOT NULL UNIQUE,
    source      TEXT NOT NULL,            -- 'disaster', 'drill', 'plow', ...
    kind        TEXT NOT NULL,            -- step kind ('issue', 'lift', ...) or the feature's own
    priority    INTEGER NOT NULL,
    summary     TEXT NOT NULL,            -- one line for operators
    detail      TEXT NOT NULL,            -- JSON (the engine's step)
    planned     INTEGER NOT NULL,         -- recipients planned
    created_at  TEXT NOT NULL
);
CREATE INDEX delivery_alerts_created ON delivery_alerts (created_at);

-- Message bodies, shared by all batches of one district.
CREATE TABLE delivery_messages (
    id          INTEGER PRIMARY KEY,
    alert_id    INTEGER NOT NULL REFERENCES delivery_alerts (id),
    body        TEXT NOT NULL             -- JSON array of 1..=5 LINE message objects
);

-- Batches of at most 500 recipients, each with its own retry key chosen here, before the first send.
CREATE TABLE delivery_batches (
    id               INTEGER PRIMARY KEY,
    alert_id         INTEGER NOT NULL REFERENCES delivery_alerts (id),
    message_id       INTEGER NOT NULL REFERENCES delivery_messages (id),
    retry_key        TEXT NOT NULL UNIQUE,        -- X-Line-Retry-Key, a UUID, for the batch's whole life
    priority         INTEGER NOT NULL,
    recipients       TEXT NOT NULL,               -- LINE user ids, one per line
    n_recipients     INTEGER NOT NULL CHECK (n_recipients BETWEEN 1 AND 500),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'in_flight', 'accepted', 'rejected', 'expired')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,            -- unix ms
    first_attempt_at INTEGER,                     -- unix ms; retry keys live 24 h from here
    finished_at      INTEGER,
    request_id       TEXT,                        -- x-line-request-id / x-line-accepted-request-id
    last_error       TEXT
);
CREATE INDEX delivery_batches_ready ON delivery_batches (priority DESC, id) WHERE status = 'pending';
CREATE INDEX delivery_batches_alert ON delivery_batches (alert_id, status);
