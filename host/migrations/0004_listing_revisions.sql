-- A counter per namespace, bumped in the same commit as any change to the set or the states of
-- its versions: a server caches a namespace's listing and re-reads it only when the counter
-- moved (one indexed read instead of every version row).
CREATE TABLE namespace_revisions (
    namespace_key TEXT PRIMARY KEY,
    revision      BIGINT NOT NULL
);
