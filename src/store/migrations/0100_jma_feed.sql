-- JMA feed poller, raw archive and active-warning state (jma::feed, jma::archive, jma::persist).

-- Health and conditional-GET validators of each polled feed URL (short and long).
CREATE TABLE jma_feeds (
    url                  TEXT PRIMARY KEY,
    last_poll_at         TEXT,            -- RFC 3339 UTC, any outcome
    last_success_at      TEXT,            -- 200 or 304 with a well-formed feed
    last_change_at       TEXT,            -- last 200 with a new entry
    last_error_at        TEXT,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    documents_fetched    INTEGER NOT NULL DEFAULT 0,
    last_modified        TEXT,            -- validator for If-Modified-Since
    etag                 TEXT,            -- validator for If-None-Match
    last_catchup_at      TEXT             -- last time the long (_l) twin was read for this short feed
);

-- Every telegram URL ever seen in a feed. The URL is the dedupe key: a URL in state 'fetched' is never
-- requested again, whichever feed lists it.
CREATE TABLE jma_entries (
    url          TEXT PRIMARY KEY,
    feed_url     TEXT NOT NULL,           -- the feed it was first seen in
    title        TEXT NOT NULL,
    updated      TEXT,                    -- entry <updated>, as written
    author       TEXT NOT NULL,
    data_type    TEXT,                    -- from the URL file name, e.g. VPWW54
    first_seen_at TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'fetched', 'skipped', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    archive_id   INTEGER REFERENCES jma_archive (id)
);
CREATE INDEX jma_entries_pending ON jma_entries (state) WHERE state = 'pending';

-- Every fetched telegram, byte for byte, stored before it is parsed.
CREATE TABLE jma_archive (
    id          INTEGER PRIMARY KEY,
    url         TEXT NOT NULL UNIQUE,
    fetched_at  TEXT NOT NULL,
    sha256      TEXT NOT NULL,            -- hex of the body
    size        INTEGER NOT NULL,
    body        BLOB NOT NULL,
    data_type   TEXT,
    -- stored: not processed yet (resumed at start); applied / duplicate / ignored: processed;
    -- parse_failed: kept, reported as a problem; unparsed: no parser wired (re-processed when one is).
    status      TEXT NOT NULL DEFAULT 'stored',
    detail      TEXT
);
CREATE INDEX jma_archive_status ON jma_archive (status);

-- Persisted active-warning state (jma::state::MuniState as JSON), one row per scope and municipality.
CREATE TABLE jma_state (
    scope        TEXT NOT NULL CHECK (scope IN ('real', 'drill')),
    municipality TEXT NOT NULL,
    json         TEXT NOT NULL,
    PRIMARY KEY (scope, municipality)
);

-- Report keys already applied (apply-once), pruned after jma.applied_retention_days.
CREATE TABLE jma_applied (
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    report_datetime TEXT NOT NULL,
    archive_id      INTEGER,
    PRIMARY KEY (scope, key)
);

-- Change events for the disaster engine, in the order they happened. Consumers remember the last id.
CREATE TABLE jma_events (
    id              INTEGER PRIMARY KEY,
    at              TEXT NOT NULL,
    scope           TEXT NOT NULL,
    municipality    TEXT NOT NULL,
    phenomenon      TEXT NOT NULL,
    change          TEXT NOT NULL,        -- issued|escalated|downgraded|changed|lifted|corrected|cancelled
    code_before     TEXT,
    code_after      TEXT,
    report_datetime TEXT NOT NULL,
    archive_id      INTEGER,
    json            TEXT NOT NULL         -- the whole jma::state::WarningEvent
);
CREATE INDEX jma_events_muni ON jma_events (scope, municipality);

-- The effective warnings in force, for the console and SQL queries (derived from jma_state).
CREATE TABLE jma_active (
    scope           TEXT NOT NULL,
    municipality    TEXT NOT NULL,
    municipality_name TEXT NOT NULL,
    phenomenon      TEXT NOT NULL,
    code            TEXT NOT NULL,
    name            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    level           INTEGER,
    data_type       TEXT NOT NULL,
    report_datetime TEXT NOT NULL,
    active_since    TEXT NOT NULL,
    PRIMARY KEY (scope, municipality, phenomenon)
);
