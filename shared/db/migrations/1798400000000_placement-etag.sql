-- The storage ETag of a placement's object as its driver reported it when the copy was verified
-- (the storagereplicationworker records it for every copy it makes). A server-side copy from a
-- placement with one is a single conditional CopyObject whose answered ETag proves it copied that
-- object, instead of a HEAD beside every copy. NULL where unknown (placements recorded by a push):
-- the worker then checks the source as before. Quay has no such column; Quay ignores it.

-- Up Migration
ALTER TABLE imagestorageplacement ADD COLUMN etag text;

-- Down Migration
ALTER TABLE imagestorageplacement DROP COLUMN IF EXISTS etag;
