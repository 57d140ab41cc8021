-- API bearer tokens: only a SHA-256 of the secret is kept. A token acts with its
-- role (observer, coordinator, administrator) within its scope (a place path, or
-- `national` for everything).
CREATE TABLE api_tokens (
    id      TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    role    TEXT NOT NULL,
    scope   TEXT NOT NULL,
    label   TEXT NOT NULL,
    created BIGINT NOT NULL
);
