/**
 * Robot tokens and app-specific tokens (Quay's robotaccounttoken and appspecificauthtoken). Both
 * are generated here, shown to their owner once, and stored only as a hash (passwords.ts).
 *
 * An app token is 120 characters: the first 60 are its `token_name` (a unique lookup key, stored in
 * clear, as in Quay), the last 60 its secret (stored hashed). A robot token is 64 characters.
 */
import { randomUUID } from 'node:crypto';
import { generateToken, hashToken, verifyToken } from './passwords.ts';
import type { Queryable } from './pool.ts';

const ROBOT_TOKEN_LENGTH = 64;
const APP_TOKEN_NAME_LENGTH = 60;
const APP_TOKEN_SECRET_LENGTH = 60;
// generateToken's alphabet: anything else cannot be a token of ours.
const APP_TOKEN_PATTERN = new RegExp(`^[A-Z0-9]{${APP_TOKEN_NAME_LENGTH + APP_TOKEN_SECRET_LENGTH}}$`);

/** Issues a new token for robot `robotId` (replacing any previous one); returns it in clear. */
export async function issueRobotToken(db: Queryable, robotId: number): Promise<string> {
  const token = generateToken(ROBOT_TOKEN_LENGTH);
  await db.query(
    `INSERT INTO robotaccounttoken (robot_account_id, token_hash) VALUES ($1, $2)
     ON CONFLICT (robot_account_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, created = now()`,
    [robotId, hashToken(token)]);
  return token;
}

/**
 * The id of the enabled robot `username` (`ns+short`) when `token` is its token. The robot's owning
 * namespace must be live too: a namespace being purged takes its robots with it.
 */
export async function verifyRobotToken(db: Queryable, username: string, token: string): Promise<number | undefined> {
  const owner = username.slice(0, username.indexOf('+'));
  const { rows } = await db.query<{ id: number; token_hash: string }>(
    `SELECT r.id, t.token_hash FROM namespace r JOIN robotaccounttoken t ON t.robot_account_id = r.id
     JOIN namespace o ON o.username = $2 AND NOT o.deleted AND o.enabled
     WHERE r.username = $1 AND r.robot AND r.enabled AND NOT r.deleted`, [username, owner]);
  const row = rows[0];
  return row && verifyToken(token, row.token_hash) ? row.id : undefined;
}

export interface AppTokenRow {
  id: number;
  user_id: number;
  uuid: string;
  title: string;
  created: Date;
  expiration: Date | null;
  last_accessed: Date | null;
}

/** Creates an app token for `userId` titled `title`; returns the row and the token in clear (shown once). */
export async function createAppToken(
  db: Queryable, input: { userId: number; title: string; expiration?: Date | null },
): Promise<{ row: AppTokenRow; token: string }> {
  const name = generateToken(APP_TOKEN_NAME_LENGTH);
  const secret = generateToken(APP_TOKEN_SECRET_LENGTH);
  const { rows } = await db.query<AppTokenRow>(
    `INSERT INTO appspecificauthtoken (user_id, uuid, title, token_name, token_secret_hash, expiration)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, user_id, uuid, title, created, expiration, last_accessed`,
    [input.userId, randomUUID(), input.title, name, hashToken(secret), input.expiration ?? null]);
  return { row: rows[0]!, token: name + secret };
}

/**
 * The user an unexpired app token belongs to (enabled, live, not an org or robot), or undefined.
 * Records `last_accessed` on success.
 */
export async function verifyAppToken(db: Queryable, token: string, now: Date): Promise<{ userId: number; username: string } | undefined> {
  if (!APP_TOKEN_PATTERN.test(token)) return undefined;
  const { rows } = await db.query<{ id: number; user_id: number; username: string; token_secret_hash: string }>(
    `SELECT t.id, t.user_id, n.username, t.token_secret_hash FROM appspecificauthtoken t JOIN namespace n ON n.id = t.user_id
     WHERE t.token_name = $1 AND (t.expiration IS NULL OR t.expiration > $2)
       AND n.enabled AND NOT n.deleted AND NOT n.organization AND NOT n.robot`,
    [token.slice(0, APP_TOKEN_NAME_LENGTH), now]);
  const row = rows[0];
  if (!row || !verifyToken(token.slice(APP_TOKEN_NAME_LENGTH), row.token_secret_hash)) return undefined;
  await db.query(`UPDATE appspecificauthtoken SET last_accessed = $2 WHERE id = $1`, [row.id, now]);
  return { userId: row.user_id, username: row.username };
}
