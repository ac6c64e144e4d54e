/**
 * The soak's mirrors: a CNCF distribution registry (test/helpers/distribution.ts, htpasswd auth)
 * on UPSTREAM_PORT as the upstream, a few small images pushed to it with skopeo, and repositories
 * of organization `soakmirror` mirroring them with a short sync interval (the repomirrorworker of
 * the fleet syncs them while the soak's load runs). Halfway through the upstream changes (a tag
 * added, a tag moved to a new image), so the fleet syncs again under load.
 *
 * Invariant (check): once synced, every upstream tag is pullable from the front end's mirror
 * repository, its manifest digest-equal to the upstream's and every blob digest-verified; no local
 * tag is left that the upstream no longer has. The quota audit of the soak covers the mirrored
 * content too (its own organization, so the soak's quota rejections never refuse a sync).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createOrganizationAccount, createRobotAccount } from '../../../shared/db/accounts.ts';
import { FieldEncrypter } from '../../../shared/db/encrypted-field.ts';
import { createMirror } from '../../../shared/db/mirrors.ts';
import { findNamespace, setTimeMachineSeconds } from '../../../shared/db/namespaces.ts';
import { withTransaction } from '../../../shared/db/pool.ts';
import { createRepository } from '../../../shared/db/repositories.ts';
import { OciLayout } from '../../fixtures/oci/layout.ts';
import { HTPASSWD_USER, startDistribution, type Distribution } from '../../helpers/distribution.ts';
import type { Fleet } from '../fleet.ts';
import { OCI_MANIFEST, sha256, verifyPull, type LedgerEntry } from '../invariants.ts';

/** The upstream's port (this worktree's range, 23400-23499). */
export const UPSTREAM_PORT = 23400;
export const MIRROR_ORG = 'soakmirror';
/** Seconds between two syncs of a mirror. */
const SYNC_INTERVAL_SECONDS = 5;

/** Config keys the fleet needs to mirror from the loopback upstream. */
export const MIRROR_CONFIG: Record<string, unknown> = {
  FEATURE_REPO_MIRROR: true, REPO_MIRROR_INTERVAL: 1, SSRF_ALLOWED_HOSTS: ['127.0.0.1'],
};

/** The upstream credentials, for the fleet's secret scan. */
export const MIRROR_SECRETS: Record<string, string> = { 'upstream mirror password': HTPASSWD_USER.password };

type Request = (step: string, repository: string, url: string, init?: RequestInit) => Promise<{ status: number; body: Buffer }>;

export interface SoakMirrors {
  /** upstream repository -> local repository. */
  readonly repositories: ReadonlyMap<string, string>;
  /** Starts mirroring in `fleet` (the organization, its robot, the mirror configurations). */
  configure(fleet: Fleet, owner: string): Promise<void>;
  /** Changes the upstream: a new tag and a tag moved to a new image in each repository. */
  change(): Promise<void>;
  /**
   * Waits (up to `timeoutMs`) until every upstream tag pulls from the front end digest-equal and no
   * stale tag is left; returns the last look's failures (empty when it held) and the tags checked.
   */
  check(fleet: Fleet, request: Request, timeoutMs: number): Promise<{ tagsChecked: number; failures: string[]; seconds: number }>;
  stop(): Promise<void>;
}

