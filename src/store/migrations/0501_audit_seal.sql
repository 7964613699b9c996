-- Tamper evidence for the audit log (OWASP Logging Cheat Sheet: "Build in tamper detection").
-- Each audit row gets a link of a SHA-256 hash chain shortly after it is written; the console verifies the chain
-- and /api/status publishes its head so monitoring can keep a copy outside this machine.
CREATE TABLE audit_seal (
    audit_id INTEGER PRIMARY KEY,   -- audit_log.id (no foreign key: a deleted row must show up as a break)
    hash     TEXT NOT NULL          -- hex SHA-256(previous hash, id, at, actor, action, detail)
);
