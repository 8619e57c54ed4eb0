-- The data path. Every read a request or the start-up makes is served by an index: trades by
-- market and time (the 24-hour window rebuilt at start, a gateway's ticker) and by order (an
-- order's fills).
CREATE INDEX trades_by_market_time ON trades (engine_market_id, created_at);
CREATE INDEX trades_by_maker_order ON trades (maker_order_id);
CREATE INDEX trades_by_taker_order ON trades (taker_order_id);

-- Each batch records `chain_hash`: xxh3-128 over the previous batch's hash and this batch's
-- commands, results and events, which recovery checks by replay. The full `state_hash` is
-- O(state) to compute, so it is kept only where a snapshot is stored (older batches keep
-- theirs).
ALTER TABLE batches ADD COLUMN chain_hash TEXT;  -- 32 hex digits; NULL before this migration
ALTER TABLE batches ALTER COLUMN state_hash DROP NOT NULL;
