-- Hardening. An idempotency claim carries a random token of the request that took it
-- (`owner`): only that request may save or free it, and a retry that finds a claim no live
-- request holds (its process died, or saving failed) may take it over. A keyed command records
-- its seq and outcome (timestamp, result and events, as JSON) on its key's row in the same
-- commit as its effects, so such a retry is answered from what was committed instead of
-- running again. Expired keys are purged by age on a schedule.
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT;
ALTER TABLE idempotency_keys ADD COLUMN committed_seq BIGINT;
ALTER TABLE idempotency_keys ADD COLUMN committed_outcome TEXT;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Revoked sessions and API keys by time of revocation: every instance polls them to close the
-- WebSocket connections they authenticated.
CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX api_keys_by_revocation ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL;
