-- Operator console: staff accounts, login sessions, and the city's mode (平常時/災害モード).

CREATE TABLE console_users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('operator', 'approver', 'admin')),
    password_hash TEXT NOT NULL,          -- Argon2id PHC string (m=19456 KiB, t=2, p=1)
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    last_login_at TEXT
);

-- Only the SHA-256 of a session id is stored: a copy of the database does not let anyone log in.
CREATE TABLE console_sessions (
    id_hash      TEXT PRIMARY KEY,        -- hex SHA-256 of the 256-bit random session id
    user_id      INTEGER NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,           -- synchronizer token for this session's forms
    created_at   TEXT NOT NULL,           -- absolute timeout counts from here
    last_seen_at TEXT NOT NULL            -- idle timeout counts from here
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);

-- One row: the mode the city is in, and whether an operator holds disaster mode on by hand.
CREATE TABLE mode_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    mode        TEXT NOT NULL CHECK (mode IN ('normal', 'disaster')),
    manual_hold INTEGER NOT NULL DEFAULT 0,
    mode_since  TEXT NOT NULL,
    changed_by  TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    hold_by     TEXT,
    hold_since  TEXT
);
INSERT INTO mode_state (id, mode, manual_hold, mode_since, changed_by, reason)
VALUES (1, 'normal', 0, strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'), 'system', '初期状態');
