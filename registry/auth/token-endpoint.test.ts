import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, SignJWT } from 'jose';
import { createAppToken } from '../../shared/db/tokens.ts';
import { findRepository } from '../../shared/db/repositories.ts';
import { registry as metricsRegistry } from '../../shared/metrics/index.ts';
import { basicAuth, startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const PASSWORD = 'correct horse battery';
let clock = Date.now();
let t: TestRegistry;

beforeAll(async () => {
  t = await startTestRegistry({ label: 'tokenauth', now: () => clock });
  await t.createUser('alice', PASSWORD);
  await t.createUser('bob', PASSWORD);
  await t.createRepository('alice/private-repo');
  await t.createRepository('alice/public-repo', { visibility: 'public' });
});
afterAll(async () => t?.close());

async function auth(query: string, authorization?: string) {
  return t.app.inject({ method: 'GET', url: `/v2/auth?service=${t.deps.config.quay.SERVER_HOSTNAME}&${query}`, headers: authorization ? { authorization } : {} });
}

function accessOf(token: string): unknown {
  return decodeJwt(token).access;
}

describe('GET /v2/auth', () => {
  it('issues a token with the Docker response shape and Quay claims', async () => {
    const response = await auth('scope=repository:alice/private-repo:pull,push', basicAuth('alice', PASSWORD));
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.token).toBe(body.access_token);
    expect(body.expires_in).toBe(3600);
    expect(new Date(body.issued_at).getTime()).toBeGreaterThan(0);
    const claims = decodeJwt(body.token);
    expect(claims).toMatchObject({
      iss: 'quay', aud: t.deps.config.quay.SERVER_HOSTNAME, sub: 'alice',
      access: [{ type: 'repository', name: 'alice/private-repo', actions: ['pull', 'push'] }],
      context: { kind: 'user', user: 'alice' },
    });
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('answers 401 UNAUTHORIZED for a wrong password, an unknown user and a malformed header', async () => {
    for (const header of [basicAuth('alice', 'wrong password'), basicAuth('nobody', PASSWORD), 'Basic !!!', 'Basic ' + Buffer.from('nocolon').toString('base64')]) {
      const response = await auth('scope=repository:alice/public-repo:pull', header);
      expect(response.statusCode).toBe(401);
      expect(response.json().errors[0].code).toBe('UNAUTHORIZED');
    }
  });

  it('counts authentication attempts with Quay labels', async () => {
    await auth('scope=repository:alice/public-repo:pull', basicAuth('alice', 'bad password'));
    const text = await metricsRegistry.metrics();
    expect(text).toMatch(/quay_authentication_attempts_total\{auth_kind="basic",success="False"\} [1-9]/);
    expect(text).toMatch(/quay_authentication_attempts_total\{auth_kind="basic",success="True"\} [1-9]/);
  });

  it('downscopes: a user without access gets an empty grant, never an error', async () => {
    const response = await auth('scope=repository:alice/private-repo:pull,push', basicAuth('bob', PASSWORD));
    expect(response.statusCode).toBe(200);
    expect(accessOf(response.json().token)).toEqual([{ type: 'repository', name: 'alice/private-repo', actions: [] }]);
    const publicPush = await auth('scope=repository:alice/public-repo:pull,push', basicAuth('bob', PASSWORD));
    expect(accessOf(publicPush.json().token)).toEqual([{ type: 'repository', name: 'alice/public-repo', actions: ['pull'] }]);
  });

  it('grants anonymous pull on a public repository only', async () => {
    const response = await auth('scope=repository:alice/public-repo:pull&scope=repository:alice/private-repo:pull');
    expect(response.statusCode).toBe(200);
    const claims = decodeJwt(response.json().token);
    expect(claims.sub).toBe('(anonymous)');
    expect(claims.access).toEqual([
      { type: 'repository', name: 'alice/public-repo', actions: ['pull'] },
      { type: 'repository', name: 'alice/private-repo', actions: [] },
    ]);
  });

  it('requires credentials for a login without scope', async () => {
    const response = await auth('');
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toContain('realm="http://');
    expect((await auth('', basicAuth('alice', PASSWORD))).statusCode).toBe(200);
  });

  it('creates a missing repository on a push scope when the caller may create it', async () => {
    const response = await auth('scope=repository:alice/new-repo:pull,push', basicAuth('alice', PASSWORD));
    expect(accessOf(response.json().token)).toEqual([{ type: 'repository', name: 'alice/new-repo', actions: ['pull', 'push'] }]);
    const repo = await findRepository(t.db, 'alice', 'new-repo');
    expect(repo?.visibility).toBe('private');
    const { rows } = await t.db.query(`SELECT kind FROM logentry WHERE repository_id = $1`, [repo!.id]);
    expect(rows.map((r) => r.kind)).toEqual(['create_repo']);
  });

  // skopeo asks for one token per layer in parallel; all name the repository it is about to create.
  it('grants push to every one of many concurrent token requests creating the same repository', async () => {
    const responses = await Promise.all(Array.from({ length: 12 }, () => auth('scope=repository:alice/raced:pull,push', basicAuth('alice', PASSWORD))));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(12).fill(200));
    for (const response of responses) {
      expect(accessOf(response.json().token)).toEqual([{ type: 'repository', name: 'alice/raced', actions: ['pull', 'push'] }]);
    }
    const repo = await findRepository(t.db, 'alice', 'raced');
    const { rows } = await t.db.query(`SELECT kind FROM logentry WHERE repository_id = $1`, [repo!.id]);
    expect(rows.map((r) => r.kind)).toEqual(['create_repo']);
  });

  it('does not create a repository in a namespace the caller may not create in', async () => {
    const response = await auth('scope=repository:alice/bobs-attempt:pull,push', basicAuth('bob', PASSWORD));
    expect(accessOf(response.json().token)).toEqual([{ type: 'repository', name: 'alice/bobs-attempt', actions: [] }]);
    expect(await findRepository(t.db, 'alice', 'bobs-attempt')).toBeUndefined();
  });

  it('accepts robots with their token and users through app tokens', async () => {
    const robot = await t.createRobot('alice', 'builder');
    await t.grant('alice/private-repo', { user: robot.username }, 'write');
    const robotToken = await t.tokenFor(robot.username, robot.token, ['repository:alice/private-repo:pull,push']);
    expect(decodeJwt(robotToken)).toMatchObject({ sub: 'alice+builder', context: { kind: 'robot' }, access: [{ actions: ['pull', 'push'] }] });
    expect((await auth('scope=repository:alice/private-repo:pull', basicAuth(robot.username, 'X'.repeat(64)))).statusCode).toBe(401);

    const alice = (await t.db.query(`SELECT id FROM namespace WHERE username = 'alice'`)).rows[0];
    const { token } = await createAppToken(t.db, { userId: alice.id, title: 'ci' });
    const appToken = await t.tokenFor('$app', token, ['repository:alice/private-repo:pull']);
    expect(decodeJwt(appToken)).toMatchObject({ sub: 'alice', context: { kind: 'apptoken' }, access: [{ actions: ['pull'] }] });
    // Changing the last character (to one it is not: a random token ends in 'Z' one time in 64).
    const tampered = token.slice(0, -1) + (token.endsWith('Z') ? 'Y' : 'Z');
    expect((await auth('scope=repository:alice/private-repo:pull', basicAuth('$app', tampered))).statusCode).toBe(401);
  });

  it('rejects a malformed scope with 400 and an invalid repository name with NAME_INVALID', async () => {
    const malformed = await auth('scope=repository', basicAuth('alice', PASSWORD));
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error_message).toContain('Unable to decode repository and actions');
    const badName = await auth('scope=repository:Alice/UPPER:pull', basicAuth('alice', PASSWORD));
    expect(badName.statusCode).toBe(400);
    expect(badName.json().errors[0].code).toBe('NAME_INVALID');
    const noNamespace = await auth('scope=repository:ubuntu:pull', basicAuth('alice', PASSWORD));
    expect(noNamespace.json().errors[0].code).toBe('NAME_INVALID');
  });

  it('ignores other resource types and unknown actions, accepts a hostname prefix', async () => {
    const host = t.deps.config.quay.SERVER_HOSTNAME;
    const response = await auth(`scope=registry:catalog:*&scope=repository:${host}/alice/public-repo:pull,fly`, basicAuth('bob', PASSWORD));
    expect(response.statusCode).toBe(200);
    expect(accessOf(response.json().token)).toEqual([{ type: 'repository', name: 'alice/public-repo', actions: ['pull'] }]);
  });
});

