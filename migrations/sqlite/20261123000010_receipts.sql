-- What the provider last reported about a sent message (delivery receipt):
-- `delivered`, `failed`, or its own status word when it is neither.
ALTER TABLE outbox ADD COLUMN receipt TEXT;
