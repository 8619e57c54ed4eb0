-- predex schema, SQLite flavour. migrations/postgres/0001_init.sql holds the same logical
-- schema. Ids are UUID strings (TEXT), times are microseconds since the Unix epoch (BIGINT),
-- money is integer micro-dollars and prices integer price units: the same columns read back the
-- same way on both databases through sqlx's `Any` driver.

-- Accounts and auth ------------------------------------------------------------------------

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    full_name      TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    -- NULL until the engine's CreateUser for this user is committed (see sequencer).
    engine_user_id BIGINT UNIQUE,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- A login session: one family of rotating refresh tokens. Access tokens name it (`sid`), so
-- revoking it (logout, refresh-token reuse) cuts them off at once.
CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_by_user ON api_keys (user_id, created_at);

-- The sequencer ----------------------------------------------------------------------------

-- Every command the engine applied, accepted or rejected, in order (rejected commands still
-- advance the engine's clock, so replay needs them too).
CREATE TABLE journal (
    seq        BIGINT PRIMARY KEY,
    ts_micros  BIGINT NOT NULL,
    command    TEXT NOT NULL,   -- engine::Command as JSON
    result     TEXT NOT NULL,   -- 'OK' or the engine's reject code
    -- JSON the server attached: the UUID a CreateUser/CreateMarket maps to (the id mapping is
    -- journaled) and a market's question and description, which the engine does not keep
    subject    TEXT
);

-- One row per committed batch, written in the batch's transaction.
CREATE TABLE batches (
    last_seq     BIGINT PRIMARY KEY,
    first_seq    BIGINT NOT NULL,
    state_hash   TEXT NOT NULL,   -- engine state hash after last_seq, 32 hex digits
    committed_at BIGINT NOT NULL
);

CREATE TABLE snapshots (
    seq            BIGINT PRIMARY KEY,
    state_hash     TEXT NOT NULL,
    format_version BIGINT NOT NULL,
    data           BLOB  NOT NULL,  -- postcard-encoded engine::Snapshot
    created_at     BIGINT NOT NULL
);

-- Projections (written only by the sequencer, in the batch transaction) ---------------------

CREATE TABLE accounts (
    engine_user_id   BIGINT PRIMARY KEY,
    user_id          TEXT NOT NULL UNIQUE REFERENCES users (id),
    available_micros BIGINT NOT NULL,
    locked_micros    BIGINT NOT NULL,
    updated_seq      BIGINT NOT NULL
);

CREATE TABLE markets (
    engine_market_id BIGINT PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    slug             TEXT NOT NULL UNIQUE,
    question         TEXT NOT NULL,
    description      TEXT NOT NULL,
    tick_units       BIGINT NOT NULL,
    qty_min          BIGINT NOT NULL,
    qty_max          BIGINT NOT NULL,
    maker_fee_bps    BIGINT NOT NULL,
    taker_fee_bps    BIGINT NOT NULL,
    closes_at        BIGINT,
    state            TEXT NOT NULL,
    resolution       TEXT,
    yes_payout_units BIGINT,
    created_at       BIGINT NOT NULL,
    updated_seq      BIGINT NOT NULL
);

CREATE TABLE orders (
    engine_order_id       BIGINT PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
    engine_user_id        BIGINT NOT NULL,
    engine_market_id      BIGINT NOT NULL,
    client_order_id       TEXT,
    side                  TEXT NOT NULL,
    outcome               TEXT NOT NULL,
    order_type            TEXT NOT NULL,
    time_in_force         TEXT NOT NULL,
    self_trade_prevention TEXT NOT NULL,
    post_only             BOOLEAN NOT NULL,
    reduce_only           BOOLEAN NOT NULL,
    price_units           BIGINT NOT NULL,
    qty                   BIGINT NOT NULL,
    filled_qty            BIGINT NOT NULL,
    remaining_qty         BIGINT NOT NULL,
    -- sum of qty * price over fills, in the order's own outcome, in price units
    filled_notional_units BIGINT NOT NULL,
    fee_micros            BIGINT NOT NULL,
    status                TEXT NOT NULL,
    cancel_reason         TEXT,
    expires_at            BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    created_seq           BIGINT NOT NULL,
    updated_seq           BIGINT NOT NULL
);
CREATE INDEX orders_by_user ON orders (engine_user_id, engine_order_id);
CREATE INDEX orders_by_market ON orders (engine_market_id, engine_order_id);

CREATE TABLE trades (
    engine_trade_id  BIGINT PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    seq              BIGINT NOT NULL,
    engine_market_id BIGINT NOT NULL,
    maker_order_id   BIGINT NOT NULL,
    taker_order_id   BIGINT NOT NULL,
    maker_user_id    BIGINT NOT NULL,
    taker_user_id    BIGINT NOT NULL,
    price_units      BIGINT NOT NULL,  -- YES price
    qty              BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    taker_side       TEXT NOT NULL,    -- in YES terms
    maker_fee_micros BIGINT NOT NULL,
    taker_fee_micros BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX trades_by_market ON trades (engine_market_id, engine_trade_id);
CREATE INDEX trades_by_maker ON trades (maker_user_id, engine_trade_id);
CREATE INDEX trades_by_taker ON trades (taker_user_id, engine_trade_id);

CREATE TABLE positions (
    engine_market_id BIGINT NOT NULL,
    engine_user_id   BIGINT NOT NULL,
    yes_free         BIGINT NOT NULL,
    yes_reserved     BIGINT NOT NULL,
    no_free          BIGINT NOT NULL,
    no_reserved      BIGINT NOT NULL,
    updated_seq      BIGINT NOT NULL,
    PRIMARY KEY (engine_market_id, engine_user_id)
);
CREATE INDEX positions_by_user ON positions (engine_user_id);

CREATE TABLE transfers (
    id             TEXT PRIMARY KEY,
    seq            BIGINT NOT NULL,
    engine_user_id BIGINT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('DEPOSIT', 'WITHDRAWAL', 'FAUCET')),
    amount_micros  BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX transfers_by_user ON transfers (engine_user_id, seq);

CREATE TABLE settlements (
    engine_market_id BIGINT NOT NULL,
    engine_user_id   BIGINT NOT NULL,
    seq              BIGINT NOT NULL,
    yes_shares       BIGINT NOT NULL,
    no_shares        BIGINT NOT NULL,
    payout_micros    BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (engine_market_id, engine_user_id)
);
CREATE INDEX settlements_by_user ON settlements (engine_user_id, seq);
