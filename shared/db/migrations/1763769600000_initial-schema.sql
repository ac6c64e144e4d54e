-- Up Migration
-- The whole schema quayfleet needs, modelled on Quay's tables (data/database.py). Table and column
-- names follow Quay's so operators' SQL runbooks keep working; where quayfleet differs (one
-- imagestorage row per digest, a durable pending-deletion table, the outbox) the comment says why.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Users, organizations and robots share one table, as in Quay ("user"; here "namespace" because
-- "user" is a reserved word). Robots are named "<namespace>+<shortname>".
CREATE TABLE namespace (
  id bigserial PRIMARY KEY,
  username text NOT NULL UNIQUE,
  email text,
  password_hash text,
  organization boolean NOT NULL DEFAULT false,
  robot boolean NOT NULL DEFAULT false,
  enabled boolean NOT NULL DEFAULT true,
  -- Time machine window of this namespace: how long an ended tag stays restorable.
  removed_tag_expiration_s bigint NOT NULL DEFAULT 1209600,
  -- A namespace being purged is hidden from every lookup but keeps its row until the purge ends.
  deleted boolean NOT NULL DEFAULT false,
  creation_date timestamptz NOT NULL DEFAULT now(),
  CHECK (NOT (organization AND robot))
);
CREATE INDEX namespace_username_trgm ON namespace USING gin (username gin_trgm_ops);

-- Robot tokens and app-specific tokens are stored hashed; the prefix finds the row.
CREATE TABLE robotaccounttoken (
  id bigserial PRIMARY KEY,
  robot_account_id bigint NOT NULL UNIQUE REFERENCES namespace(id) ON DELETE CASCADE,
  token_hash text NOT NULL,
  created timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE appspecificauthtoken (
  id bigserial PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
  uuid uuid NOT NULL UNIQUE,
  title text NOT NULL,
  token_name text NOT NULL UNIQUE,
  token_secret_hash text NOT NULL,
  created timestamptz NOT NULL DEFAULT now(),
  expiration timestamptz,
  last_accessed timestamptz
);

-- Organization membership: teams with a role (admin = owners, creator may create repositories,
-- member reads only what it is granted).
CREATE TABLE team (
  id bigserial PRIMARY KEY,
  organization_id bigint NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('admin', 'creator', 'member')),
  description text NOT NULL DEFAULT '',
  UNIQUE (organization_id, name)
);

CREATE TABLE teammember (
  id bigserial PRIMARY KEY,
  team_id bigint NOT NULL REFERENCES team(id) ON DELETE CASCADE,
  user_id bigint NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
  UNIQUE (team_id, user_id)
);
CREATE INDEX teammember_user ON teammember(user_id);

-- Repository state values are Quay's RepositoryState enum.
CREATE TABLE repository (
  id bigserial PRIMARY KEY,
  namespace_user_id bigint NOT NULL REFERENCES namespace(id),
  name text NOT NULL,
  visibility text NOT NULL DEFAULT 'private' CHECK (visibility IN ('public', 'private')),
  kind text NOT NULL DEFAULT 'image',
  -- 0 NORMAL, 1 READ_ONLY, 2 MIRROR, 3 MARKED_FOR_DELETION, 4 ORG_MIRROR
  state smallint NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 4),
  description text,
  created timestamptz NOT NULL DEFAULT now(),
  UNIQUE (namespace_user_id, name)
);
CREATE INDEX repository_name_trgm ON repository USING gin (name gin_trgm_ops);

