/**
 * Test fixtures of the mirror worker: a quayfleet front end with mirroring on, an OCI layout of
 * images sharing layers (and a two-platform index), a mirror config written as the API writes it,
 * and helpers to run one sync and read back what the registry serves.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { OciLayout } from '../../test/fixtures/oci/layout.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import type { Config } from '../../shared/config/index.ts';
import { FieldEncrypter } from '../../shared/db/encrypted-field.ts';
import { createMirror, getMirrorByRepository, type ExternalRegistryConfig } from '../../shared/db/mirrors.ts';
import { findNamespace } from '../../shared/db/namespaces.ts';
import { runRepositoryGc } from '../../shared/db/gc/run.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { NotFoundError } from '../../shared/storage/errors.ts';
import { blobKey } from '../../shared/storage/keys.ts';
import { Semaphore } from './copy.ts';
import { performMirror, type SyncResult, type SyncSettings } from './sync.ts';

export const SECRET_KEY = 'test-database-secret';
export const silentLog = pino({ level: 'silent' });

/** A front end with FEATURE_REPO_MIRROR on, loopback allowed as a mirror source, org `mirrors`, robot `mirrors+sync`. */
export async function startMirrorRegistry(config: Record<string, unknown> = {}): Promise<TestRegistry & { robot: { username: string; token: string } }> {
  const reg = await startTestRegistry({
    label: 'mirror',
    config: { FEATURE_REPO_MIRROR: true, DATABASE_SECRET_KEY: SECRET_KEY, SSRF_ALLOWED_HOSTS: ['127.0.0.1'], ...config },
  });
  await reg.createUser('admin', 'adminpass');
  await reg.createOrganization('mirrors', 'admin');
  const robot = await reg.createRobot('mirrors', 'sync');
  return Object.assign(reg, { robot });
}

/** An OCI layout with `count` images over three shared base layers (one own layer each) and an amd64+arm64 index. */
export async function buildLayout(count: number, options: { ownLayerBytes?: number } = {}): Promise<{ dir: string; refs: string[] }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-mirror-layout-'));
  const layout = await OciLayout.create(dir);
  const base = [];
  for (let i = 0; i < 3; i++) base.push(await layout.writeLayer(`base${i}.bin`, randomBytes(64 * 1024)));
  const refs: string[] = [];
  for (let i = 0; i < count; i++) {
    const own = await layout.writeLayer(`own${i}.bin`, randomBytes(options.ownLayerBytes ?? 16 * 1024));
    await layout.tag(await layout.writeImage([...base, own]), `img${i}`);
    refs.push(`img${i}`);
  }
  const amd = await layout.writeImage([base[0]!, await layout.writeLayer('amd.bin', randomBytes(8 * 1024))], 'amd64');
  const arm = await layout.writeImage([base[0]!, await layout.writeLayer('arm.bin', randomBytes(8 * 1024))], 'arm64');
  await layout.tag(await layout.writeIndex([{ manifest: amd, architecture: 'amd64' }, { manifest: arm, architecture: 'arm64' }]), 'multi');
  return { dir, refs };
}

export interface MirrorSetup {
  readonly external: string;
  readonly patterns: string[];
  readonly ruleType?: number;
  readonly username?: string;
  readonly password?: string;
  readonly registryConfig?: ExternalRegistryConfig;
  readonly architectures?: string[];
  readonly isEnabled?: boolean;
  /** The mirror robot (default `mirrors+sync`). */
  readonly robot?: string;
  /** Seconds (the API's minimum is 300; the worker honours what is stored). */
  readonly skopeoTimeout?: number;
}

/** Creates repository `mirrors/<name>` (or `<name>` when it has a namespace) in state MIRROR with its config (as the API's POST does). */
export async function createMirrorRepo(reg: TestRegistry, name: string, setup: MirrorSetup): Promise<number> {
  const repo = await reg.createRepository(name.includes('/') ? name : `mirrors/${name}`);
  const robot = (await findNamespace(reg.db, setup.robot ?? 'mirrors+sync'))!;
  const encrypter = new FieldEncrypter(SECRET_KEY);
  await withTransaction(reg.db, (tx) => createMirror(tx, {
    repositoryId: repo.id, isEnabled: setup.isEnabled ?? true, robotId: robot.id, externalReference: setup.external,
    username: setup.username ? encrypter.encrypt(setup.username) : null, password: setup.password ? encrypter.encrypt(setup.password) : null,
    registryConfig: setup.registryConfig ?? { verify_tls: false }, architectureFilter: setup.architectures ?? [], syncInterval: 86_400,
    syncStartDate: new Date(Date.now() - 1000), ruleType: setup.ruleType ?? 1, ruleValue: setup.patterns, skopeoTimeout: setup.skopeoTimeout ?? 300,
  }));
  return repo.id;
}

/** Engine settings for tests: a short lease. */
export function testSettings(overrides: Partial<SyncSettings> = {}): SyncSettings {
  return { leaseMs: 3000, blobsPerSync: 4, perWorker: new Semaphore(8), idleTimeoutMs: 5000, ...overrides };
}

