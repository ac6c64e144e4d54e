/**
 * A whole front end for tests: `buildRegistryApp` over a fresh test database, LocalStorage in a
 * temp directory (through the real storage layer), and helpers to make users, organizations,
 * robots and grants and to fetch tokens. Use `app.inject()` for requests, or `listen()` for real
 * clients (skopeo): the app then serves on the port SERVER_HOSTNAME names.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { parseConfig } from '../../shared/config/index.ts';
import { createOrganizationAccount, createRobotAccount, createUserAccount } from '../../shared/db/accounts.ts';
import { findNamespace, type NamespaceRow } from '../../shared/db/namespaces.ts';
import { setTeamRepositoryPermission, setUserRepositoryPermission, type RepositoryRole, type TeamRole } from '../../shared/db/permissions.ts';
import { withTransaction, type Pool } from '../../shared/db/pool.ts';
import { createRepository, findRepository, type RepositoryRow } from '../../shared/db/repositories.ts';
import { addTeamMember, findTeam, upsertTeam } from '../../shared/db/teams.ts';
import { createLogger, type Logger } from '../../shared/runtime/logger.ts';
import { createDistributedStorage } from '../../shared/storage/distributed.ts';
import { storageTimeouts } from '../../shared/storage/timeouts.ts';
import { buildRegistryApp } from '../../registry/app.ts';
import type { RegistryDeps } from '../../registry/deps.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export interface TestRegistryOptions {
  /** Quay config.yaml keys merged over the test defaults. */
  config?: Record<string, unknown>;
  /** Wall clock in ms (move time for the time machine and token expiry). */
  now?: () => number;
  /** Database name label. */
  label?: string;
  /** The environment the config is parsed with (QUAYFLEET_CONFIG_PASSWORD, REGISTRY_STORAGE_*). */
  env?: NodeJS.ProcessEnv;
  /** The app's logger (silent by default); e.g. one writing to a stream a test reads. */
  log?: Logger;
}

/** A grantee of a repository permission: a user or robot by username, or a team of the repository's org. */
export type Grantee = { user: string } | { team: string };

export interface TestRegistry {
  readonly app: FastifyInstance;
  readonly deps: RegistryDeps;
  readonly db: Pool;
  readonly database: TestDatabase;
  /** Temp directory holding the LocalStorage objects. */
  readonly storagePath: string;
  /** Closes the app, drops the database and removes the storage directory. */
  close(): Promise<void>;
  /** Creates a user; `superuser` adds it to SUPER_USERS. */
  createUser(name: string, password: string, options?: { superuser?: boolean; email?: string }): Promise<NamespaceRow>;
  /** Creates an organization owned by `owner`. */
  createOrganization(name: string, owner: string): Promise<NamespaceRow>;
  /** Creates robot `<ns>+<short>`; returns its username and token. */
  createRobot(namespace: string, shortname: string): Promise<{ username: string; token: string }>;
  /** Creates (or changes) team `team` of `org` with `role`, adding `members`. */
  createTeam(org: string, team: string, role: TeamRole, members?: string[]): Promise<void>;
  /** Creates repository `ns/repo` directly in the database. */
  createRepository(fullName: string, options?: { visibility?: 'public' | 'private' }): Promise<RepositoryRow>;
  /** Grants `role` on `ns/repo` to a user, robot or team. */
  grant(fullName: string, grantee: Grantee, role: RepositoryRole): Promise<void>;
  /** GET /v2/auth with Basic credentials (none when `username` is undefined); returns the token. */
  tokenFor(username: string | undefined, password: string | undefined, scopes: string[]): Promise<string>;
  /** Listens on SERVER_HOSTNAME's port; returns the base URL (`http://127.0.0.1:<port>`). */
  listen(): Promise<string>;
  /** An /api/v1 request through inject(); `as` signs in with Basic credentials, `bearer` with an app token. */
  api(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, options?: ApiRequestOptions): Promise<LightMyRequestResponse>;
}

export interface ApiRequestOptions {
  as?: [username: string, password: string];
  bearer?: string;
  /** A value sent as JSON, or a string sent as it is (with the JSON content type). */
  body?: unknown;
}

