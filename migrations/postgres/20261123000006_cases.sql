-- Disputes climbing an escalation ladder. The description stays here: messages
-- carry the case id and category only. Every action is also in the ledger
-- (workflow = the ladder, step = the case id or one of its deadlines).
CREATE TABLE cases (
    id          TEXT PRIMARY KEY,
    workflow    TEXT NOT NULL,
    category    TEXT NOT NULL,
    place       TEXT NOT NULL,
    parties     TEXT NOT NULL,
    severity    BIGINT NOT NULL,
    description TEXT NOT NULL,
    level       BIGINT NOT NULL,
    state       TEXT NOT NULL,
    opened      BIGINT NOT NULL,
    updated     BIGINT NOT NULL
);
CREATE INDEX cases_workflow ON cases (workflow, opened);
