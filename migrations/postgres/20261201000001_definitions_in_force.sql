-- The definitions the engine runs on: the last valid copy of the workflows
-- folder (so that a restart on a folder that has become invalid still runs every
-- commune), and whether the folder itself is invalid, since when and why.
CREATE TABLE definitions_in_force (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint   TEXT NOT NULL,
    taken         BIGINT NOT NULL,
    -- JSON: [{"path": "meetings/koro.yaml", "text": "..."}], paths relative to the folder.
    files         TEXT NOT NULL,
    invalid_since BIGINT,
    problems      TEXT NOT NULL DEFAULT ''
);
