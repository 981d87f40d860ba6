-- The registry's tables. Portable across SQLite and PostgreSQL: ids are TEXT (UUIDs made by the
-- server), times are BIGINT milliseconds since the Unix epoch, JSON is TEXT.
-- Names are stored as given and keyed case-folded (`*_key`).

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    name_key             TEXT NOT NULL UNIQUE,
    personal_account_id  TEXT NOT NULL REFERENCES accounts(id),
    created_at           BIGINT NOT NULL
);

CREATE TABLE account_members (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (account_id, user_id)
);

-- An API token is `pw_<id>_<secret>`; only sha256(secret) is kept.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id),
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    created_at   BIGINT NOT NULL
);

CREATE TABLE pipelines (
    id                TEXT PRIMARY KEY,
    namespace         TEXT NOT NULL,
    namespace_key     TEXT NOT NULL,
    name              TEXT NOT NULL,
    name_key          TEXT NOT NULL,
    pipeline_type     TEXT NOT NULL,
    description       TEXT,
    owner_account_id  TEXT NOT NULL REFERENCES accounts(id),
    created_by        TEXT NOT NULL REFERENCES users(id),
    created_at        BIGINT NOT NULL,
    -- Bumped by every change to the set of versions: registration checks policies against a
    -- snapshot of that set and commits only if it is unchanged (optimistic concurrency).
    versions_revision BIGINT NOT NULL DEFAULT 0,
    UNIQUE (namespace_key, name_key)
);

CREATE TABLE pipeline_versions (
    id               TEXT PRIMARY KEY,
    pipeline_id      TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    version          TEXT NOT NULL,
    version_key      TEXT NOT NULL,
    -- registering | ready | failed
    state            TEXT NOT NULL,
    description      TEXT,
    definition       TEXT NOT NULL,
    content_digest   TEXT,
    -- JSON list of `plugin@version` that approved this version.
    approved_by      TEXT NOT NULL,
    registered_by    TEXT NOT NULL REFERENCES users(id),
    registered_at    BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    attempt_deadline BIGINT,
    retry_until      BIGINT,
    last_error       TEXT,
    finished_at      BIGINT,
    UNIQUE (pipeline_id, version_key)
);

CREATE INDEX pipeline_versions_state ON pipeline_versions (state);

-- The files of a version; contents live in the blob store under their digest.
CREATE TABLE version_files (
    version_id  TEXT NOT NULL REFERENCES pipeline_versions(id) ON DELETE CASCADE,
    path        TEXT NOT NULL,
    digest      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    PRIMARY KEY (version_id, path)
);
