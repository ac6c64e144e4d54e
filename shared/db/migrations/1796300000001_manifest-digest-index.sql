-- Up Migration
-- Clair notifications name manifests by digest alone; the security notification fan-out finds every
-- repository holding one with one indexed query per page instead of a scan per digest. The
-- repository is the second column so that, should the planner pick this index for the pull path's
-- (repository, digest) lookup, it is still an exact probe, not a walk over every repository holding
-- a popular digest.
CREATE INDEX manifest_digest ON manifest(digest, repository_id);
