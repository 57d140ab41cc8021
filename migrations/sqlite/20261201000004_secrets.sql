-- Secrets the server makes for itself once and keeps: the key that signs the
-- answer links of emails (`answer-links`). Never shown, never logged.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
