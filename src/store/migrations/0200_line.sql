-- LINE: webhook intake, users seen, rich menus (desired state), batch-control budget.

-- Every webhook event, written before LINE gets its 200. Deduplicated on webhookEventId (LINE may deliver an
-- event more than once, redelivered or not). The worker processes 'pending' rows in event-time order.
CREATE TABLE line_webhook_events (
    id               INTEGER PRIMARY KEY,
    webhook_event_id TEXT NOT NULL UNIQUE,
    received_at      TEXT NOT NULL,          -- RFC 3339 UTC
    event_ts         INTEGER NOT NULL,       -- LINE's `timestamp`, ms since the epoch (event time)
    kind             TEXT NOT NULL,          -- `type` as LINE sent it, unknown types included
    user_id          TEXT,                   -- source.userId when present
    redelivery       INTEGER NOT NULL DEFAULT 0,
    body             TEXT NOT NULL,          -- the event object exactly as received
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'ignored', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    processed_at     TEXT,
    error            TEXT
);
CREATE INDEX line_webhook_events_pending ON line_webhook_events (state, event_ts, id);

-- Users the daemon has seen, with follow state decided by event time (so an out-of-order follow cannot undo
-- a later unfollow), and the rich menu we know them to have as a per-user link.
CREATE TABLE line_users (
    user_id          TEXT PRIMARY KEY,
    following        INTEGER NOT NULL DEFAULT 0,
    follow_event_ts  INTEGER NOT NULL DEFAULT 0,   -- time of the follow/unfollow that set `following`
    linked_menu_id   TEXT,                         -- per-user link we made or saw (richmenuswitch), or NULL
    linked_at        TEXT,
    first_seen_at    TEXT NOT NULL,
    last_seen_at     TEXT NOT NULL
);
CREATE INDEX line_users_linked ON line_users (linked_menu_id);

-- Rich menus Sonae created, one row per (template key, content hash). A changed template (layout or image)
-- gets a new row and a new LINE menu, because LINE's rich-menu images cannot be replaced.
CREATE TABLE line_richmenus (
    id               INTEGER PRIMARY KEY,
    template_key     TEXT NOT NULL,
    content_hash     TEXT NOT NULL,
    mode             TEXT NOT NULL,          -- 'normal' | 'emergency'
    entry            INTEGER NOT NULL DEFAULT 0,   -- 1: the menu a mode starts on (default, follow, switch target)
    alias_id         TEXT,                   -- the alias the template asks for
    rich_menu_id     TEXT NOT NULL UNIQUE,   -- LINE's id
    image_uploaded   INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    current          INTEGER NOT NULL DEFAULT 1,   -- 1 for the version the templates describe now
    UNIQUE (template_key, content_hash)
);

-- Aliases Sonae created (so sync never touches anyone else's).
CREATE TABLE line_richmenu_aliases (
    alias_id         TEXT PRIMARY KEY,
    rich_menu_id     TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

-- The account's rich-menu mode: one row.
CREATE TABLE line_richmenu_state (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    mode             TEXT NOT NULL,
    switched_at      TEXT NOT NULL
);
INSERT INTO line_richmenu_state (id, mode, switched_at) VALUES (1, 'normal', '1970-01-01T00:00:00Z');

-- Every account switch and every batch-control request (3 per hour per channel). The budget is the number of
-- rows with batch_sent_at in the last hour; the resume key is stored before the request is sent.
CREATE TABLE line_richmenu_switches (
    id               INTEGER PRIMARY KEY,
    started_at       TEXT NOT NULL,
    to_mode          TEXT NOT NULL,
    method           TEXT NOT NULL,          -- 'batch' | 'bulk_link' | 'default_only'
    resume_key       TEXT,
    batch_sent_at    TEXT,                   -- when the batch request was (or may have been) sent
    request_id       TEXT,
    phase            TEXT,                   -- ongoing | succeeded | failed | bulk_done | ...
    finished_at      TEXT,
    detail           TEXT
);
CREATE INDEX line_richmenu_switches_batch ON line_richmenu_switches (batch_sent_at);
