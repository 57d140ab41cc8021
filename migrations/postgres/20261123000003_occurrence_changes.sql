-- One occurrence moved or cancelled by a coordinator. `occurrence` is the nominal
-- start (the key of its timers); `starts_at` the new start, NULL when cancelled;
-- `sequence` the iCalendar SEQUENCE of the latest change (1, 2, ...).
CREATE TABLE occurrence_changes (
    workflow   TEXT NOT NULL,
    occurrence BIGINT NOT NULL,
    starts_at  BIGINT,
    sequence   BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    changed    BIGINT NOT NULL,
    PRIMARY KEY (workflow, occurrence)
);
