-- Real-time streams. `stream_seqs` holds the last sequence number of every WebSocket topic
-- (`book:<market>`, `trades:<market>`, `ticker:<market>`, `orders:<user>`, ... keyed by UUID),
-- written in the same transaction as the batch that published it, so seqs survive restarts
-- and a read-only gateway can stitch a database snapshot to the stream it relays.
CREATE TABLE stream_seqs (
    topic TEXT PRIMARY KEY,
    seq   BIGINT NOT NULL
);

-- Book snapshots aggregate the resting orders of one market; closed orders are the bulk.
CREATE INDEX orders_resting_by_market ON orders (engine_market_id, price_units)
    WHERE status IN ('OPEN', 'PARTIALLY_FILLED');
