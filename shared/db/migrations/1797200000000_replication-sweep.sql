-- The replication reconciler walks imagestorage a page per tick (storagereplicationworker's
-- sweep) and wraps around: this row is where the next tick resumes, so a tick costs one page
-- whatever the registry's size, and a restart does not start the pass over.

-- Up Migration
CREATE TABLE replicationsweep (
  id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  after_id bigint NOT NULL DEFAULT 0,
  passes bigint NOT NULL DEFAULT 0,
  updated timestamptz NOT NULL DEFAULT now()
);
INSERT INTO replicationsweep DEFAULT VALUES;

-- Down Migration
DROP TABLE IF EXISTS replicationsweep;
