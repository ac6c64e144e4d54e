import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyRequest } from 'fastify';
import { RepositoryState } from '../../shared/db/repositories.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { ANONYMOUS, authorizeRepository, canListRepository, principalOf, visibleRepositoriesFilter, type RepositoryAction } from './access.ts';

const PASSWORD = 'a long enough password';
const ALL = ['pull', 'push', 'delete'] as const;

function requestWith(t: TestRegistry, token?: string): FastifyRequest {
  return { headers: token ? { authorization: `Bearer ${token}` } : {}, server: t.app } as unknown as FastifyRequest;
}

/** 'ok', or the error code authorizeRepository answered with. */
async function outcome(t: TestRegistry, token: string | undefined, repo: string, action: RepositoryAction): Promise<string> {
  const [ns, name] = repo.split('/');
  try {
    await authorizeRepository(requestWith(t, token), ns!, name!, action);
    return 'ok';
  } catch (error) {
    return (error as { code: string }).code;
  }
}

async function tokenOf(t: TestRegistry, who: { username?: string; password?: string }, repo: string): Promise<string> {
  return t.tokenFor(who.username, who.password, [`repository:${repo}:pull,push,delete`]);
}

describe('permission matrix', () => {
  let t: TestRegistry;
  const who: Record<string, { username?: string; password?: string }> = {};

  beforeAll(async () => {
    t = await startTestRegistry({ label: 'authzmatrix' });
    for (const name of ['owner', 'reader', 'writer', 'admin', 'creator', 'outsider', 'root']) {
      await t.createUser(name, PASSWORD, { superuser: name === 'root' });
      who[name] = { username: name, password: PASSWORD };
    }
    who.anonymous = {};
    await t.createOrganization('acme', 'owner');
    await t.createTeam('acme', 'builders', 'creator', ['creator']);
    await t.createRepository('acme/app');
    await t.createRepository('acme/site', { visibility: 'public' });
    const robot = await t.createRobot('acme', 'deployer');
    who.robot = { username: robot.username, password: robot.token };
    for (const [user, role] of [['reader', 'read'], ['writer', 'write'], ['admin', 'admin'], [robot.username, 'write']] as const) {
      await t.grant('acme/app', { user }, role);
    }
  });
  afterAll(async () => t?.close());

  const expected: Record<string, [pull: string, push: string, del: string, list: boolean]> = {
    anonymous: ['UNAUTHORIZED', 'UNAUTHORIZED', 'UNAUTHORIZED', false],
    owner: ['ok', 'ok', 'ok', true],
    reader: ['ok', 'DENIED', 'DENIED', true],
    writer: ['ok', 'ok', 'ok', true],
    admin: ['ok', 'ok', 'ok', true],
    creator: ['DENIED', 'DENIED', 'DENIED', false],
    robot: ['ok', 'ok', 'ok', true],
    root: ['ok', 'ok', 'ok', true],
    outsider: ['DENIED', 'DENIED', 'DENIED', false],
  };

  for (const [name, [pull, push, del, list]] of Object.entries(expected)) {
    it(`${name} on a private org repository: pull ${pull}, push ${push}, delete ${del}, list ${list}`, async () => {
      const token = await tokenOf(t, who[name]!, 'acme/app');
      const results = await Promise.all(ALL.map((action) => outcome(t, token, 'acme/app', action)));
      expect(results).toEqual([pull, push, del]);
      const principal = await principalOf(requestWith(t, token));
      expect(await canListRepository(requestWith(t, token), principal, 'acme', 'app')).toBe(list);
    });
  }

  it('lets everyone pull a public repository, anonymous even without a token', async () => {
    expect(await outcome(t, undefined, 'acme/site', 'pull')).toBe('ok');
    expect(await outcome(t, undefined, 'acme/site', 'push')).toBe('UNAUTHORIZED');
    expect(await outcome(t, await tokenOf(t, who.outsider!, 'acme/site'), 'acme/site', 'pull')).toBe('ok');
    expect(await outcome(t, await tokenOf(t, who.outsider!, 'acme/site'), 'acme/site', 'push')).toBe('DENIED');
  });

  it('challenges a request without a token for the scope it needs', async () => {
    const error = await authorizeRepository(requestWith(t), 'acme', 'app', 'push').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    const challenge = (error as { headers: Record<string, string> }).headers['WWW-Authenticate'];
    const host = t.deps.config.quay.SERVER_HOSTNAME;
    expect(challenge).toBe(`Bearer realm="http://${host}/v2/auth",service="${host}",scope="repository:acme/app:pull,push"`);
  });

  it('lets a creator-team member create by push, and administer what it created', async () => {
    const token = await tokenOf(t, who.creator!, 'acme/fresh');
    expect(await Promise.all(ALL.map((action) => outcome(t, token, 'acme/fresh', action)))).toEqual(['ok', 'ok', 'ok']);
  });

  it('answers NAME_UNKNOWN for a missing repository only after authorization', async () => {
    const ownerToken = await t.tokenFor('owner', PASSWORD, ['repository:acme/ghost:pull']);
    expect(await outcome(t, ownerToken, 'acme/ghost', 'pull')).toBe('NAME_UNKNOWN');
    expect(await outcome(t, undefined, 'acme/ghost', 'pull')).toBe('UNAUTHORIZED');
    expect(await outcome(t, await tokenOf(t, who.outsider!, 'acme/ghost'), 'acme/ghost', 'pull')).toBe('DENIED');
  });

  it('re-checks the role at request time: a revoked grant stops working before the token expires', async () => {
    await t.createUser('temp', PASSWORD);
    await t.grant('acme/app', { user: 'temp' }, 'write');
    const token = await t.tokenFor('temp', PASSWORD, ['repository:acme/app:pull,push']);
    expect(await outcome(t, token, 'acme/app', 'push')).toBe('ok');
    await t.grant('acme/app', { user: 'temp' }, 'read');
    expect(await outcome(t, token, 'acme/app', 'push')).toBe('DENIED');
    expect(await outcome(t, token, 'acme/app', 'pull')).toBe('ok');
  });

  it('filters listings to what the principal may see', async () => {
    const names = async (principal: Awaited<ReturnType<typeof principalOf>>) => {
      const filter = visibleRepositoriesFilter(requestWith(t), principal, 1);
      const { rows } = await t.db.query<{ full: string }>(
        `SELECT n.username || '/' || r.name AS full FROM repository r JOIN namespace n ON n.id = r.namespace_user_id WHERE ${filter.sql} ORDER BY 1`, filter.params);
      return rows.map((r) => r.full);
    };
    expect(await names(ANONYMOUS)).toEqual(['acme/site']);
    const reader = await principalOf(requestWith(t, await tokenOf(t, who.reader!, 'acme/app')));
    expect(await names(reader)).toEqual(['acme/app', 'acme/site']);
  });
});