/** Runs one sync of `repositoryId` now; `quay` overrides keys of the registry's config for this sync. */
export function syncNow(
  reg: TestRegistry, repositoryId: number, settings: SyncSettings = testSettings(), signal = new AbortController().signal, quay: Partial<Config['quay']> = {},
): Promise<SyncResult> {
  const config = { ...reg.deps.config, quay: { ...reg.deps.config.quay, ...quay } };
  return performMirror({ db: reg.db, storage: reg.deps.storage, config }, repositoryId, settings, silentLog, signal);
}

/** Makes the mirror due again (as if its interval passed). */
export async function makeDue(reg: TestRegistry, repositoryId: number): Promise<void> {
  await reg.db.query(`UPDATE repomirrorconfig SET sync_start_date = now() - interval '1 second' WHERE repository_id = $1`, [repositoryId]);
}

/** The mirror row. */
export async function mirrorOf(reg: TestRegistry, repositoryId: number) {
  return (await getMirrorByRepository(reg.db, repositoryId))!;
}

/** The visible tags of `mirrors/<name>` with their manifest digests, from the database. */
export async function localTags(reg: TestRegistry, repositoryId: number): Promise<Record<string, string>> {
  const { rows } = await reg.db.query<{ name: string; digest: string }>(
    `SELECT t.name, m.digest FROM tag t JOIN manifest m ON m.id = t.manifest_id
     WHERE t.repository_id = $1 AND NOT t.hidden AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > $2) ORDER BY t.name`, [repositoryId, Date.now()]);
  return Object.fromEntries(rows.map((r) => [r.name, r.digest]));
}

/** The digest the upstream serves for `repository:tag` (HEAD, all manifest types accepted). */
export async function upstreamDigest(authority: string, repository: string, tag: string, headers: Record<string, string> = {}): Promise<string> {
  const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';
  const response = await fetch(`http://${authority}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { accept, ...headers } });
  return response.headers.get('docker-content-digest') ?? `missing (${response.status})`;
}

/** Pulls `mirrors/<name>:<tag>` from quayfleet's /v2 as `admin`: the manifest digest, and every blob's bytes hashed. */
export async function pullFromQuayfleet(reg: TestRegistry, name: string, tag: string): Promise<{ digest: string; blobsVerified: number }> {
  const token = await reg.tokenFor('admin', 'adminpass', [`repository:mirrors/${name}:pull`]);
  const headers = { authorization: `Bearer ${token}`, accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' };
  const get = (url: string) => reg.app.inject({ method: 'GET', url, headers });
  const top = await get(`/v2/mirrors/${name}/manifests/${tag}`);
  if (top.statusCode !== 200) throw new Error(`pull of ${name}:${tag} answered ${top.statusCode}: ${top.body}`);
  let blobsVerified = 0;
  const verifyImage = async (body: string): Promise<void> => {
    const manifest = JSON.parse(body) as { config: { digest: string }; layers: { digest: string }[] };
    for (const d of [manifest.config, ...manifest.layers]) {
      const blob = await get(`/v2/mirrors/${name}/blobs/${d.digest}`);
      const actual = `sha256:${createHash('sha256').update(blob.rawPayload).digest('hex')}`;
      if (actual !== d.digest) throw new Error(`blob ${d.digest} pulled as ${actual}`);
      blobsVerified += 1;
    }
  };
  const json = JSON.parse(top.body) as { manifests?: { digest: string }[] };
  if (json.manifests) {
    for (const child of json.manifests) {
      const response = await get(`/v2/mirrors/${name}/manifests/${child.digest}`);
      if (response.statusCode === 200) await verifyImage(response.body);
    }
  } else await verifyImage(top.body);
  return { digest: top.headers['docker-content-digest'] as string, blobsVerified };
}

/**
 * Runs the repository's collection as its latest scheduled `garbagecollection` job would, at the
 * moment that job is due (the outbox row the sync wrote: a tag leaving the time machine, an
 * upload lease expiring), then deletes the objects it orphaned. Fails when no job was scheduled.
 */
export async function collectWhenDue(reg: TestRegistry, repositoryId: number): Promise<void> {
  const { rows } = await reg.db.query<{ due: number | null }>(
    `SELECT max((payload->>'dueAtS')::bigint)::float8 AS due FROM outbox WHERE queue_name = 'garbagecollection' AND (payload->>'repositoryId')::int = $1`,
    [repositoryId]);
  const due = rows[0]?.due;
  if (due === null || due === undefined) throw new Error(`no garbagecollection job was scheduled for repository ${repositoryId}`);
  const outcome = await runRepositoryGc(reg.db, reg.deps.storage, repositoryId, { nowMs: due * 1000 + 1000 });
  if (!outcome.locked) throw new Error(`repository ${repositoryId} was busy`);
}

/** Whether the preferred location holds blob `digest`'s object. */
export async function blobObjectExists(reg: TestRegistry, digest: string): Promise<boolean> {
  return reg.deps.storage.store(reg.deps.storage.preferredLocation).stat(blobKey(digest)).then(() => true, (error: unknown) => {
    if (error instanceof NotFoundError) return false;
    throw error;
  });
}

/** Whether repository `repositoryId` has a manifest row `digest`. */
export async function hasManifest(reg: TestRegistry, repositoryId: number, digest: string): Promise<boolean> {
  const { rows } = await reg.db.query(`SELECT 1 FROM manifest WHERE repository_id = $1 AND digest = $2`, [repositoryId, digest]);
  return rows.length > 0;
}
