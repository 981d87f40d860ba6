-- Policy bindings set by operators (over the built-in defaults), and change counters that
-- servers poll to pick up a change made through another replica.

CREATE TABLE policy_bindings (
    -- `global`, `type:<id>`, `namespace:<key>` or `surface:<name>`.
    scope      TEXT PRIMARY KEY,
    -- JSON list of policy plugin names, in order.
    chain      TEXT NOT NULL,
    updated_by TEXT NOT NULL REFERENCES users(id),
    updated_at BIGINT NOT NULL
);

CREATE TABLE change_counters (
    name     TEXT PRIMARY KEY,
    revision BIGINT NOT NULL
);
