-- Files uploaded through `/v4/files` (and its `/v3` aliases), each owned by the account that
-- uploaded it. A run's file input may name only an upload of the caller's account or a file of
-- a version the caller may read; quotas count these rows; unreferenced ones expire.

CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    digest      TEXT NOT NULL,
    name        TEXT NOT NULL,
    size        BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL REFERENCES users(id),
    created_at  BIGINT NOT NULL
);

CREATE INDEX uploads_by_digest ON uploads (digest, account_id);
CREATE INDEX uploads_by_age ON uploads (created_at);
CREATE INDEX uploads_by_account ON uploads (account_id);

-- Which versions hold a blob: what a run's file input and the upload sweep ask.
CREATE INDEX version_files_digest ON version_files (digest);
