-- Roles viewer < operator < drafter < approver < admin (issue 12), and one-time passwords: an account created or
-- reset from the console must choose its own password at the next login. SQLite cannot change a CHECK
-- constraint, so the table is rebuilt (sessions of the old table end: everyone logs in again once).
CREATE TABLE console_users_new (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    role                 TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'drafter', 'approver', 'admin')),
    password_hash        TEXT NOT NULL,          -- Argon2id PHC string (m=19456 KiB, t=2, p=1)
    disabled             INTEGER NOT NULL DEFAULT 0,
    created_at           TEXT NOT NULL,
    last_login_at        TEXT,
    must_change_password INTEGER NOT NULL DEFAULT 0
);
INSERT INTO console_users_new (id, name, role, password_hash, disabled, created_at, last_login_at)
    SELECT id, name, role, password_hash, disabled, created_at, last_login_at FROM console_users;
DELETE FROM console_sessions;
DROP TABLE console_users;
ALTER TABLE console_users_new RENAME TO console_users;
