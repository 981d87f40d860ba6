-- What a GBDX client follows of a workflow: every task has an id of its own (the key of its
-- output streams' routes) and keeps what it wrote on stdout and stderr; every change of a
-- task's state is an event, in the order it happened. A workflow may now also end `cancelled`
-- or `timed_out`, and so may its tasks.

ALTER TABLE workflow_tasks ADD COLUMN id TEXT;
ALTER TABLE workflow_tasks ADD COLUMN stdout TEXT;
ALTER TABLE workflow_tasks ADD COLUMN stderr TEXT;
-- Tasks of the workflows run before this migration: an id made of their workflow's and place.
UPDATE workflow_tasks SET id = workflow_id || '-' || CAST(position AS TEXT) WHERE id IS NULL;
CREATE UNIQUE INDEX workflow_tasks_id ON workflow_tasks (workflow_id, id);

CREATE TABLE workflow_events (
    -- A UUIDv7: with `at`, the order events happened in.
    id            TEXT PRIMARY KEY,
    workflow_id   TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    task_position BIGINT NOT NULL,
    -- submitted | scheduled | started | succeeded | failed | timed_out | cancelled | skipped
    event         TEXT NOT NULL,
    note          TEXT,
    at            BIGINT NOT NULL
);

CREATE INDEX workflow_events_of ON workflow_events (workflow_id, at, id);

-- Listing and searching an account's workflows, newest first.
CREATE INDEX workflows_of_account ON workflows (account_id, created_at);