/** Starts the upstream and pushes two tags to each of `count` repositories. */
export async function startSoakMirrors(workDir: string, count: number): Promise<SoakMirrors> {
  const upstream: Distribution = await startDistribution(UPSTREAM_PORT, { htpasswd: true, dir: await fs.mkdtemp(path.join(workDir, 'upstream-')) });
  const layoutDir = path.join(workDir, 'layout');
  const layout = await OciLayout.create(layoutDir);
  const base = await layout.writeLayer('base.txt', randomBytes(4096));
  let images = 0;
  const image = async (): Promise<string> => {
    const ref = `i${images++}`;
    await layout.tag(await layout.writeImage([base, await layout.writeLayer(`${ref}.txt`, randomBytes(2048))]), ref);
    return ref;
  };
  const repositories = new Map(Array.from({ length: count }, (_, i) => [`library/m${i}`, `${MIRROR_ORG}/m${i}`]));
  for (const repository of repositories.keys()) {
    for (const tag of ['latest', 'v1']) await upstream.push(layoutDir, await image(), repository, tag);
  }
  const basic = `Basic ${Buffer.from(`${HTPASSWD_USER.username}:${HTPASSWD_USER.password}`).toString('base64')}`;
  const upstreamGet = (url: string): Promise<Response> => fetch(`http://${upstream.authority}${url}`, { headers: { authorization: basic, accept: OCI_MANIFEST } });

  return {
    repositories,
    async configure(fleet, owner) {
      const secretKey = String(fleet.config.DATABASE_SECRET_KEY);
      const encrypter = new FieldEncrypter(secretKey);
      await withTransaction(fleet.pool, async (tx) => {
        const org = await createOrganizationAccount(tx, { name: MIRROR_ORG, owner, email: `${MIRROR_ORG}@example.com` });
        await setTimeMachineSeconds(tx, org.id, 0);
        const { robot } = await createRobotAccount(tx, { namespace: (await findNamespace(tx, MIRROR_ORG))!, shortname: 'sync' });
        for (const [external, local] of repositories) {
          const repo = await createRepository(tx, { namespaceId: org.id, name: local.split('/')[1]! });
          await createMirror(tx, {
            repositoryId: repo.id, isEnabled: true, robotId: robot.id, externalReference: `${upstream.authority}/${external}`,
            username: encrypter.encrypt(HTPASSWD_USER.username), password: encrypter.encrypt(HTPASSWD_USER.password),
            registryConfig: { verify_tls: false }, architectureFilter: [], syncInterval: SYNC_INTERVAL_SECONDS,
            syncStartDate: new Date(Date.now() - 1000), ruleType: 1, ruleValue: ['*'], skopeoTimeout: 300,
          });
        }
      });
    },
    async change() {
      for (const repository of repositories.keys()) {
        await upstream.push(layoutDir, await image(), repository, 'v2');
        await upstream.push(layoutDir, await image(), repository, 'latest');
      }
    },
    async check(fleet, request, timeoutMs) {
      const started = Date.now();
      for (;;) {
        const failures: string[] = [];
        let tagsChecked = 0;
        for (const [external, local] of repositories) {
          const list = await upstreamGet(`/v2/${external}/tags/list`);
          const upstreamTags = ((await list.json()) as { tags: string[] }).tags.sort();
          for (const tag of upstreamTags) {
            tagsChecked++;
            const m = await upstreamGet(`/v2/${external}/manifests/${tag}`);
            const manifest = Buffer.from(await m.arrayBuffer());
            const parsed = JSON.parse(manifest.toString()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
            const entry: LedgerEntry = {
              repository: local, tag, manifestDigest: sha256(manifest), manifest, ackedAt: 0,
              blobs: new Map([parsed.config, ...parsed.layers].map((d) => [d.digest, d.size])),
            };
            const failure = await verifyPull(fleet.base, entry, (step, url, init) => request(`mirror-${step}`, local, url, init));
            if (failure) failures.push(`mirror ${failure}`);
          }
          const { rows } = await fleet.pool.query<{ name: string }>(
            `SELECT t.name FROM tag t JOIN repository r ON r.id = t.repository_id JOIN namespace n ON n.id = r.namespace_user_id
              WHERE n.username = $1 AND r.name = $2 AND NOT t.hidden AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > $3)`,
            [MIRROR_ORG, local.split('/')[1], Date.now()]);
          const stale = rows.map((r) => r.name).filter((name) => !upstreamTags.includes(name));
          if (stale.length > 0) failures.push(`mirror ${local} keeps tags the upstream no longer has: ${stale.join(', ')}`);
        }
        const seconds = Math.round((Date.now() - started) / 100) / 10;
        if (failures.length === 0 || Date.now() - started > timeoutMs) return { tagsChecked, failures, seconds };
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    },
    stop: () => upstream.stop(),
  };
}