describe('repository and registry states', () => {
  let t: TestRegistry;
  let robot: { username: string; token: string };
  let mirrorRobot: { username: string; token: string };

  beforeAll(async () => {
    t = await startTestRegistry({ label: 'authzstates' });
    await t.createUser('owner', PASSWORD);
    robot = await t.createRobot('owner', 'other');
    mirrorRobot = await t.createRobot('owner', 'mirror');
    for (const name of ['frozen', 'mirrored', 'doomed']) {
      await t.createRepository(`owner/${name}`);
      await t.grant(`owner/${name}`, { user: robot.username }, 'write');
      await t.grant(`owner/${name}`, { user: mirrorRobot.username }, 'write');
    }
    await t.db.query(`UPDATE repository SET state = $1 WHERE name = 'frozen'`, [RepositoryState.READ_ONLY]);
    await t.db.query(`UPDATE repository SET state = $1 WHERE name = 'mirrored'`, [RepositoryState.MIRROR]);
    await t.db.query(
      `INSERT INTO repomirrorconfig (repository_id, internal_robot_id, external_reference, sync_interval)
       SELECT r.id, n.id, 'quay.io/upstream/image', 86400 FROM repository r, namespace n WHERE r.name = 'mirrored' AND n.username = $1`,
      [mirrorRobot.username]);
  });
  afterAll(async () => t?.close());

  async function errorOf(who: { username: string; password: string }, repo: string, action: RepositoryAction) {
    const token = await t.tokenFor(who.username, who.password, [`repository:owner/${repo}:pull,push,delete`]);
    return authorizeRepository(requestWith(t, token), 'owner', repo, action).then(() => 'ok', (e: { code: string; message: string }) => `${e.code}: ${e.message}`);
  }
  const owner = { username: 'owner', password: PASSWORD };

  it('READ_ONLY: pulls work, pushes and deletes are DENIED with the reason', async () => {
    expect(await errorOf(owner, 'frozen', 'pull')).toBe('ok');
    expect(await errorOf(owner, 'frozen', 'push')).toMatch(/^DENIED: Repository is read-only/);
    expect(await errorOf(owner, 'frozen', 'delete')).toMatch(/^DENIED: Repository is read-only/);
  });

  it('MIRROR: only the mirroring robot writes', async () => {
    expect(await errorOf(owner, 'mirrored', 'pull')).toBe('ok');
    expect(await errorOf(owner, 'mirrored', 'push')).toMatch(/^DENIED: Repository is a mirror/);
    expect(await errorOf({ username: robot.username, password: robot.token }, 'mirrored', 'push')).toMatch(/^DENIED: Repository is a mirror/);
    expect(await errorOf({ username: mirrorRobot.username, password: mirrorRobot.token }, 'mirrored', 'push')).toBe('ok');
  });

  it('MARKED_FOR_DELETION: NAME_UNKNOWN for the owner, UNAUTHORIZED for anonymous', async () => {
    const token = await t.tokenFor('owner', PASSWORD, ['repository:owner/doomed:pull,push']);
    await t.db.query(`UPDATE repository SET state = $1 WHERE name = 'doomed'`, [RepositoryState.MARKED_FOR_DELETION]);
    expect(await outcome(t, token, 'owner/doomed', 'pull')).toBe('NAME_UNKNOWN');
    expect(await outcome(t, token, 'owner/doomed', 'push')).toBe('NAME_UNKNOWN');
    expect(await outcome(t, undefined, 'owner/doomed', 'pull')).toBe('UNAUTHORIZED');
  });

  it('a disabled user loses access at once', async () => {
    await t.createUser('leaver', PASSWORD);
    await t.grant('owner/frozen', { user: 'leaver' }, 'read');
    const token = await t.tokenFor('leaver', PASSWORD, ['repository:owner/frozen:pull']);
    expect(await outcome(t, token, 'owner/frozen', 'pull')).toBe('ok');
    await t.db.query(`UPDATE namespace SET enabled = false WHERE username = 'leaver'`);
    expect(await outcome(t, token, 'owner/frozen', 'pull')).toBe('DENIED');
  });
});

