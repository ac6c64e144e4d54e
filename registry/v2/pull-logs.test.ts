import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { createLogger } from '../../shared/runtime/logger.ts';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { PullLogBuffer } from './pull-logs.ts';
import { expectStatus, V2Client } from './test-support.ts';

let registry: TestRegistry;
let client: V2Client;
let quietClient: V2Client;

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'pulllogs', config: { DISABLED_FOR_PULL_LOGS: ['quiet'] } });
  await registry.createUser('alice', 'password1');
  await registry.createOrganization('acme', 'alice');
  await registry.createOrganization('quiet', 'alice');
  client = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', ['repository:acme/web:pull,push']));
  quietClient = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', ['repository:quiet/web:pull,push']));
});
afterAll(async () => registry?.close());

async function pullLogs(): Promise<Record<string, unknown>[]> {
  const { rows } = await registry.db.query(`SELECT l.metadata_json, l.performer_id, n.username AS account FROM logentry l JOIN namespace n ON n.id = l.account_id WHERE kind = 'pull_repo' ORDER BY l.id`);
  return rows;
}

describe('pull_repo logs', () => {
  it('logs manifest GETs by tag and digest with Quay metadata, not HEADs, and honours DISABLED_FOR_PULL_LOGS', async () => {
    const manifest = await client.pushImage('acme/web', 'latest', Buffer.from('{"p":1}'), [randomBytes(20)]);
    await quietClient.pushImage('quiet/web', 'latest', Buffer.from('{"p":2}'), [randomBytes(20)]);
    expectStatus(await client.request('GET', '/v2/acme/web/manifests/latest', { headers: { 'user-agent': 'skopeo/1.0' } }), 200);
    expectStatus(await client.request('GET', `/v2/acme/web/manifests/${manifest.digest}`), 200);
    expectStatus(await client.request('HEAD', '/v2/acme/web/manifests/latest'), 200);
    expectStatus(await quietClient.request('GET', '/v2/quiet/web/manifests/latest'), 200);
    const logs = await waitFor(async () => ((await pullLogs()).length >= 2 ? pullLogs() : undefined), 5000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await pullLogs()).toHaveLength(2);
    expect(logs[0]).toMatchObject({ account: 'acme', metadata_json: { repo: 'web', namespace: 'acme', tag: 'latest', 'user-agent': 'skopeo/1.0', username: 'alice' } });
    expect(logs[0]!.performer_id).not.toBeNull();
    expect(logs[1]).toMatchObject({ metadata_json: { manifest_digest: manifest.digest } });
  });

  it('writes a burst in batches and keeps what the database refused for the next flush', async () => {
    const settings = { DISABLED_FOR_AUDIT_LOGS: [], DISABLED_FOR_PULL_LOGS: [] };
    const before = (await registry.db.query(`SELECT count(*)::int AS n FROM logentry`)).rows[0].n as number;
    let statements = 0;
    const counting = { query: (...args: Parameters<typeof registry.db.query>) => { statements += 1; return registry.db.query(...args); } } as Pick<typeof registry.db, 'query'>;
    const buffer = new PullLogBuffer(counting, settings, createLogger({ level: 'silent' }), { maxBatch: 100, flushMs: 20 });
    for (let i = 0; i < 250; i++) buffer.add({ kind: 'pull_repo', namespace: { id: 1, name: 'acme' }, metadata: { i } });
    await buffer.close();
    expect((await registry.db.query(`SELECT count(*)::int AS n FROM logentry`)).rows[0].n).toBe(before + 250);
    expect(statements).toBe(3);

    // A failing database: entries are kept and written once it answers again.
    let failing = true;
    const flaky = { query: (...args: Parameters<typeof registry.db.query>) => (failing ? Promise.reject(new Error('down')) : registry.db.query(...args)) } as Pick<typeof registry.db, 'query'>;
    const kept = new PullLogBuffer(flaky, settings, createLogger({ level: 'silent' }), { maxBatch: 10, flushMs: 5 });
    for (let i = 0; i < 5; i++) kept.add({ kind: 'pull_repo', namespace: { id: 1, name: 'acme' }, metadata: { kept: i } });
    await kept.flush();
    failing = false;
    await kept.close();
    expect((await registry.db.query(`SELECT count(*)::int AS n FROM logentry WHERE metadata_json ? 'kept'`)).rows[0].n).toBe(5);
  });
});
