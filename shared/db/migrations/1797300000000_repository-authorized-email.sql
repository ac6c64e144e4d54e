-- Up Migration
-- Quay's RepositoryAuthorizedEmail: an e-mail address a repository may notify, once its owner
-- confirmed it through the link mailed to it (endpoints/api/repoemail.py, web.py /authrepoemail).
-- Only the SHA-256 of the confirmation code is kept, so reading the table confirms nothing; a
-- resend replaces it. The row goes with its repository.
CREATE TABLE repositoryauthorizedemail (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
  email text NOT NULL,
  code_sha256 bytea NOT NULL UNIQUE,
  confirmed boolean NOT NULL DEFAULT false,
  created timestamptz NOT NULL DEFAULT now(),
  UNIQUE (repository_id, email)
);

-- Down Migration
DROP TABLE IF EXISTS repositoryauthorizedemail;
