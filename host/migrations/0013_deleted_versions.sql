-- The versions deleted from a pipeline, with when each was first registered. GBDX's rule: "once
-- a task is deleted, it can be re-registered using the same version number". Registering a
-- deleted number again is judged against the versions that preceded it when it was first
-- registered, so a later version does not make it "not incremented".

CREATE TABLE deleted_versions (
    pipeline_id   TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    version_key   TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    PRIMARY KEY (pipeline_id, version_key)
);
