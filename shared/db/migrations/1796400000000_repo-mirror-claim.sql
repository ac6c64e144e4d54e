-- Up Migration
-- Repository mirroring beside Quay's columns:
-- * sync_claim_id: the running sync's own claim token. Quay releases a sync conditioned on
--   sync_transaction_id, which every API edit re-rolls, so an edit mid-sync strands the row in
--   SYNCING (quay/quay#7000). Claims still roll sync_transaction_id as Quay does; the release is
--   conditioned on sync_claim_id, which only a claim sets.
-- * sync_last_error: why the last sync failed (shown in logs and the failure-reason metric).
-- * left_child_id / right_child_id: Quay's unused rule-tree columns, so a Quay dump loads as is.
-- * Credentials keep Quay's sizes (username 4096, password 9000 characters of v0$$ ciphertext).
ALTER TABLE repomirrorconfig
  ADD COLUMN sync_claim_id uuid,
  ADD COLUMN sync_last_error text,
  ADD CONSTRAINT repomirrorconfig_username_size CHECK (octet_length(external_registry_username) <= 4096),
  ADD CONSTRAINT repomirrorconfig_password_size CHECK (octet_length(external_registry_password) <= 9000);
ALTER TABLE repomirrorrule
  ADD COLUMN left_child_id bigint REFERENCES repomirrorrule(id),
  ADD COLUMN right_child_id bigint REFERENCES repomirrorrule(id);
CREATE INDEX repomirrorrule_repository ON repomirrorrule(repository_id);
CREATE INDEX repomirrorconfig_robot ON repomirrorconfig(internal_robot_id) WHERE internal_robot_id IS NOT NULL;

-- Down Migration
DROP INDEX repomirrorconfig_robot;
DROP INDEX repomirrorrule_repository;
ALTER TABLE repomirrorrule DROP COLUMN left_child_id, DROP COLUMN right_child_id;
ALTER TABLE repomirrorconfig DROP CONSTRAINT repomirrorconfig_username_size, DROP CONSTRAINT repomirrorconfig_password_size,
  DROP COLUMN sync_last_error, DROP COLUMN sync_claim_id;
