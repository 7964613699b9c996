-- Shelter status set by operators, and residents (issue 5, items 1 and 2).

-- Operator-set status of a shelter (GSI 共通ID). A shelter with no row is open: a designated site is usable
-- until an operator marks it closed or full.
CREATE TABLE shelter_status (
    shelter_id  TEXT PRIMARY KEY,
    status      TEXT NOT NULL CHECK (status IN ('open', 'closed', 'full')),
    changed_at  TEXT NOT NULL,       -- RFC 3339 UTC
    changed_by  TEXT NOT NULL
) WITHOUT ROWID;

-- A resident: one LINE user and the district they registered.
CREATE TABLE residents (
    id             INTEGER PRIMARY KEY,
    user_id        TEXT NOT NULL UNIQUE,        -- LINE user id (personal data: never logged in full)
    district_id    TEXT,                        -- NULL until the resident registers a district
    active         INTEGER NOT NULL DEFAULT 1,  -- 0 after unfollow (blocked the account)
    opt_level3     INTEGER NOT NULL DEFAULT 0,  -- wants レベル3 (警報) alerts as well
    registered_at  TEXT NOT NULL,               -- first follow or import
    updated_at     TEXT NOT NULL,
    source         TEXT NOT NULL                -- 'follow' | 'import'
);
-- The audience query: active residents of a set of districts (optionally only レベル3 opt-ins). Partial and
-- covering, so a query touches only the index entries of its districts, even with 1 M rows.
CREATE INDEX residents_audience ON residents (district_id, opt_level3, user_id) WHERE active = 1;
