-- Sessions of the web console (`console`): a person signs in with an API token and gets a
-- cookie holding a random secret; only sha256(secret) is stored, as for tokens. The session
-- acts as the token it was opened with (so it ends with that token, when tokens can end), and
-- carries the token that every form it posts must send back (CSRF). Kept in the store, not in
-- a signed cookie, so that signing out ends the session on every replica at once.
CREATE TABLE console_sessions (
    secret_hash TEXT PRIMARY KEY,
    token_id    TEXT NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
