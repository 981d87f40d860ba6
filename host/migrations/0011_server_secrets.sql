-- Secrets every replica must share, made once by whichever server starts first (e.g. the key
-- that signs download links). Values are text (hex), the same on SQLite and PostgreSQL.
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
