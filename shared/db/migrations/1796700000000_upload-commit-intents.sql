-- Up Migration
-- An upload's bytes are moved to their content address before the rows that reference them commit.
-- A crash in between used to leave an object no row points at, which GC (working from rows) never
-- saw. The push now commits one of these rows *before* the move and deletes it in the transaction
-- that records the blob; a row still here after `resolve_after` belongs to a push that died, and
-- GC resolves it under the digest lock: the object goes unless a placement of the digest at that
-- location exists. No uniqueness: two pushes of one digest each hold their own intent.
CREATE TABLE uploadcommitintent (
  id bigserial PRIMARY KEY,
  location_id integer NOT NULL REFERENCES imagestoragelocation(id),
  content_checksum text NOT NULL,
  object_key text NOT NULL,
  size_bytes bigint NOT NULL DEFAULT 0,
  created timestamptz NOT NULL DEFAULT now(),
  resolve_after timestamptz NOT NULL
);
CREATE INDEX uploadcommitintent_resolve_after ON uploadcommitintent(resolve_after);

-- The stale-upload sweep looks for sessions by their last activity, not their start: an upload
-- still receiving chunks is never stale, whatever its age.
CREATE INDEX blobupload_updated ON blobupload(updated);

-- Down Migration
DROP INDEX blobupload_updated;
DROP TABLE uploadcommitintent;
