/**
 * The sweep's expired-garbage query reads the `tag_end` index per distinct time-machine window:
 * each namespace's own window still decides, whatever windows other namespaces use, and deleted
 * namespaces and repositories marked for deletion are left to the purges.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repositoriesWithExpiredGarbage } from '../../shared/db/gc/sweep.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

describe('sweep: repositories with expired garbage', () => {
  let database: TestDatabase;
  beforeAll(async () => { database = await createTestDatabase('sweepexp'); });
  afterAll(async () => { await database.drop(); });

  it('applies each namespace its own window, across windows, and skips what the purges own', async () => {
    const now = Date.now();
    const hour = 3_600_000;
    const db = database.pool;
    const ns = async (name: string, windowS: number, deleted = false) => (await db.query<{ id: number }>(
      `INSERT INTO namespace (username, organization, removed_tag_expiration_s, deleted) VALUES ($1, true, $2, $3) RETURNING id`, [name, windowS, deleted])).rows[0]!.id;
    const repo = async (namespaceId: number, name: string, state = 0) => (await db.query<{ id: number }>(
      `INSERT INTO repository (namespace_user_id, name, state) VALUES ($1, $2, $3) RETURNING id`, [namespaceId, name, state])).rows[0]!.id;
    const endedAgo = (repositoryId: number, name: string, ms: number) => db.query(
      `INSERT INTO tag (name, repository_id, lifetime_start_ms, lifetime_end_ms) VALUES ($1, $2, $3, $4)`, [name, repositoryId, now - ms - hour, now - ms]);

    const short = await ns('short', 0);            // window 0: every ended tag is due
    const day = await ns('day', 86_400);           // one day
    const week = await ns('week', 604_800);        // one week
    const gone = await ns('gone', 0, true);
    const shortRepo = await repo(short, 'a');
    const dayDue = await repo(day, 'due');
    const dayKept = await repo(day, 'kept');
    const weekKept = await repo(week, 'kept');      // ended 2 days ago: past the day window, inside its own week
    const weekDue = await repo(week, 'due');
    const marked = await repo(short, 'marked', 3);  // marked for deletion
    const inGone = await repo(gone, 'x');
    await endedAgo(shortRepo, 't', 1000);
    await endedAgo(dayDue, 't', 25 * hour);
    await endedAgo(dayKept, 't', 23 * hour);
    await endedAgo(weekKept, 't', 48 * hour);
    await endedAgo(weekDue, 't', 8 * 24 * hour);
    await endedAgo(marked, 't', 1000);
    await endedAgo(inGone, 't', 1000);
    // An alive tag is never due.
    await db.query(`INSERT INTO tag (name, repository_id, lifetime_start_ms) VALUES ('alive', $1, $2)`, [dayKept, now - hour]);

    expect(await repositoriesWithExpiredGarbage(db, now, 100)).toEqual([shortRepo, dayDue, weekDue].sort((a, b) => a - b));
    expect(await repositoriesWithExpiredGarbage(db, now, 1)).toEqual([Math.min(shortRepo, dayDue, weekDue)]);
  });
});
