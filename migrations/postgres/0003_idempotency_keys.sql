-- Saved answers of authenticated POSTs sent with an Idempotency-Key, per user. `status` is NULL
-- while the first request is still running; rows older than a day are dropped.
CREATE TABLE idempotency_keys (
    user_id       TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        BIGINT,
    response_body TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
