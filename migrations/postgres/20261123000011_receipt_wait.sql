-- A sent message with a fallback, on a channel whose gateway sends delivery
-- receipts, waits for one until this instant; with none by then it goes once
-- more on the fallback channel. NULL: not waiting.
ALTER TABLE outbox ADD COLUMN awaiting_receipt_until BIGINT;
CREATE INDEX outbox_awaiting_receipt ON outbox (awaiting_receipt_until)
    WHERE awaiting_receipt_until IS NOT NULL;
-- Receipts find their message by the provider's id.
CREATE INDEX outbox_provider_id ON outbox (provider_id) WHERE provider_id IS NOT NULL;
