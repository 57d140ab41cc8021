-- The durable runtime. Instants are milliseconds since the Unix epoch (UTC).

-- How far each workflow has been planned, and from which definition.
CREATE TABLE schedules (
    workflow        TEXT PRIMARY KEY NOT NULL,
    definition_hash TEXT NOT NULL,
    planned_until   BIGINT NOT NULL
);

-- "Run step S of occurrence O of workflow W at time T". The id is the idempotency
-- key workflow|occurrence|step: planning the same slot twice is a no-op.
-- state: pending | fired | skipped | cancelled
CREATE TABLE timers (
    id          TEXT PRIMARY KEY NOT NULL,
    workflow    TEXT NOT NULL,
    occurrence  BIGINT NOT NULL,
    step        TEXT NOT NULL,
    due         BIGINT NOT NULL,
    state       TEXT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    updated     BIGINT NOT NULL
);
-- Partial indexes hold only the work still to do: a timer that fires leaves the
-- index instead of moving inside it, and claiming scans only what is pending.
CREATE INDEX timers_pending ON timers (due) WHERE state = 'pending';
CREATE INDEX timers_workflow ON timers (workflow, step, due);

-- Messages to deliver. The id is the idempotency key
-- workflow|occurrence|step|contact|channel. Addresses are not copied here: they
-- are read from contacts at delivery time.
-- state: queued | sent | dead
CREATE TABLE outbox (
    id           TEXT PRIMARY KEY NOT NULL,
    timer_id     TEXT NOT NULL,
    workflow     TEXT NOT NULL,
    occurrence   BIGINT NOT NULL,
    step         TEXT NOT NULL,
    contact_id   TEXT NOT NULL,
    channel      TEXT NOT NULL,
    language     TEXT NOT NULL,
    subject      TEXT,
    body         TEXT NOT NULL,
    calendar     TEXT,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    next_attempt BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    provider_id  TEXT,
    last_error   TEXT,
    created      BIGINT NOT NULL,
    updated      BIGINT NOT NULL
);
CREATE INDEX outbox_ready ON outbox (next_attempt) WHERE state = 'queued';

-- Append-only record of everything that happened, with its reason.
CREATE TABLE ledger (
    seq BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,
    event      TEXT NOT NULL,
    workflow   TEXT,
    occurrence BIGINT,
    step       TEXT,
    contact_id TEXT,
    channel    TEXT,
    detail     TEXT NOT NULL
);
CREATE INDEX ledger_workflow ON ledger (workflow, occurrence);
