-- The data path. Every read a request or the start-up makes is served by an index: trades by
-- market and time (the 24-hour window rebuilt at start, a gateway's ticker) and by order (an
-- order's fills).
CREATE INDEX trades_by_market_time ON trades (engine_market_id, created_at);
CREATE INDEX trades_by_maker_order ON trades (maker_order_id);
CREATE INDEX trades_by_taker_order ON trades (taker_order_id);

-- Each batch records `chain_hash`: xxh3-128 over the previous batch's hash and this batch's
-- commands, results and events, which recovery checks by replay. The full `state_hash` is
-- O(state) to compute, so it is kept only where a snapshot is stored (older batches keep
-- theirs). SQLite cannot drop a NOT NULL in place, so the table is rebuilt.
CREATE TABLE batches_new (
    last_seq     BIGINT PRIMARY KEY,
    first_seq    BIGINT NOT NULL,
    state_hash   TEXT,            -- engine state hash after last_seq, 32 hex digits, or NULL
    chain_hash   TEXT,            -- 32 hex digits; NULL for batches from before this migration
    committed_at BIGINT NOT NULL
);
INSERT INTO batches_new (last_seq, first_seq, state_hash, committed_at)
    SELECT last_seq, first_seq, state_hash, committed_at FROM batches;
DROP TABLE batches;
ALTER TABLE batches_new RENAME TO batches;
