/**
 * Token replay and expiry: an expired registry token is refused (also one that expires while it
 * sits in the verified-token cache); a token for repository A does not open B; a token for another
 * registry (audience) is refused; a robot token replaced by a new one is refused at /v2/auth and on
 * the API, and a registry token issued before is refused too; a bearer token replayed after its
 * holder lost the permission, or was deleted, is refused; an expired app token is refused.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ANONYMOUS, type Principal } from '../../../registry/auth/access.ts';
import { signRegistryToken, TOKEN_LIFETIME_S } from '../../../registry/auth/token.ts';
import { findNamespace } from '../../../shared/db/namespaces.ts';
import { createAppToken, issueRobotToken } from '../../../shared/db/tokens.ts';
import { basicAuth } from '../../helpers/registry.ts';
import { USERNAMES, type SecurityFixture } from './fixture.ts';

/** What the token checks found. */
export interface TokenResult {
  checked: number;
  failures: string[];
}

// The verifier tolerates 30 s of clock skew.
const TOLERANCE_MS = 30_000;

/** Runs the token checks; changes the fixture (a robot token replaced, a user removed from a team), so run it last. */
export async function checkTokens(fx: SecurityFixture): Promise<TokenResult> {
  const result: TokenResult = { checked: 0, failures: [] };
  const { t } = fx;
  const audience = t.deps.config.quay.SERVER_HOSTNAME;
  const expect = async (what: string, request: { method?: 'GET' | 'POST'; url: string; authorization?: string }, wanted: number[]) => {
    const response = await t.app.inject({ method: request.method ?? 'GET', url: request.url, headers: request.authorization ? { authorization: request.authorization } : {} });
    result.checked++;
    if (!wanted.includes(response.statusCode)) result.failures.push(`${what}: ${response.statusCode} (wanted ${wanted.join('/')}): ${response.body.slice(0, 160)}`);
  };
  const principalOf = async (username: string, kind: Principal['kind']): Promise<Principal> => ({ kind, id: (await findNamespace(t.db, username))!.id, username, superuser: false });
  const sign = async (principal: Principal, nowMs: number, names: string[], aud = audience) =>
    (await signRegistryToken({ secret: t.deps.tokenSecret, audience: aud, nowMs }, principal, names.map((name) => ({ type: 'repository' as const, name, actions: ['pull', 'push', 'delete'] })))).token;
  const pull = '/v2/acme/app/manifests/latest';
  const writer = await principalOf(USERNAMES.teamWrite, 'user');

  // Expiry.
  await expect('a token that expired an hour ago', { url: pull, authorization: `Bearer ${await sign(writer, Date.now() - 2 * TOKEN_LIFETIME_S * 1000, ['acme/app'])}` }, [401]);
  const almost = await sign(writer, Date.now() - TOKEN_LIFETIME_S * 1000 - TOLERANCE_MS + 1500, ['acme/app']);
  await expect('a token about to expire', { url: pull, authorization: `Bearer ${almost}` }, [200]);
  await sleep(2500);
  await expect('the same token, expired while cached', { url: pull, authorization: `Bearer ${almost}` }, [401]);
  await expect('a token not valid yet', { url: pull, authorization: `Bearer ${await sign(writer, Date.now() + 3600_000, ['acme/app'])}` }, [401]);

  // Scope: a token names the repositories it opens.
  const forApp = await sign(writer, Date.now(), ['acme/app']);
  await expect('a token for acme/app on acme/mirrored', { url: '/v2/acme/mirrored/manifests/latest', authorization: `Bearer ${forApp}` }, [401]);
  await expect('a token for acme/app on acme/app', { url: pull, authorization: `Bearer ${forApp}` }, [200]);
  await expect('a token for another registry', { url: pull, authorization: `Bearer ${await sign(writer, Date.now(), ['acme/app'], 'other.example:443')}` }, [401]);
  const reader = await fx.v2Token('teamRead', ['acme/app']);
  await expect('a downscoped (pull) token used to push', { method: 'POST', url: '/v2/acme/app/blobs/uploads/', authorization: `Bearer ${reader}` }, [403]);
  // A token the server signed for anonymous, with actions claimed: access is re-checked, so nothing.
  await expect('an anonymous token claiming push', { method: 'POST', url: '/v2/acme/app/blobs/uploads/', authorization: `Bearer ${await sign(ANONYMOUS, Date.now(), ['acme/app'])}` }, [401, 403]);

  // Revocation: a permission removed, a robot token replaced, a user deleted.
  const writerToken = await fx.v2Token('teamWrite', ['acme/app']);
  await expect('a writer pushes', { method: 'POST', url: '/v2/acme/app/blobs/uploads/', authorization: `Bearer ${writerToken}` }, [202]);
  await t.db.query(`DELETE FROM teammember WHERE user_id = (SELECT id FROM namespace WHERE username = $1)`, [USERNAMES.teamWrite]);
  await expect('the writer\'s token replayed after leaving the team', { method: 'POST', url: '/v2/acme/app/blobs/uploads/', authorization: `Bearer ${writerToken}` }, [401, 403]);

  const oldRobotToken = fx.passwords.get('robot')!;
  const robotBearer = await fx.v2Token('robot', ['acme/app']);
  const robot = await findNamespace(t.db, USERNAMES.robot);
  const newRobotToken = await issueRobotToken(t.db, robot!.id);
  fx.secrets.set('robot-token-2', newRobotToken);
  await expect('a replaced robot token at /v2/auth', { url: `/v2/auth?service=${audience}&scope=repository:acme/app:pull`, authorization: basicAuth(USERNAMES.robot, oldRobotToken) }, [401]);
  await expect('a replaced robot token on the API', { url: '/api/v1/repository/acme/app', authorization: basicAuth(USERNAMES.robot, oldRobotToken) }, [401]);
  await expect('the new robot token at /v2/auth', { url: `/v2/auth?service=${audience}&scope=repository:acme/app:pull`, authorization: basicAuth(USERNAMES.robot, newRobotToken) }, [200]);
  await t.db.query(`DELETE FROM repositorypermission WHERE user_id = $1`, [robot!.id]);
  await expect('a robot bearer token replayed after its permission went', { url: pull, authorization: `Bearer ${robotBearer}` }, [401, 403]);

  // An app token past its expiration.
  const user = await findNamespace(t.db, USERNAMES.teamAdmin);
  const expired = await createAppToken(t.db, { userId: user!.id, title: 'expired', expiration: new Date(Date.now() - 1000) });
  fx.secrets.set('app-token-expired', expired.token);
  await expect('an expired app token (bearer)', { url: '/api/v1/user/', authorization: `Bearer ${expired.token}` }, [401]);
  await expect('an expired app token ($app)', { url: '/api/v1/user/', authorization: basicAuth('$app', expired.token) }, [401]);

  // A deleted user's token (a fresh user: the matrix may have made the principals sole admins of new organizations).
  const replayer = 'replayer';
  const replayerPassword = 'replayer password 0123456789';
  fx.secrets.set('password-replayer', replayerPassword);
  await t.createUser(replayer, replayerPassword);
  await t.grant('acme/app', { user: replayer }, 'read');
  const replayerBearer = await t.tokenFor(replayer, replayerPassword, ['repository:acme/app:pull']);
  await expect('a reader pulls', { url: pull, authorization: `Bearer ${replayerBearer}` }, [200]);
  const deleted = await t.app.inject({ method: 'DELETE', url: '/api/v1/user/', headers: { authorization: basicAuth(replayer, replayerPassword) } });
  if (deleted.statusCode >= 300) result.failures.push(`could not delete the user for the replay check: ${deleted.statusCode} ${deleted.body.slice(0, 160)}`);
  await expect('a deleted user\'s bearer token replayed', { url: pull, authorization: `Bearer ${replayerBearer}` }, [401, 403]);
  await expect('a deleted user\'s password', { url: '/api/v1/user/', authorization: basicAuth(replayer, replayerPassword) }, [401]);
  return result;
}
