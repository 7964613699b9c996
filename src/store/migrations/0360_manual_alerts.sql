-- The city's own evacuation information (issue 12): 高齢者等避難 (3), 避難指示 (4), 緊急安全確保 (5) and 解除 (0),
-- drafted by one person and approved by another; and 訂正 / 取消 of any sent alert. See src/disaster/manual.rs.
CREATE TABLE manual_alerts (
    id                INTEGER PRIMARY KEY,
    kind              TEXT NOT NULL CHECK (kind IN ('alert', 'correction', 'withdrawal')),
    level             INTEGER NOT NULL CHECK (level IN (0, 3, 4, 5)),
    hazard            TEXT NOT NULL,
    districts         TEXT NOT NULL,              -- JSON array of district ids (alerts); '[]' for corrections
    free_text         TEXT NOT NULL DEFAULT '',
    refers_to         INTEGER REFERENCES delivery_alerts (id),  -- the sent alert a correction/withdrawal is about
    status            TEXT NOT NULL CHECK (status IN ('draft', 'submitted', 'approved', 'cancelled', 'sent')),
    drafted_by        TEXT NOT NULL,
    drafted_at        TEXT NOT NULL,
    approved_by       TEXT,
    approved_at       TEXT,
    send_at_ms        INTEGER,                    -- end of the cancel window (unix ms)
    cancelled_by      TEXT,
    cancelled_at      TEXT,
    delivery_alert_id INTEGER REFERENCES delivery_alerts (id),
    recipients        INTEGER,
    drill             INTEGER NOT NULL DEFAULT 0  -- drafted during a drill: always a drill, even if it ends first
);
CREATE INDEX manual_alerts_due ON manual_alerts (send_at_ms) WHERE status = 'approved';

-- Batches of an alert that is withdrawn or corrected before they were sent end as 'cancelled' (never sent).
-- SQLite cannot change a CHECK constraint, so the table is rebuilt with the same columns and indexes.
CREATE TABLE delivery_batches_new (
    id               INTEGER PRIMARY KEY,
    alert_id         INTEGER NOT NULL REFERENCES delivery_alerts (id),
    message_id       INTEGER NOT NULL REFERENCES delivery_messages (id),
    retry_key        TEXT NOT NULL UNIQUE,
    priority         INTEGER NOT NULL,
    recipients       TEXT NOT NULL,
    n_recipients     INTEGER NOT NULL CHECK (n_recipients BETWEEN 1 AND 500),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'in_flight', 'accepted', 'rejected', 'expired', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    first_attempt_at INTEGER,
    finished_at      INTEGER,
    request_id       TEXT,
    last_error       TEXT
);
INSERT INTO delivery_batches_new SELECT * FROM delivery_batches;
DROP TABLE delivery_batches;
ALTER TABLE delivery_batches_new RENAME TO delivery_batches;
CREATE INDEX delivery_batches_ready ON delivery_batches (priority DESC, id) WHERE status = 'pending';
CREATE INDEX delivery_batches_alert ON delivery_batches (alert_id, status);

-- Drill mode (訓練): while active, manual alerts go only to disaster.drill_audience, marked 【訓練】, and the console
-- shows 「訓練中」 on every page. One row.
CREATE TABLE drill_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    active      INTEGER NOT NULL,
    changed_by  TEXT NOT NULL,
    changed_at  TEXT NOT NULL
);
