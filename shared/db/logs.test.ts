import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { isLogSkipped, logAction, logActions, NO_LOG_SKIPS, type LogSettings } from './logs.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase('logs');
});
afterAll(async () => database?.drop());

const settings: LogSettings = { DISABLED_FOR_AUDIT_LOGS: ['quiet'], DISABLED_FOR_PULL_LOGS: ['busy'] };

async function kinds(): Promise<string[]> {
  const { rows } = await database.pool.query<{ kind: string; account_id: number }>(`SELECT kind, account_id FROM logentry ORDER BY id`);
  return rows.map((r) => `${r.kind}@${r.account_id}`);
}

describe('logAction', () => {
  it('honours DISABLED_FOR_AUDIT_LOGS for every kind and DISABLED_FOR_PULL_LOGS for pulls only', async () => {
    await database.pool.query('DELETE FROM logentry');
    const quiet = { id: 1, name: 'quiet' };
    const busy = { id: 2, name: 'busy' };
    expect(await logAction(database.pool, settings, { kind: 'push_repo', namespace: quiet })).toBe(false);
    expect(await logAction(database.pool, settings, { kind: 'pull_repo', namespace: busy })).toBe(false);
    expect(await logAction(database.pool, settings, { kind: 'repo_verb', namespace: busy })).toBe(false);
    expect(await logAction(database.pool, settings, { kind: 'push_repo', namespace: busy, metadata: { tag: 'x' } })).toBe(true);
    expect(await logAction(database.pool, settings, { kind: 'org_create', namespace: null })).toBe(true);
    expect(await kinds()).toEqual(['push_repo@2', 'org_create@null']);
    expect(isLogSkipped(NO_LOG_SKIPS, { kind: 'pull_repo', namespace: busy })).toBe(false);
  });

  it('writes a batch in one statement with the same rules', async () => {
    await database.pool.query('DELETE FROM logentry');
    const at = new Date('2026-01-02T03:04:05.678Z');
    const written = await logActions(database.pool, settings, [
      { kind: 'pull_repo', namespace: { id: 2, name: 'busy' } },
      { kind: 'pull_repo', namespace: { id: 3, name: 'open' }, repositoryId: 7, performerId: 9, ip: '10.0.0.1', metadata: { tag: 'latest' }, datetime: at },
      { kind: 'pull_repo', namespace: { id: 1, name: 'quiet' } },
    ]);
    expect(written).toBe(1);
    const { rows } = await database.pool.query(`SELECT kind, account_id, repository_id, performer_id, ip, metadata_json, datetime FROM logentry`);
    expect(rows).toEqual([{ kind: 'pull_repo', account_id: 3, repository_id: 7, performer_id: 9, ip: '10.0.0.1', metadata_json: { tag: 'latest' }, datetime: at }]);
    expect(await logActions(database.pool, settings, [])).toBe(0);
  });
});
