-- Up Migration
-- Clair notifications name manifests by digest alone; the security notification fan-out finds every
-- repository holding one with one indexed query per page instead of a scan per digest.
CREATE INDEX manifest_digest ON manifest(digest);
