-- Pointers (Mystic's tags): `namespace/name:pointer` names one version of its pipeline and may be
-- moved to another; a locked one is neither moved nor deleted. A pointer names its version by
-- number, so it keeps naming it when that version is deleted (listed as pointing to a deleted
-- pipeline) and names it again if that number is registered again. A pointer's name is never
-- one of its pipeline's version names, nor the other way round (see registry::pointers).

CREATE TABLE pointers (
    id           TEXT PRIMARY KEY,
    pipeline_id  TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    pointer      TEXT NOT NULL,
    pointer_key  TEXT NOT NULL,
    -- The version it names, as registered and case-folded.
    version      TEXT NOT NULL,
    version_key  TEXT NOT NULL,
    -- 0 or 1.
    locked       BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (pipeline_id, pointer_key)
);
