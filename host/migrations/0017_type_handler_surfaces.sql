-- A type handler built against pipewright:plugin@0.3.0 says which surfaces besides /v1 offer its
-- type (`surfaces.served`): kept with each plugin version, as a JSON list of surface names
-- (`["acumos"]`). NULL for policies and for handlers of an older contract, which declare none.
ALTER TABLE plugin_versions ADD COLUMN surfaces TEXT;
