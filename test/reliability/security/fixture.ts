/**
 * The world the security part checks: a front end with every optional route on, its log lines
 * captured, and one principal of each kind Quay knows around organization `acme`:
 * anonymous, an unrelated user, the organization's admin, a plain member, a member of a creator
 * team, members of teams holding read / write / admin on `acme/app`, a robot with write on it, a
 * superuser, and the mirroring robot of `acme/mirrored` (a repository in MIRROR state).
 * Every secret configured or created here is listed in `secrets`, for the log check.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { REDACT_PATHS } from '../../../shared/runtime/logger.ts';
import { V2Client, expectStatus, type BuiltManifest } from '../../../registry/v2/test-support.ts';
import { basicAuth, startTestRegistry, type TestRegistry } from '../../helpers/registry.ts';

export const PRINCIPALS = [
  'anonymous', 'user', 'orgAdmin', 'orgMember', 'orgCreator', 'teamRead', 'teamWrite', 'teamAdmin', 'robot', 'superuser', 'mirrorRobot',
] as const;
export type PrincipalName = (typeof PRINCIPALS)[number];

/** Usernames of the principals (robots as `ns+short`). */
export const USERNAMES: Record<Exclude<PrincipalName, 'anonymous'>, string> = {
  user: 'stranger', orgAdmin: 'orgadmin', orgMember: 'plainmember', orgCreator: 'creatormember', teamRead: 'teamreader',
  teamWrite: 'teamwriter', teamAdmin: 'teamadmin', robot: 'acme+bot', superuser: 'root', mirrorRobot: 'acme+mirror',
};

/** The started world. */
export interface SecurityFixture {
  readonly t: TestRegistry;
  /** Every line the app logged (JSON text). */
  readonly logLines: string[];
  /** Secret values that must never appear in a log line. */
  readonly secrets: Map<string, string>;
  /** The password (users) or token (robots) of each principal. */
  readonly passwords: Map<PrincipalName, string>;
  /** Authorization header for /api/v1 (Basic), undefined for anonymous. */
  apiAuth(who: PrincipalName): string | undefined;
  /** A registry bearer token for `who` with pull,push,delete asked on `repositories` (undefined for anonymous). */
  v2Token(who: PrincipalName, repositories: string[]): Promise<string | undefined>;
  /** The admin's OCI client on acme/app and acme/mirrored (pushes the content requests act on). */
  readonly admin: V2Client;
  /** The mirroring robot's client (the only one that may push to acme/mirrored). */
  readonly mirror: V2Client;
  /** A pushed image of acme/app. */
  readonly image: BuiltManifest;
  readonly layerDigest: string;
  /** A notification, a quota and a limit of acme that the matrix reads and changes. */
  readonly notificationUuid: string;
  readonly orgNotificationUuid: string;
  readonly userNotificationUuid: string;
  readonly quotaId: string;
  readonly limitId: string;
}

/** SSRF_ALLOWED_HOSTS for the fixture: the mirror upstream by name only (it is never contacted). */
const UPSTREAM = 'upstream.example';
/** ... and the webhook receiver of the fixture's notifications (never contacted either). */
export const HOOKS = 'hooks.example';

