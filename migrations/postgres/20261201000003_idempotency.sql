-- The answers to POST requests sent with an `Idempotency-Key` header, so that a
-- client retrying after a timeout gets the first answer again instead of the
-- command running twice. A key belongs to a scope (the API token's id); the
-- fingerprint is a SHA-256 of the method, path and body. `status` is NULL while
-- the first request is still being answered. Instants in milliseconds since the
-- epoch; rows older than a day are deleted as new keys arrive.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    created      BIGINT NOT NULL,
    status       BIGINT,
    content_type TEXT,
    body         TEXT,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created);
