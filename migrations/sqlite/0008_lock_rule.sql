-- The rule sizing the rounding buffer in a resting BUY's lock (engine::LockRule, DESIGN.md "The
-- ledger"). Every market from before this migration was created under the old rule (a buffer
-- whatever the fees) and keeps it; the server writes the rule of each new market.
ALTER TABLE markets ADD COLUMN lock_rule TEXT NOT NULL DEFAULT 'BUFFER_ALWAYS';
