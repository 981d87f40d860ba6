-- The plugin registry: every version of every plugin (built-ins included), and which version
-- of each plugin is active. Versions are immutable; activations are appended, never updated,
-- so rolling back knows what was active before.

CREATE TABLE plugin_versions (
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    -- validation-policy | type-handler
    world       TEXT NOT NULL,
    -- the WIT package it was built against, e.g. pipewright:plugin@0.1.0
    wit         TEXT NOT NULL,
    -- sha256:<hex> of the component; uploaded components are in the blob store under it,
    -- built-ins are in the binary.
    digest      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    -- the type id a type handler describes
    type_id     TEXT,
    -- JSON {summary, codes} of a policy built against 0.2.0 (its `about`); NULL otherwise
    about       TEXT,
    builtin     BIGINT NOT NULL,
    -- NULL for built-ins
    added_by    TEXT REFERENCES users(id),
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE plugin_activations (
    name        TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    -- NULL: deactivated
    version     TEXT,
    changed_by  TEXT NOT NULL REFERENCES users(id),
    changed_at  BIGINT NOT NULL,
    PRIMARY KEY (name, seq)
);
