-- Runs of runnable pipelines (`/v4/runs`): inputs, state, outputs or error, timings. The server
-- executing a run holds a lease it renews; a run whose lease lapsed (its server stopped) is
-- failed by a sweep, never left running.

CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    pipeline_id  TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    version      TEXT NOT NULL,
    submitted_by TEXT NOT NULL REFERENCES users(id),
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    -- created | running | completed | failed | no_resources_available
    state        TEXT NOT NULL,
    -- JSON: the inputs as the client sent them.
    inputs       TEXT NOT NULL,
    -- JSON list of outputs.
    outputs      TEXT,
    -- JSON {type, message}.
    error        TEXT,
    lease_until  BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    finished_at  BIGINT
);

CREATE INDEX runs_state ON runs (state, lease_until);
