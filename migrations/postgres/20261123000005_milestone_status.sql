-- The status of each milestone of a plan; a milestone without a row is planned.
-- Every change is also in the ledger, with its note.
CREATE TABLE milestone_status (
    workflow  TEXT NOT NULL,
    milestone TEXT NOT NULL,
    status    TEXT NOT NULL,
    note      TEXT NOT NULL,
    changed   BIGINT NOT NULL,
    PRIMARY KEY (workflow, milestone)
);