describe('bearer tokens on the registry', () => {
  async function pull(token: string) {
    const { authorizeRepository } = await import('./access.ts');
    const request = { headers: { authorization: `Bearer ${token}` }, server: t.app } as never;
    return authorizeRepository(request, 'alice', 'private-repo', 'pull');
  }

  it('accepts a fresh token and rejects it once expired', async () => {
    const token = await t.tokenFor('alice', PASSWORD, ['repository:alice/private-repo:pull']);
    await expect(pull(token)).resolves.toMatchObject({ repository: { name: 'private-repo' } });
    const saved = clock;
    clock += 3600_000 + 60_000;
    try {
      await expect(pull(token)).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: 'token expired' });
    } finally {
      clock = saved;
    }
  });

  it('rejects a tampered token and one signed with another secret', async () => {
    const token = await t.tokenFor('bob', PASSWORD, ['repository:alice/private-repo:pull']);
    const [header, , signature] = token.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ ...decodeJwt(token), access: [{ type: 'repository', name: 'alice/private-repo', actions: ['pull'] }] })).toString('base64url');
    await expect(pull(`${header}.${forgedPayload}.${signature}`)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    const foreign = await new SignJWT({ ...decodeJwt(token) }).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32));
    await expect(pull(foreign)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(pull('not.a.jwt')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });
});
