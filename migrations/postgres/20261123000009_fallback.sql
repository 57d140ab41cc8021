-- The same message prepared for the contact's next channel: sent once if this
-- one ends as a dead letter (an SMS refused for good goes by email).
ALTER TABLE outbox ADD COLUMN fallback_channel TEXT;
ALTER TABLE outbox ADD COLUMN fallback_subject TEXT;
ALTER TABLE outbox ADD COLUMN fallback_body TEXT;
