-- Splits (cash -> YES + NO) and merges (YES + NO -> cash), one row per command, written by the
-- sequencer in the batch transaction. Positions' average cost replays them with the fills.
CREATE TABLE conversions (
    seq              BIGINT PRIMARY KEY,
    engine_market_id BIGINT NOT NULL,
    engine_user_id   BIGINT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('SPLIT', 'MERGE')),
    qty              BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX conversions_by_user ON conversions (engine_user_id, seq);
