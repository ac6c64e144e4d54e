-- Up Migration
-- Superusers granted by `quayfleet users create --superuser` (or the API), in addition to the
-- SUPER_USERS list of config.yaml, so a fresh registry gets its first administrator without
-- editing config files.
ALTER TABLE namespace ADD COLUMN superuser boolean NOT NULL DEFAULT false;

-- Down Migration
ALTER TABLE namespace DROP COLUMN superuser;