/** Starts a front end over a fresh database and temp storage. */
export async function startTestRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const database = await createTestDatabase(options.label ?? 'registry');
  const storagePath = await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-registry-'));
  const port = await freePort();
  const config = parseConfig({
    SERVER_HOSTNAME: `127.0.0.1:${port}`,
    DISTRIBUTED_STORAGE_CONFIG: { default: ['LocalStorage', { storage_path: storagePath }] },
    DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
    ...options.config,
  }, options.env);
  const deps: RegistryDeps = {
    config, db: database.pool, storage: await createDistributedStorage(config.quay, { timeouts: storageTimeouts('registry', config.quay.REGISTRY_STORAGE_TIMEOUT_SECONDS) }), log: options.log ?? createLogger({ level: 'silent' }),
    tokenSecret: randomBytes(32), ...(options.now ? { now: options.now } : {}),
  };
  const app = await buildRegistryApp(deps);
  const db = database.pool;

  async function namespaceOf(name: string): Promise<NamespaceRow> {
    const row = await findNamespace(db, name);
    if (!row) throw new Error(`test setup: no namespace ${name}`);
    return row;
  }
  async function repositoryOf(fullName: string): Promise<RepositoryRow> {
    const [ns, ...rest] = fullName.split('/');
    const repo = await findRepository(db, ns!, rest.join('/'));
    if (!repo) throw new Error(`test setup: no repository ${fullName}`);
    return repo;
  }

  return {
    app, deps, db, database, storagePath,
    async close() {
      await app.close();
      await database.drop();
      await fs.rm(storagePath, { recursive: true, force: true });
    },
    async createUser(name, password, userOptions = {}) {
      const user = await withTransaction(db, (tx) => createUserAccount(tx, { username: name, password, email: userOptions.email ?? `${name}@example.com` }));
      // SUPER_USERS is read per request, so adding to the parsed list takes effect at once.
      if (userOptions.superuser) (config.quay.SUPER_USERS as string[]).push(name);
      return user;
    },
    createOrganization: (name, owner) => withTransaction(db, (tx) => createOrganizationAccount(tx, { name, owner, email: `${name}@example.com` })),
    async createRobot(namespace, shortname) {
      const owner = await namespaceOf(namespace);
      const { robot, token } = await withTransaction(db, (tx) => createRobotAccount(tx, { namespace: owner, shortname }));
      return { username: robot.username, token };
    },
    async createTeam(org, team, role, members = []) {
      const orgRow = await namespaceOf(org);
      const { team: row } = await upsertTeam(db, { organizationId: orgRow.id, name: team, role });
      for (const member of members) await addTeamMember(db, row.id, (await namespaceOf(member)).id);
    },
    async createRepository(fullName, repoOptions = {}) {
      const [ns, ...rest] = fullName.split('/');
      const owner = await namespaceOf(ns!);
      return createRepository(db, { namespaceId: owner.id, name: rest.join('/'), visibility: repoOptions.visibility ?? 'private' });
    },
    async grant(fullName, grantee, role) {
      const repo = await repositoryOf(fullName);
      if ('user' in grantee) return setUserRepositoryPermission(db, repo.id, (await namespaceOf(grantee.user)).id, role);
      const team = await findTeam(db, repo.namespace_user_id, grantee.team);
      if (!team) throw new Error(`test setup: no team ${grantee.team}`);
      return setTeamRepositoryPermission(db, repo.id, team.id, role);
    },
    async tokenFor(username, password, scopes) {
      const query = new URLSearchParams({ service: config.quay.SERVER_HOSTNAME });
      for (const scope of scopes) query.append('scope', scope);
      const headers: Record<string, string> = username === undefined ? {} : { authorization: basicAuth(username, password ?? '') };
      const response = await app.inject({ method: 'GET', url: `/v2/auth?${query}`, headers });
      if (response.statusCode !== 200) throw new Error(`/v2/auth answered ${response.statusCode}: ${response.body}`);
      return (response.json() as { token: string }).token;
    },
    api(method, url, apiOptions = {}) {
      const headers: Record<string, string> = {};
      if (apiOptions.as) headers.authorization = basicAuth(...apiOptions.as);
      if (apiOptions.bearer) headers.authorization = `Bearer ${apiOptions.bearer}`;
      if (apiOptions.body !== undefined) headers['content-type'] = 'application/json';
      const payload = typeof apiOptions.body === 'string' ? apiOptions.body : apiOptions.body === undefined ? undefined : JSON.stringify(apiOptions.body);
      return app.inject({ method, url: `/api/v1${url}`, headers, ...(payload === undefined ? {} : { payload }) });
    },
    async listen() {
      await app.listen({ host: '127.0.0.1', port });
      return `http://127.0.0.1:${port}`;
    },
  };
}

/** The `Authorization` value for Basic credentials. */
export function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

// The port must be known before the app is built, because SERVER_HOSTNAME (the token audience and
// the challenge realm) names it.
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
