-- Core tables: operator-visible problems and the audit log.

-- Bad input and failures an operator should see (malformed XML, rejected webhooks, silent feeds, ...).
CREATE TABLE problems (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,          -- RFC 3339 UTC
    source   TEXT NOT NULL,          -- e.g. 'jma.feed', 'line.webhook', 'plow.ingest'
    message  TEXT NOT NULL,          -- one line, operator language
    detail   TEXT,                   -- optional longer detail (error chain, offending excerpt)
    resolved_at TEXT
);
CREATE INDEX problems_at ON problems (at);

-- Every operator action and every automatic decision that changes what residents see.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,           -- 'system', 'jma', or the operator's user name
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL            -- JSON
);
CREATE INDEX audit_log_at ON audit_log (at);
