-- Dashboard sessions: a signed-in browser, for the token it signed in with.
-- Only a SHA-256 of the cookie's secret is kept; `csrf` is the secret its forms
-- carry. A session ends at `expires`, at sign-out, or when its token is revoked
-- or expires (the token is checked on every request).
CREATE TABLE web_sessions (
    id_sha256 TEXT PRIMARY KEY,
    token_id  TEXT NOT NULL,
    csrf      TEXT NOT NULL,
    created   BIGINT NOT NULL,
    expires   BIGINT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires);
