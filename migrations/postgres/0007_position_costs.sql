-- Each position's cost basis and realized profit, in micro-dollars, kept by the sequencer as
-- fills, conversions and settlements commit (reading a position no longer replays the trader's
-- history). NULL marks a row from before this migration: the server computes those once from
-- the committed history at its next start.
ALTER TABLE positions ADD COLUMN yes_cost_micros BIGINT;
ALTER TABLE positions ADD COLUMN no_cost_micros BIGINT;
ALTER TABLE positions ADD COLUMN realized_pnl_micros BIGINT;
