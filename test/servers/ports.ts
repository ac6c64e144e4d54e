/**
 * Fixed loopback addresses of the real servers the tests use (all below 32768, away from the
 * ephemeral range and from ports other software here squats on: 5000, 5055).
 */
export const TEST_POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Name of the migrated database every test database is cloned from. */
export const TEMPLATE_DATABASE = 'quayfleet_test_template';
