/**
 * Fixed loopback addresses of the real servers the tests use (all below 32768, away from the
 * ephemeral range and from ports other software here squats on: 5000, 5055).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const TEST_POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Name of the migrated database every test database is cloned from. It is named after the
 * migrations' content, so concurrent test runs on one server share a current template instead of
 * dropping it under each other, and a changed migration gets a new one.
 */
export const TEMPLATE_DATABASE = `quayfleet_template_${migrationsHash()}`;

function migrationsHash(): string {
  const dir = path.resolve(import.meta.dirname, '../../shared/db/migrations');
  const hash = createHash('sha256');
  for (const file of fs.readdirSync(dir).sort()) hash.update(file).update(fs.readFileSync(path.join(dir, file)));
  return hash.digest('hex').slice(0, 12);
}
