-- Inbound messages acted on, by the provider's id: a provider that posts the same
-- message again (it did not hear our answer) does not make it act twice.
CREATE TABLE inbound_seen (
    provider_id TEXT PRIMARY KEY NOT NULL,
    received    BIGINT NOT NULL
);
