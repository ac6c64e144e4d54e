-- Action logs: keyset indexes for listing and export ((account|repository, datetime, id) walks
-- a range in order without re-reading ties), Quay's (performer, datetime) index for the performer
-- filter, and the export bookkeeping the worker needs to report once per export.

-- Up Migration
CREATE INDEX logentry_account_datetime_id ON logentry(account_id, datetime, id);
CREATE INDEX logentry_repository_datetime_id ON logentry(repository_id, datetime, id);
CREATE INDEX logentry_performer_datetime ON logentry(performer_id, datetime);
DROP INDEX logentry_account_datetime;
DROP INDEX logentry_repository_datetime;

ALTER TABLE logexport
  ADD COLUMN namespace_name text,
  ADD COLUMN repository_name text,
  ADD COLUMN location text,
  ADD COLUMN url text,
  ADD COLUMN rows_exported bigint,
  ADD COLUMN bytes_exported bigint,
  ADD COLUMN error text,
  ADD COLUMN finished timestamptz,
  ADD COLUMN callback_sent timestamptz,
  ADD COLUMN email_sent timestamptz;
CREATE INDEX logexport_finished ON logexport(finished) WHERE finished IS NOT NULL;

-- Down Migration
DROP INDEX IF EXISTS logexport_finished;
ALTER TABLE logexport
  DROP COLUMN IF EXISTS namespace_name, DROP COLUMN IF EXISTS repository_name, DROP COLUMN IF EXISTS location,
  DROP COLUMN IF EXISTS url, DROP COLUMN IF EXISTS rows_exported, DROP COLUMN IF EXISTS bytes_exported,
  DROP COLUMN IF EXISTS error, DROP COLUMN IF EXISTS finished, DROP COLUMN IF EXISTS callback_sent, DROP COLUMN IF EXISTS email_sent;
CREATE INDEX IF NOT EXISTS logentry_account_datetime ON logentry(account_id, datetime);
CREATE INDEX IF NOT EXISTS logentry_repository_datetime ON logentry(repository_id, datetime);
DROP INDEX IF EXISTS logentry_performer_datetime;
DROP INDEX IF EXISTS logentry_repository_datetime_id;
DROP INDEX IF EXISTS logentry_account_datetime_id;
