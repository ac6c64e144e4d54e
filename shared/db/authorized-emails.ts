/**
 * Repository authorized e-mail addresses (Quay's RepositoryAuthorizedEmail): the addresses an
 * `email` repository notification may be created for, each confirmed by its owner through a
 * mailed link. The API asks for one (a new code, mailed), the confirmation route redeems the code,
 * notification creation checks `confirmed`. Codes are 256 random bits, stored as their SHA-256.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from './pool.ts';
import { RepositoryState } from './repositories.ts';

/** An address's authorization for a repository, as Quay's API shows it (without the code). */
export interface AuthorizedEmail {
  readonly email: string;
  readonly repository: string;
  readonly namespace: string;
  readonly confirmed: boolean;
}

const sha256 = (code: string): Buffer => createHash('sha256').update(code).digest();

const VIEW = `SELECT a.email, r.name AS repository, ns.username AS namespace, a.confirmed
  FROM repositoryauthorizedemail a JOIN repository r ON r.id = a.repository_id JOIN namespace ns ON ns.id = r.namespace_user_id`;

/** The authorization of `email` for repository `repositoryId`; undefined when never asked for. */
export async function findAuthorizedEmail(db: Queryable, repositoryId: number, email: string): Promise<AuthorizedEmail | undefined> {
  const { rows: [row] } = await db.query<AuthorizedEmail>(`${VIEW} WHERE a.repository_id = $1 AND a.email = $2`, [repositoryId, email]);
  return row;
}

/**
 * Starts (or restarts) the authorization of `email` for the repository: a new confirmation code,
 * which replaces any earlier one. Returns the code to mail; the caller must not show it to the
 * requester, who would otherwise confirm an address they do not own.
 */
export async function issueEmailConfirmationCode(db: Queryable, repositoryId: number, email: string): Promise<string> {
  const code = randomBytes(32).toString('base64url');
  await db.query(
    `INSERT INTO repositoryauthorizedemail (repository_id, email, code_sha256) VALUES ($1, $2, $3)
     ON CONFLICT (repository_id, email) DO UPDATE SET code_sha256 = EXCLUDED.code_sha256, created = now()`,
    [repositoryId, email, sha256(code)]);
  return code;
}

/** Redeems a mailed code: the address becomes confirmed. Undefined for an unknown code (or a deleted repository's). */
export async function confirmEmailCode(db: Queryable, code: string): Promise<AuthorizedEmail | undefined> {
  const { rows: [row] } = await db.query<AuthorizedEmail>(
    `WITH confirmed AS (
       UPDATE repositoryauthorizedemail a SET confirmed = true FROM repository r
       WHERE a.code_sha256 = $1 AND r.id = a.repository_id AND r.state <> $2 RETURNING a.id)
     ${VIEW} JOIN confirmed c ON c.id = a.id`, [sha256(code), RepositoryState.MARKED_FOR_DELETION]);
  return row ? { ...row, confirmed: true } : undefined;
}
