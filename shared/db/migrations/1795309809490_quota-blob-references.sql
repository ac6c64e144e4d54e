-- Up Migration
-- Exact quota accounting (reference quay-gc-quota-queue.md §3.6, §8.3). Quay decides "is this blob
-- referenced elsewhere?" with a read-then-write per blob, which double-counts concurrent pushes of
-- one blob and under-counts a push racing GC. Here every running total is backed by reference
-- counts, updated with row-locking upserts in the transactions that link and unlink blobs, so a
-- size is added exactly on a 0 -> 1 transition and subtracted exactly on 1 -> 0, whatever runs
-- concurrently.

-- How many `manifestblob` rows of the repository link the blob. A row exists only while the count
-- is positive. No foreign key on blob_id: rows of a namespace whose totals went stale are no longer
-- maintained and must not stop GC from deleting the blob; the backfill rebuilds them.
CREATE TABLE quotarepositoryblob (
  repository_id bigint NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
  blob_id bigint NOT NULL,
  refcount integer NOT NULL CHECK (refcount > 0),
  PRIMARY KEY (repository_id, blob_id)
);

-- How many repositories of the namespace have a quotarepositoryblob row for the blob.
CREATE TABLE quotanamespaceblob (
  namespace_id bigint NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
  blob_id bigint NOT NULL,
  refcount integer NOT NULL CHECK (refcount > 0),
  PRIMARY KEY (namespace_id, blob_id)
);

-- When the backfill scheduler first saw the namespace without usable totals: its backfill runs
-- QUOTA_TOTAL_DELAY_SECONDS later (Quay slept that long at worker start instead, per process).
ALTER TABLE quotanamespacesize ADD COLUMN backfill_queued_ms bigint;
CREATE INDEX quotanamespacesize_waiting ON quotanamespacesize (backfill_queued_ms, namespace_user_id) WHERE NOT backfill_complete;

-- Down Migration
DROP INDEX IF EXISTS quotanamespacesize_waiting;
ALTER TABLE quotanamespacesize DROP COLUMN IF EXISTS backfill_queued_ms;
DROP TABLE IF EXISTS quotanamespaceblob, quotarepositoryblob;
