-- The key versions are listed and paged by (`store::precedence`): text whose bytewise order is
-- semver precedence, versions that are not semver first. Computed in Rust (no portable SQL
-- parses semver): rows written before this migration get theirs when the server starts
-- (`Store::connect`), every insert after it writes its own. The index serves `/v1`'s keyset
-- pages: a pipeline's versions in listing order (key, then registration time, then the
-- version's own key, which is unique within the pipeline).
ALTER TABLE pipeline_versions ADD COLUMN precedence_key TEXT;

CREATE INDEX pipeline_versions_by_precedence
    ON pipeline_versions (pipeline_id, precedence_key, registered_at, version_key);

-- The rows still without a key, so that the check at every start reads none of the others (the
-- index is empty once they are filled).
CREATE INDEX pipeline_versions_without_precedence
    ON pipeline_versions (id) WHERE precedence_key IS NULL;