/** Starts the world; `extraConfig` is merged into the config (SSRF checks vary it). */
export async function startSecurityFixture(label: string, extraConfig: Record<string, unknown> = {}): Promise<SecurityFixture> {
  const logLines: string[] = [];
  const capture = new Writable({ write(chunk, _encoding, done) { logLines.push(...String(chunk).split('\n').filter(Boolean)); done(); } });
  const log = pino({ level: 'trace', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, capture);
  const secrets = new Map<string, string>();
  const secret = (name: string) => {
    const value = `${name}-${randomBytes(12).toString('hex')}`;
    secrets.set(name, value);
    return value;
  };
  const dbPassword = secret('dbpassword');
  const t = await startTestRegistry({
    label, log,
    config: {
      FEATURE_QUOTA_MANAGEMENT: true, FEATURE_REPO_MIRROR: true, FEATURE_SECURITY_SCANNER: true, FEATURE_SECURITY_NOTIFICATIONS: true,
      SECURITY_SCANNER_V4_ENDPOINT: 'http://clair.invalid:6060', SECURITY_SCANNER_V4_PSK: Buffer.from(secret('clairpsk')).toString('base64'),
      FEATURE_MAILING: false, FEATURE_ANONYMOUS_ACCESS: true, DATABASE_SECRET_KEY: secret('databasesecretkey'),
      DB_URI: `postgresql://quay:${dbPassword}@db.invalid:5432/quay`, SSRF_ALLOWED_HOSTS: [UPSTREAM, HOOKS],
      DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: 0, PERMANENTLY_DELETE_TAGS: true,
      ...extraConfig,
    },
  });
  const passwords = new Map<PrincipalName, string>();
  for (const who of ['user', 'orgAdmin', 'orgMember', 'orgCreator', 'teamRead', 'teamWrite', 'teamAdmin', 'superuser'] as const) {
    const password = secret(`password-${who}`);
    passwords.set(who, password);
    await t.createUser(USERNAMES[who], password, { superuser: who === 'superuser' });
  }
  await t.createUser('bystander', secret('password-bystander'));
  await t.createOrganization('acme', USERNAMES.orgAdmin);
  await t.createTeam('acme', 'plain', 'member', [USERNAMES.orgMember]);
  await t.createTeam('acme', 'creators', 'creator', [USERNAMES.orgCreator]);
  await t.createTeam('acme', 'readers', 'member', [USERNAMES.teamRead]);
  await t.createTeam('acme', 'writers', 'member', [USERNAMES.teamWrite]);
  await t.createTeam('acme', 'repoadmins', 'member', [USERNAMES.teamAdmin]);
  await t.createTeam('acme', 'victims', 'member', []);
  const bot = await t.createRobot('acme', 'bot');
  const mirrorBot = await t.createRobot('acme', 'mirror');
  passwords.set('robot', bot.token);
  passwords.set('mirrorRobot', mirrorBot.token);
  secrets.set('robot-token', bot.token);
  secrets.set('mirror-robot-token', mirrorBot.token);
  await t.createRepository('acme/app');
  await t.createRepository('acme/mirrored');
  // The same grants on both, so a route's expectation does not depend on which one it names.
  for (const repository of ['acme/app', 'acme/mirrored']) {
    await t.grant(repository, { team: 'readers' }, 'read');
    await t.grant(repository, { team: 'writers' }, 'write');
    await t.grant(repository, { team: 'repoadmins' }, 'admin');
    await t.grant(repository, { user: 'acme+bot' }, 'write');
  }

  const apiAuth = (who: PrincipalName) => (who === 'anonymous' ? undefined : basicAuth(USERNAMES[who], passwords.get(who)!));
  const asAdmin = apiAuth('orgAdmin')!;
  const api = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body: unknown, status: number, auth = asAdmin) => {
    const response = await t.app.inject({ method, url: `/api/v1${url}`, headers: { authorization: auth, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    if (response.statusCode !== status) throw new Error(`setup ${method} ${url}: ${response.statusCode} ${response.body}`);
    return response.body === '' ? {} : response.json() as Record<string, unknown>;
  };
  // The mirror: upstream credentials are secrets too.
  await api('POST', '/repository/acme/mirrored/mirror', {
    external_reference: `${UPSTREAM}/library/busybox`, sync_interval: 3600, sync_start_date: '2026-01-01T00:00:00Z',
    robot_username: 'acme+mirror', root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['*'] }, is_enabled: false,
    external_registry_username: secret('upstream-username'), external_registry_password: secret('upstream-password'),
  }, 201);
  await api('PUT', '/repository/acme/mirrored/changestate', { state: 'MIRROR' }, 200);
  const notification = await api('POST', '/repository/acme/app/notification/', {
    event: 'repo_push', method: 'webhook', config: { url: `https://${HOOKS}/notify` }, eventConfig: {}, title: 'n',
  }, 201);
  const orgNotification = await api('POST', '/organization/acme/notifications', {
    event: 'quota_warning', method: 'webhook', config: { url: `https://${HOOKS}/notify` }, eventConfig: {}, title: 'q',
  }, 201);
  const userNotification = await api('POST', '/user/namespacenotifications', {
    event: 'quota_warning', method: 'webhook', config: { url: `https://${HOOKS}/notify` }, eventConfig: {}, title: 'u',
  }, 201);
  const rootAuth = apiAuth('superuser')!;
  await api('POST', '/organization/acme/quota', { limit_bytes: 10 * 1024 ** 3 }, 201, rootAuth);
  const quotas = await api('GET', '/organization/acme/quota', undefined, 200, rootAuth) as unknown as { id: number }[];
  const quotaId = String(quotas[0]!.id);
  await api('POST', `/organization/acme/quota/${quotaId}/limit`, { type: 'Warning', threshold_percent: 80 }, 201, rootAuth);
  const quota = await api('GET', `/organization/acme/quota/${quotaId}`, undefined, 200, rootAuth) as { limits: { id: number }[] };
  const limitId = String(quota.limits[0]!.id);

  const v2Token = async (who: PrincipalName, repositories: string[]) => {
    if (who === 'anonymous') return undefined;
    return t.tokenFor(USERNAMES[who], passwords.get(who)!, repositories.map((r) => `repository:${r}:pull,push,delete`));
  };
  const admin = new V2Client(t.app, await v2Token('orgAdmin', ['acme/app', 'acme/mirrored']));
  const mirror = new V2Client(t.app, await v2Token('mirrorRobot', ['acme/mirrored']));
  const layer = randomBytes(512);
  const image = await admin.pushImage('acme/app', 'latest', Buffer.from('{"security":1}'), [layer]);
  const pushed = await pushTo(mirror, 'acme/mirrored', image, layer);
  expectStatus(await mirror.putManifest('acme/mirrored', pushed, 'latest'), 201);
  return {
    t, logLines, secrets, passwords, apiAuth, v2Token, admin, mirror, image,
    layerDigest: (image.bytes.toString().match(/"layers":\[\{[^}]*"digest":"(sha256:[0-9a-f]{64})"/) ?? [])[1]!,
    notificationUuid: String(notification.uuid), orgNotificationUuid: String(orgNotification.uuid),
    userNotificationUuid: String(userNotification.uuid), quotaId, limitId,
  };
}

async function pushTo(client: V2Client, repository: string, image: BuiltManifest, layer: Buffer): Promise<BuiltManifest> {
  await client.uploadBlob(repository, Buffer.from('{"security":1}'), 'monolithic');
  await client.uploadBlob(repository, layer, 'monolithic');
  return image;
}
