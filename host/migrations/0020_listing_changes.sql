-- Which pipeline each change of a namespace's counter (0004) was about, at the counter's new
-- value, written in the same commit: a server holding a namespace's listing at revision r
-- re-reads only the pipelines changed after r instead of every version of the namespace. One
-- row per pipeline (its last change), so the table grows with pipelines, not with history.
CREATE TABLE pipeline_listing_revisions (
    pipeline_id   TEXT PRIMARY KEY,
    namespace_key TEXT NOT NULL,
    revision      BIGINT NOT NULL
);

CREATE INDEX pipeline_listing_revisions_by_namespace
    ON pipeline_listing_revisions (namespace_key, revision);
