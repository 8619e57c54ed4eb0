-- What `server admin import` has applied: one row per command of an import record, written in
-- the same transaction as the command, so running the import again skips it; the digest of the
-- record's values tells a record changed since (refused) from the same record (skipped).
CREATE TABLE imported_records (
    record_key TEXT PRIMARY KEY,
    digest     TEXT NOT NULL,
    seq        BIGINT NOT NULL
);

-- One-time password-reset tokens, stored hashed (SHA-256): for imported accounts whose password
-- hash cannot be verified here, and for resets an operator issues.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX password_resets_by_user ON password_resets (user_id);