CREATE TABLE repositorypermission (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
  user_id bigint REFERENCES namespace(id) ON DELETE CASCADE,
  team_id bigint REFERENCES team(id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('read', 'write', 'admin')),
  CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX repositorypermission_user ON repositorypermission(repository_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX repositorypermission_team ON repositorypermission(repository_id, team_id) WHERE team_id IS NOT NULL;
CREATE INDEX repositorypermission_user_id ON repositorypermission(user_id);

-- Two-step delete markers: the row exists while the purge is pending; a missing marker means done.
CREATE TABLE deletednamespace (
  id bigserial PRIMARY KEY,
  namespace_id bigint NOT NULL UNIQUE REFERENCES namespace(id),
  marked timestamptz NOT NULL DEFAULT now(),
  original_username text NOT NULL,
  original_email text,
  queue_id text
);
-- A namespace name stays reserved until its purge finishes.
CREATE UNIQUE INDEX deletednamespace_original_username ON deletednamespace(original_username);

CREATE TABLE deletedrepository (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL UNIQUE REFERENCES repository(id),
  marked timestamptz NOT NULL DEFAULT now(),
  original_name text NOT NULL,
  queue_id text
);

-- Storage: one imagestorage row per content digest (Quay allows duplicates; a unique digest makes
-- the push path and GC agree on exactly one row to lock and re-check).
CREATE TABLE imagestoragelocation (
  id serial PRIMARY KEY,
  name text NOT NULL UNIQUE
);

CREATE TABLE imagestorage (
  id bigserial PRIMARY KEY,
  uuid uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  content_checksum text NOT NULL UNIQUE,
  image_size bigint NOT NULL CHECK (image_size >= 0),
  uncompressed_size bigint,
  uploading boolean NOT NULL DEFAULT false,
  cas_path boolean NOT NULL DEFAULT true,
  created timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE imagestorageplacement (
  id bigserial PRIMARY KEY,
  storage_id bigint NOT NULL REFERENCES imagestorage(id) ON DELETE CASCADE,
  location_id integer NOT NULL REFERENCES imagestoragelocation(id),
  UNIQUE (storage_id, location_id)
);
CREATE INDEX imagestorageplacement_location ON imagestorageplacement(location_id);

-- Namespace-level extra replication targets (Quay's userregion).
CREATE TABLE userregion (
  id bigserial PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
  location_id integer NOT NULL REFERENCES imagestoragelocation(id),
  UNIQUE (user_id, location_id)
);

-- Manifests keep their exact bytes: the digest is over them.
CREATE TABLE manifest (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repository(id),
  digest text NOT NULL,
  media_type text NOT NULL,
  manifest_bytes bytea NOT NULL,
  config_media_type text,
  artifact_type text,
  -- Digest of the manifest this one refers to (OCI 1.1 subject), for the referrers API.
  subject text,
  layers_compressed_size bigint,
  created timestamptz NOT NULL DEFAULT now(),
  UNIQUE (repository_id, digest)
);
CREATE INDEX manifest_repository_subject ON manifest(repository_id, subject) WHERE subject IS NOT NULL;

CREATE TABLE manifestblob (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repository(id),
  manifest_id bigint NOT NULL REFERENCES manifest(id),
  blob_id bigint NOT NULL REFERENCES imagestorage(id),
  UNIQUE (manifest_id, blob_id)
);
CREATE INDEX manifestblob_blob ON manifestblob(blob_id);
CREATE INDEX manifestblob_repository_blob ON manifestblob(repository_id, blob_id);

CREATE TABLE manifestchild (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repository(id),
  manifest_id bigint NOT NULL REFERENCES manifest(id),
  child_manifest_id bigint NOT NULL REFERENCES manifest(id),
  UNIQUE (manifest_id, child_manifest_id)
);
CREATE INDEX manifestchild_child ON manifestchild(child_manifest_id);
CREATE INDEX manifestchild_repository ON manifestchild(repository_id);

CREATE TABLE label (
  id bigserial PRIMARY KEY,
  uuid uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  key text NOT NULL,
  value text NOT NULL,
  media_type text NOT NULL DEFAULT 'text/plain',
  source_type text NOT NULL DEFAULT 'manifest'
);

CREATE TABLE manifestlabel (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repository(id),
  manifest_id bigint NOT NULL REFERENCES manifest(id),
  label_id bigint NOT NULL REFERENCES label(id),
  UNIQUE (manifest_id, label_id)
);
CREATE INDEX manifestlabel_repository ON manifestlabel(repository_id);

-- Tags with lifetimes (Quay's time machine): an alive tag has lifetime_end_ms NULL; moving or
-- deleting a tag ends its row and (for a move) starts a new one.
CREATE TABLE tag (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  repository_id bigint NOT NULL REFERENCES repository(id),
  manifest_id bigint REFERENCES manifest(id),
  lifetime_start_ms bigint NOT NULL,
  lifetime_end_ms bigint,
  hidden boolean NOT NULL DEFAULT false,
  immutable boolean NOT NULL DEFAULT false,
  reversion boolean NOT NULL DEFAULT false,
  tag_kind text NOT NULL DEFAULT 'tag',
  linked_tag_id bigint REFERENCES tag(id),
  UNIQUE (repository_id, name, lifetime_end_ms)
);
-- At most one alive row per (repository, name); NULLs are distinct in the UNIQUE above.
CREATE UNIQUE INDEX tag_alive ON tag(repository_id, name) WHERE lifetime_end_ms IS NULL;
CREATE INDEX tag_repository_end ON tag(repository_id, lifetime_end_ms);
CREATE INDEX tag_manifest_end ON tag(manifest_id, lifetime_end_ms);
CREATE INDEX tag_end ON tag(lifetime_end_ms) WHERE lifetime_end_ms IS NOT NULL;

-- Upload leases: a blob pushed to a repository is protected from GC until expires_at even before a
-- manifest references it.
CREATE TABLE uploadedblob (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repository(id),
  blob_id bigint NOT NULL REFERENCES imagestorage(id),
  uploaded_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX uploadedblob_expires ON uploadedblob(expires_at);
CREATE INDEX uploadedblob_blob ON uploadedblob(blob_id);
CREATE INDEX uploadedblob_repository ON uploadedblob(repository_id);

-- Upload sessions survive a front-end restart: state here, bytes in storage.
CREATE TABLE blobupload (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repository(id),
  uuid uuid NOT NULL UNIQUE,
  byte_count bigint NOT NULL DEFAULT 0,
  -- Serialized running digest state, so a session resumes without re-reading its bytes.
  sha_state bytea,
  location_id integer NOT NULL REFERENCES imagestoragelocation(id),
  -- Driver state of the multipart write (upload id, parts written, buffered tail key).
  storage_metadata jsonb NOT NULL DEFAULT '{}',
  chunk_count integer NOT NULL DEFAULT 0,
  created timestamptz NOT NULL DEFAULT now(),
  updated timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX blobupload_created ON blobupload(created);
CREATE INDEX blobupload_repository ON blobupload(repository_id);

-- Storage objects are deleted only after their rows, through this durable record (Quay deletes
-- best-effort after commit and leaks on any storage error).
CREATE TABLE pendingstoragedeletion (
  id bigserial PRIMARY KEY,
  location_id integer NOT NULL REFERENCES imagestoragelocation(id),
  content_checksum text NOT NULL,
  object_key text NOT NULL,
  size_bytes bigint NOT NULL DEFAULT 0,
  created timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  UNIQUE (location_id, object_key)
);
CREATE INDEX pendingstoragedeletion_checksum ON pendingstoragedeletion(content_checksum);

-- Quota (Quay's tables; sizes in bytes).
CREATE TABLE quotatype (
  id serial PRIMARY KEY,
  name text NOT NULL UNIQUE
);
INSERT INTO quotatype (name) VALUES ('Warning'), ('Reject');

CREATE TABLE userorganizationquota (
  id bigserial PRIMARY KEY,
  namespace_id bigint NOT NULL UNIQUE REFERENCES namespace(id) ON DELETE CASCADE,
  limit_bytes bigint NOT NULL CHECK (limit_bytes > 0)
);

CREATE TABLE quotalimits (
  id bigserial PRIMARY KEY,
  quota_id bigint NOT NULL REFERENCES userorganizationquota(id) ON DELETE CASCADE,
  quota_type_id integer NOT NULL REFERENCES quotatype(id),
  percent_of_limit integer NOT NULL CHECK (percent_of_limit BETWEEN 1 AND 100)
);
CREATE INDEX quotalimits_quota ON quotalimits(quota_id);

CREATE TABLE quotanamespacesize (
  id bigserial PRIMARY KEY,
  namespace_user_id bigint NOT NULL UNIQUE REFERENCES namespace(id) ON DELETE CASCADE,
  size_bytes bigint NOT NULL DEFAULT 0,
  backfill_start_ms bigint,
  backfill_complete boolean NOT NULL DEFAULT false
);
CREATE INDEX quotanamespacesize_size ON quotanamespacesize(size_bytes);

CREATE TABLE quotarepositorysize (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL UNIQUE REFERENCES repository(id) ON DELETE CASCADE,
  size_bytes bigint NOT NULL DEFAULT 0,
  backfill_start_ms bigint,
  backfill_complete boolean NOT NULL DEFAULT false
);

CREATE TABLE quotaregistrysize (
  id serial PRIMARY KEY,
  size_bytes bigint NOT NULL DEFAULT 0,
  running boolean NOT NULL DEFAULT false,
  queued boolean NOT NULL DEFAULT false,
  completed_ms bigint
);

CREATE TABLE quotanotificationstate (
  id bigserial PRIMARY KEY,
  namespace_id bigint NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
  threshold_percent integer NOT NULL,
  last_notified_at timestamptz,
  cleared boolean NOT NULL DEFAULT true,
  UNIQUE (namespace_id, threshold_percent)
);

-- Repository mirroring (Quay's repomirrorrule / repomirrorconfig; sync_status uses Quay's numbers).
CREATE TABLE repomirrorrule (
  id bigserial PRIMARY KEY,
  uuid uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  repository_id bigint NOT NULL REFERENCES repository(id),
  creation_date timestamptz NOT NULL DEFAULT now(),
  rule_type smallint NOT NULL DEFAULT 1,
  rule_value jsonb NOT NULL
);

CREATE TABLE repomirrorconfig (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL UNIQUE REFERENCES repository(id),
  creation_date timestamptz NOT NULL DEFAULT now(),
  is_enabled boolean NOT NULL DEFAULT true,
  mirror_type smallint NOT NULL DEFAULT 1,
  internal_robot_id bigint REFERENCES namespace(id),
  external_reference text NOT NULL,
  external_registry_username text,
  external_registry_password text,
  external_registry_config jsonb NOT NULL DEFAULT '{}',
  architecture_filter jsonb NOT NULL DEFAULT '[]',
  sync_interval integer NOT NULL,
  sync_start_date timestamptz,
  sync_expiration_date timestamptz,
  sync_retries_remaining integer NOT NULL DEFAULT 3,
  -- -2 CANCEL, -1 FAIL, 0 NEVER_RUN, 1 SUCCESS, 2 SYNCING, 3 SYNC_NOW
  sync_status smallint NOT NULL DEFAULT 0,
  sync_transaction_id uuid NOT NULL DEFAULT gen_random_uuid(),
  root_rule_id bigint REFERENCES repomirrorrule(id),
  skopeo_timeout bigint NOT NULL DEFAULT 300
);
CREATE INDEX repomirrorconfig_due ON repomirrorconfig(sync_status, sync_start_date);

-- Action logs (Quay's logentry3; kind is the log kind name itself).
CREATE TABLE logentry (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  account_id bigint,
  performer_id bigint,
  repository_id bigint,
  datetime timestamptz NOT NULL DEFAULT now(),
  ip text,
  metadata_json jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX logentry_account_datetime ON logentry(account_id, datetime);
CREATE INDEX logentry_repository_datetime ON logentry(repository_id, datetime);
CREATE INDEX logentry_datetime ON logentry(datetime);

CREATE TABLE logexport (
  id bigserial PRIMARY KEY,
  export_id uuid NOT NULL UNIQUE,
  namespace_id bigint,
  repository_id bigint,
  requested_by bigint,
  start_time timestamptz NOT NULL,
  end_time timestamptz NOT NULL,
  callback_url text,
  callback_email text,
  status text NOT NULL DEFAULT 'queued',
  result_key text,
  created timestamptz NOT NULL DEFAULT now()
);

-- Repository and namespace notifications (event and method stored by name).
CREATE TABLE repositorynotification (
  id bigserial PRIMARY KEY,
  uuid uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  repository_id bigint NOT NULL REFERENCES repository(id),
  event text NOT NULL,
  method text NOT NULL,
  title text,
  config_json jsonb NOT NULL DEFAULT '{}',
  event_config_json jsonb NOT NULL DEFAULT '{}',
  number_of_failures integer NOT NULL DEFAULT 0,
  last_ran_ms bigint
);
CREATE INDEX repositorynotification_repository_event ON repositorynotification(repository_id, event);

CREATE TABLE namespacenotification (
  id bigserial PRIMARY KEY,
  uuid uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  namespace_id bigint NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
  event text NOT NULL,
  method text NOT NULL,
  title text,
  config_json jsonb NOT NULL DEFAULT '{}',
  event_config_json jsonb NOT NULL DEFAULT '{}',
  number_of_failures integer NOT NULL DEFAULT 0,
  last_ran_ms bigint
);

-- The transactional outbox: job intents written in the same transaction as the change that causes
-- them; the relay publishes them to BullMQ with job_id as the dedupe id, then deletes them.
CREATE TABLE outbox (
  id bigserial PRIMARY KEY,
  queue_name text NOT NULL,
  job_id text NOT NULL,
  payload jsonb NOT NULL,
  -- The job becomes runnable at this instant (BullMQ delay), e.g. when a tag leaves the time machine.
  run_at timestamptz NOT NULL DEFAULT now(),
  created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_created ON outbox(id);

-- Wakes the relay without polling: every insert into the outbox notifies its listeners.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('quayfleet_outbox', '');
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Down Migration
DROP TABLE IF EXISTS outbox, namespacenotification, repositorynotification, logexport, logentry,
  repomirrorconfig, repomirrorrule, quotanotificationstate, quotaregistrysize, quotarepositorysize,
  quotanamespacesize, quotalimits, userorganizationquota, quotatype, pendingstoragedeletion,
  blobupload, uploadedblob, tag, manifestlabel, label, manifestchild, manifestblob, manifest,
  userregion, imagestorageplacement, imagestorage, imagestoragelocation, deletedrepository,
  deletednamespace, repositorypermission, repository, teammember, team, appspecificauthtoken,
  robotaccounttoken, namespace CASCADE;
DROP FUNCTION IF EXISTS outbox_notify();
