-- The per-pipeline run limit shared by every server on one database: a run holds one of its
-- pipeline's `--max-runs-per-pipeline` slots while it executes. A slot whose lease lapsed (its
-- server stopped) is free again. Used on PostgreSQL, where several replicas share the store.

CREATE TABLE run_slots (
    pipeline_id  TEXT NOT NULL,
    slot         BIGINT NOT NULL,
    holder       TEXT NOT NULL,
    lease_until  BIGINT NOT NULL,
    PRIMARY KEY (pipeline_id, slot)
);
