-- The ML Workbench's records (the Acumos surface): projects, and pipeline records that, unlike
-- registry versions, may be renamed, re-versioned, archived and shared with collaborators.
-- Same conventions as 0001: TEXT ids, BIGINT milliseconds, names keyed case-folded.

CREATE TABLE projects (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL,
    description   TEXT,
    owner_user_id TEXT NOT NULL REFERENCES users(id),
    created_at    BIGINT NOT NULL,
    UNIQUE (owner_user_id, name_key)
);

CREATE TABLE workbench_pipelines (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    name_key         TEXT NOT NULL,
    -- The version label is optional on this surface; `version_key` is '' when it is absent so
    -- that the uniqueness rule below also holds for unversioned pipelines.
    version          TEXT,
    version_key      TEXT NOT NULL,
    pipeline_type    TEXT NOT NULL,
    kernel_type      TEXT,
    description      TEXT,
    owner_user_id    TEXT NOT NULL REFERENCES users(id),
    -- The owner's personal account at creation: its members may act on the pipeline.
    owner_account_id TEXT NOT NULL REFERENCES accounts(id),
    project_id       TEXT REFERENCES projects(id),
    -- ACTIVE | ARCHIVED
    artifact_status  TEXT NOT NULL,
    repository_url   TEXT NOT NULL,
    service_url      TEXT,
    -- JSON list of `plugin@version` of the policies that approved the current name and version.
    approved_by      TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    modified_at      BIGINT NOT NULL,
    UNIQUE (owner_user_id, name_key, version_key)
);

CREATE INDEX workbench_pipelines_project ON workbench_pipelines (project_id);

CREATE TABLE workbench_collaborators (
    pipeline_id TEXT NOT NULL REFERENCES workbench_pipelines(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id),
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (pipeline_id, user_id)
);

-- The names and versions a pipeline had before an update renamed or re-versioned it.
CREATE TABLE workbench_history (
    id          TEXT PRIMARY KEY,
    pipeline_id TEXT NOT NULL REFERENCES workbench_pipelines(id) ON DELETE CASCADE,
    -- 1, 2, ... per pipeline: the order of changes, even within one millisecond.
    position    BIGINT NOT NULL,
    name        TEXT NOT NULL,
    version     TEXT,
    description TEXT,
    changed_by  TEXT NOT NULL REFERENCES users(id),
    changed_at  BIGINT NOT NULL
);

CREATE UNIQUE INDEX workbench_history_pipeline ON workbench_history (pipeline_id, position);
