-- Exported action-log files are removed after a retention (Quay never removes them). The export
-- records its file's key before writing it and when the file expires, so the sweep reads only
-- due rows from this partial index and never lists the storage.

-- Up Migration
ALTER TABLE logexport
  ADD COLUMN expires_at timestamptz,
  ADD COLUMN removed timestamptz;
-- Exports finished before this migration get Quay's default link lifetime (EXPORT_ACTION_LOGS_SECONDS, 3600 s).
UPDATE logexport SET expires_at = COALESCE(finished, created) + interval '3600 seconds' WHERE result_key IS NOT NULL;
CREATE INDEX logexport_due_removal ON logexport(expires_at) WHERE result_key IS NOT NULL AND removed IS NULL;
-- The /exportedlogs route finds a file's row by its key.
CREATE INDEX logexport_result_key ON logexport(result_key) WHERE result_key IS NOT NULL;

-- Down Migration
DROP INDEX IF EXISTS logexport_result_key;
DROP INDEX IF EXISTS logexport_due_removal;
ALTER TABLE logexport DROP COLUMN IF EXISTS removed, DROP COLUMN IF EXISTS expires_at;
