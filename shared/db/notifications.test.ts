import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notification } from '../../queues/notification.ts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { enqueueRepositoryEvent, enqueueRepositoryEvents, eventIdFor, NOTIFICATION_FAILURE_LIMIT } from './notifications.ts';
import { withTransaction } from './pool.ts';

let db: TestDatabase;
const site = { SERVER_HOSTNAME: 'quay.example', PREFERRED_URL_SCHEME: 'https' };
let repoA: number;
let repoB: number;

async function addNotification(repositoryId: number, event: string, failures = 0): Promise<string> {
  const { rows } = await db.pool.query<{ uuid: string }>(
    `INSERT INTO repositorynotification (repository_id, event, method, config_json, number_of_failures)
     VALUES ($1, $2, 'webhook', '{"url":"http://example.com"}', $3) RETURNING uuid::text`, [repositoryId, event, failures]);
  return rows[0]!.uuid;
}

beforeAll(async () => {
  db = await createTestDatabase('notifications');
  const { rows: [ns] } = await db.pool.query<{ id: number }>(`INSERT INTO namespace (username) VALUES ('acme') RETURNING id`);
  const repos = await db.pool.query<{ id: number }>(
    `INSERT INTO repository (namespace_user_id, name) VALUES ($1, 'app'), ($1, 'web') RETURNING id`, [ns!.id]);
  [repoA, repoB] = repos.rows.map((r) => r.id) as [number, number];
});
afterAll(async () => { await db.drop(); });

describe('enqueueRepositoryEvent', () => {
  it('writes one notification job per enabled notification of the event, with Quay event_data, in the caller\'s transaction', async () => {
    const first = await addNotification(repoA, 'repo_mirror_sync_success');
    const second = await addNotification(repoA, 'repo_mirror_sync_success');
    await addNotification(repoA, 'repo_mirror_sync_success', NOTIFICATION_FAILURE_LIMIT);
    await addNotification(repoA, 'repo_push');
    await addNotification(repoB, 'repo_mirror_sync_success');
    const eventId = eventIdFor('mirror', repoA, 1);
    const ids = await withTransaction(db.pool, (tx) => enqueueRepositoryEvent(
      tx, repoA, 'repo_mirror_sync_success', { message: 'done' }, { site, eventId, performerData: { entity_name: 'bob' } }));
    expect(ids).toEqual([`notification/${first}/${eventId}`, `notification/${second}/${eventId}`]);
    const { rows } = await db.pool.query<{ payload: unknown }>(`SELECT payload FROM outbox WHERE queue_name = 'notification' ORDER BY id`);
    expect(rows.map((r) => notification.parse(r.payload))).toEqual([first, second].map((notificationUuid) => ({
      v: 1, notificationUuid, eventId, event: 'repo_mirror_sync_success', performerData: { entity_name: 'bob' },
      eventData: {
        repository: 'acme/app', namespace: 'acme', name: 'app', docker_url: 'quay.example/acme/app',
        homepage: 'https://quay.example/repository/acme/app', message: 'done',
      },
    })));
    await db.pool.query('DELETE FROM outbox');
  });

  it('writes nothing when no notification is configured, or when the transaction rolls back', async () => {
    expect(await withTransaction(db.pool, (tx) => enqueueRepositoryEvent(tx, repoB, 'vulnerability_found', {}, { site }))).toEqual([]);
    await expect(withTransaction(db.pool, async (tx) => {
      await enqueueRepositoryEvent(tx, repoA, 'repo_push', { updated_tags: ['v1'] }, { site });
      throw new Error('push failed');
    })).rejects.toThrow('push failed');
    expect((await db.pool.query('SELECT 1 FROM outbox')).rowCount).toBe(0);
  });

  it('raises many occurrences across repositories in one call, each with its own event id', async () => {
    const a = await addNotification(repoA, 'vulnerability_found');
    const b = await addNotification(repoB, 'vulnerability_found');
    const ids = await withTransaction(db.pool, (tx) => enqueueRepositoryEvents(tx, 'vulnerability_found', [
      { repositoryId: repoA, eventData: { tags: ['v1'] }, eventId: eventIdFor('x', 1) },
      { repositoryId: repoB, eventData: { tags: ['v2'] }, eventId: eventIdFor('x', 2) },
      { repositoryId: repoA, eventData: { tags: ['v3'] }, eventId: eventIdFor('x', 3) },
    ], { site }));
    expect(ids).toEqual([`notification/${a}/${eventIdFor('x', 1)}`, `notification/${b}/${eventIdFor('x', 2)}`, `notification/${a}/${eventIdFor('x', 3)}`]);
    await db.pool.query('DELETE FROM outbox');
  });
});

describe('eventIdFor', () => {
  it('is a stable UUIDv5 per list of parts', () => {
    expect(eventIdFor('a', 1)).toBe(eventIdFor('a', 1));
    expect(eventIdFor('a', 1)).not.toBe(eventIdFor('a', 2));
    expect(eventIdFor('a1')).not.toBe(eventIdFor('a', 1));
    expect(eventIdFor('a', 1)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
