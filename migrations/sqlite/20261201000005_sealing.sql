-- Encryption at rest (crates/store/src/sealing.rs): the key id and a check
-- value sealed under the key; a rotation under way; the blind indexes of the
-- directory's phones and emails.
CREATE TABLE sealing (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    key_id         TEXT NOT NULL,
    key_check      TEXT NOT NULL,
    rotating_to    TEXT,
    rotating_check TEXT
);
ALTER TABLE contacts ADD COLUMN phone_index TEXT;
ALTER TABLE contacts ADD COLUMN email_index TEXT;
CREATE INDEX contacts_phone_index ON contacts (phone_index);
