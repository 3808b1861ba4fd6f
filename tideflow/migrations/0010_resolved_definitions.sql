-- Resolved definitions (tideflow/references.py): a version keeps the document
-- it was validated as, every external document (functions, events, ...,
-- dataInputSchema) inlined, so every process runs exactly that and fetches
-- nothing again. NULL for versions deployed before: those resolve their
-- source once per process, as they did.

ALTER TABLE tideflow_workflow_versions ADD COLUMN resolved jsonb;
