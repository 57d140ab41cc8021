-- Contacts who answered STOP: no SMS is sent to them until they answer START.
CREATE TABLE sms_stopped (
    contact_id TEXT PRIMARY KEY,
    since      BIGINT NOT NULL
);
-- Answers to meeting invitations (yes / no), by occurrence and contact; the
-- latest answer counts. Every reply is also in the ledger.
CREATE TABLE responses (
    workflow   TEXT NOT NULL,
    occurrence BIGINT NOT NULL,
    contact_id TEXT NOT NULL,
    response   TEXT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (workflow, occurrence, contact_id)
);
