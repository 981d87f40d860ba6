-- Workflows: tasks pinned to versions at submission, run in dependency order, each task's
-- outputs feeding the inputs wired to them. The server running a workflow holds a lease it
-- renews; a workflow whose lease lapsed (its server died) is failed, never left running.

CREATE TABLE workflows (
    id           TEXT PRIMARY KEY,
    name         TEXT,
    submitted_by TEXT NOT NULL REFERENCES users(id),
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    -- pending | running | succeeded | failed
    state        TEXT NOT NULL,
    error        TEXT,
    lease_until  BIGINT,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT
);

CREATE INDEX workflows_state ON workflows (state, lease_until);

CREATE TABLE workflow_tasks (
    workflow_id  TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    -- The order the tasks run in (dependencies first).
    position     BIGINT NOT NULL,
    name         TEXT NOT NULL,
    task_name    TEXT NOT NULL,
    -- Pinned at submission.
    task_version TEXT NOT NULL,
    -- JSON list of {name, value} or {name, source: "task:port"}.
    inputs       TEXT NOT NULL,
    -- pending | running | succeeded | failed | skipped
    state        TEXT NOT NULL,
    -- JSON list of {name, value}.
    outputs      TEXT,
    error        TEXT,
    started_at   BIGINT,
    finished_at  BIGINT,
    PRIMARY KEY (workflow_id, position)
);