describe('read-only registry without anonymous access', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry({ label: 'authzreadonly', config: { REGISTRY_STATE: 'readonly', FEATURE_ANONYMOUS_ACCESS: false } });
    await t.createUser('owner', PASSWORD);
    await t.createRepository('owner/app', { visibility: 'public' });
  });
  afterAll(async () => t?.close());

  it('refuses writes with the read-only message, keeps pulls', async () => {
    const token = await t.tokenFor('owner', PASSWORD, ['repository:owner/app:pull,push,delete']);
    expect(await outcome(t, token, 'owner/app', 'pull')).toBe('ok');
    const error = await authorizeRepository(requestWith(t, token), 'owner', 'app', 'push').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DENIED', message: expect.stringContaining('System is currently read-only') });
  });

  it('does not create repositories on push', async () => {
    await t.tokenFor('owner', PASSWORD, ['repository:owner/new:pull,push']);
    const { rowCount } = await t.db.query(`SELECT 1 FROM repository WHERE name = 'new'`);
    expect(rowCount).toBe(0);
  });

  it('refuses anonymous pulls of public repositories, with and without a token request', async () => {
    expect(await outcome(t, undefined, 'owner/app', 'pull')).toBe('UNAUTHORIZED');
    const response = await t.app.inject({ method: 'GET', url: '/v2/auth?scope=repository:owner/app:pull' });
    expect(response.statusCode).toBe(401);
  });
});

describe('tokens for other repositories', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry({ label: 'authzscope' });
    await t.createUser('owner', PASSWORD);
    await t.createRepository('owner/one');
    await t.createRepository('owner/two');
  });
  afterAll(async () => t?.close());

  it('answers 401 insufficient_scope so the client fetches a token for this repository', async () => {
    const token = await t.tokenFor('owner', PASSWORD, ['repository:owner/one:pull']);
    const error = await authorizeRepository(requestWith(t, token), 'owner', 'two', 'pull').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED' });
    expect((error as { headers: Record<string, string> }).headers['WWW-Authenticate']).toMatch(/scope="repository:owner\/two:pull",error="insufficient_scope"$/);
  });

  it('marks an invalid token as invalid_token in the challenge', async () => {
    const error = await authorizeRepository(requestWith(t, 'garbage'), 'owner', 'two', 'pull').catch((e: unknown) => e);
    expect((error as { headers: Record<string, string> }).headers['WWW-Authenticate']).toContain('error="invalid_token"');
  });

  it('serves /v2/auth over a real socket at the SERVER_HOSTNAME the challenge names', async () => {
    const base = await t.listen();
    expect(base).toBe(`http://${t.deps.config.quay.SERVER_HOSTNAME}`);
    const response = await fetch(`${base}/v2/auth?service=${t.deps.config.quay.SERVER_HOSTNAME}&scope=repository:owner/one:pull`, {
      headers: { authorization: `Basic ${Buffer.from(`owner:${PASSWORD}`).toString('base64')}` },
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { token: string }).token).toMatch(/^ey/);
  });
});
