-- Snow plows: latest position per vehicle, trails, segment passes, storms, opt-in notices.

-- One row per vehicle: its newest accepted position.
CREATE TABLE plow_vehicles (
    vehicle     TEXT PRIMARY KEY,
    format      TEXT NOT NULL,           -- 'sonae' | 'owntracks'
    ts_ms       INTEGER NOT NULL,        -- time of the fix (ms since epoch)
    lat         REAL NOT NULL,
    lon         REAL NOT NULL,
    speed_kmh   REAL,
    heading     REAL,
    blade       TEXT NOT NULL,           -- 'down' | 'up' | 'unknown'
    offline_ms  INTEGER,                 -- OwnTracks last will received (ms), NULL when none
    received_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Every accepted position, kept for plow.trail_retention_days. The key makes a repeated
-- (vehicle, time) — a QoS 1 redelivery — an ignored insert.
CREATE TABLE plow_positions (
    vehicle   TEXT NOT NULL,
    ts_ms     INTEGER NOT NULL,
    lat       REAL NOT NULL,
    lon       REAL NOT NULL,
    speed_kmh REAL,
    heading   REAL,
    blade     TEXT NOT NULL,
    PRIMARY KEY (vehicle, ts_ms)
) WITHOUT ROWID;
CREATE INDEX plow_positions_ts ON plow_positions (ts_ms);

-- Last time each road segment ("feature#index" of the configured road file) was plowed.
CREATE TABLE plow_segment_passes (
    segment   TEXT PRIMARY KEY,
    plowed_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Storms set by the dispatcher; coverage counts passes since the open storm's start.
CREATE TABLE plow_storms (
    id          INTEGER PRIMARY KEY,
    started_ms  INTEGER NOT NULL,
    ended_ms    INTEGER,
    started_by  TEXT NOT NULL,
    ended_by    TEXT,
    note        TEXT NOT NULL DEFAULT ''
);

-- First blade-down entry of a plow into a district per storm (drives the opt-in notice).
CREATE TABLE plow_district_entries (
    storm_id   INTEGER NOT NULL REFERENCES plow_storms (id),
    district   TEXT NOT NULL,
    entered_ms INTEGER NOT NULL,
    vehicle    TEXT NOT NULL,
    PRIMARY KEY (storm_id, district)
) WITHOUT ROWID;

-- Residents who asked to be told when a plow enters their district. Opt-out deletes the row.
CREATE TABLE plow_notice_subscriptions (
    user_id    TEXT NOT NULL,
    district   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, district)
) WITHOUT ROWID;

-- Notices decided (at most one per resident, district and storm); the outbox sends them.
CREATE TABLE plow_notices (
    storm_id   INTEGER NOT NULL REFERENCES plow_storms (id),
    district   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    PRIMARY KEY (storm_id, district, user_id)
) WITHOUT ROWID;
