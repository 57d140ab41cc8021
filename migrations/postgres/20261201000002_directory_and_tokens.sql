-- A contact kept for the record but reached no more (a replaced mayor): the
-- planner's recipient groups and delivery leave inactive contacts out.
ALTER TABLE contacts ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
-- A token's life: when it was revoked (refused from then on, the row kept for
-- the record), when it expires, and when it was last accepted (written at most
-- once a minute). Instants in milliseconds since the epoch.
ALTER TABLE api_tokens ADD COLUMN revoked BIGINT;
ALTER TABLE api_tokens ADD COLUMN expires BIGINT;
ALTER TABLE api_tokens ADD COLUMN last_used BIGINT;
