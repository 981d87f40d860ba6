-- A workbench pipeline may belong to several projects (the Acumos seed keeps a pipeline "under
-- /pipelines/{uuid}" because "a pipeline may belong to multiple projects"): one row per
-- association, gone with the pipeline or the project.
CREATE TABLE workbench_project_pipelines (
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    pipeline_id TEXT NOT NULL REFERENCES workbench_pipelines(id) ON DELETE CASCADE,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (project_id, pipeline_id)
);

CREATE INDEX workbench_project_pipelines_pipeline ON workbench_project_pipelines (pipeline_id);

INSERT INTO workbench_project_pipelines (project_id, pipeline_id, added_at)
    SELECT project_id, id, modified_at FROM workbench_pipelines WHERE project_id IS NOT NULL;

-- `workbench_pipelines.project_id` (one project at most) is neither read nor written any more.
-- It stays, emptied, because SQLite cannot drop a column that a foreign key names.
DROP INDEX workbench_pipelines_project;
UPDATE workbench_pipelines SET project_id = NULL;
