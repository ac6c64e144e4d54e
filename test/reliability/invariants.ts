/**
 * The invariants the reliability parts check, shared by all of them:
 * - a ledger of what the registry acknowledged (every 201 manifest PUT), each entry pullable and
 *   digest-verified until the client that owns its tag deletes it;
 * - no 5xx (counted by a Tally every request goes through);
 * - when the fleet has settled: the storage-versus-database audit is clean, every quota total equals
 *   its recomputation, every queue has drained (outbox included) and no job is dead-lettered;
 * - memory: first / last / peak RSS of each process.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Fleet, QueueBacklog, RssFigures } from './fleet.ts';

export const sha256 = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Counts of answers by `step:status` (`network` when the request failed), and a few bodies of odd ones. */
export class Tally {
  readonly counts = new Map<string, number>();
  readonly samples: string[] = [];
  add(step: string, status: number | 'network', body = ''): void {
    const key = `${step}:${status}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if ((status === 'network' || status >= 500) && this.samples.length < 30) this.samples.push(`${key} ${body.slice(0, 300)}`);
  }
  /** Answers with a 5xx status. */
  serverErrors(): number {
    return [...this.counts].filter(([key]) => /:5\d\d$/.test(key)).reduce((sum, [, n]) => sum + n, 0);
  }
  count(pattern: RegExp): number {
    return [...this.counts].filter(([key]) => pattern.test(key)).reduce((sum, [, n]) => sum + n, 0);
  }
  total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }
  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)));
  }
}

/** One acknowledged tag: the manifest the registry accepted under it and the blobs it references. */
export interface LedgerEntry {
  readonly repository: string;
  readonly tag: string;
  readonly manifestDigest: string;
  readonly manifest: Buffer;
  /** digest -> size of each blob the manifest references (config and layers). */
  readonly blobs: ReadonlyMap<string, number>;
  readonly ackedAt: number;
}

/** What the registry acknowledged and not yet deleted, by `repository:tag`. */
export class Ledger {
  readonly live = new Map<string, LedgerEntry>();
  acknowledged = 0;
  deleted = 0;
  ack(entry: LedgerEntry): void {
    this.live.set(`${entry.repository}:${entry.tag}`, entry);
    this.acknowledged++;
  }
  /** Call before sending the DELETE: from then on the tag may be gone. */
  forget(repository: string, tag: string): LedgerEntry | undefined {
    const entry = this.live.get(`${repository}:${tag}`);
    if (entry) {
      this.live.delete(`${repository}:${tag}`);
      this.deleted++;
    }
    return entry;
  }
}

/** Why a pull of an acknowledged entry failed (undefined when it verified). */
export type PullFailure = string | undefined;

/**
 * Pulls `entry` by tag (and its blobs by digest) and verifies every digest. `fetchFn` is the
 * client's fetch (it adds auth and tallies). Returns a reason when anything differs.
 */
export async function verifyPull(
  base: string, entry: LedgerEntry, fetchFn: (step: string, url: string, init?: RequestInit) => Promise<{ status: number; body: Buffer }>,
  options: { blobs?: boolean } = {},
): Promise<PullFailure> {
  const m = await fetchFn('pull-manifest', `${base}/v2/${entry.repository}/manifests/${entry.tag}`, { headers: { accept: OCI_MANIFEST } });
  if (m.status !== 200) return `manifest ${entry.repository}:${entry.tag} answered ${m.status}: ${m.body.toString().slice(0, 200)}`;
  if (sha256(m.body) !== entry.manifestDigest) return `manifest ${entry.repository}:${entry.tag} digest ${sha256(m.body)} != acknowledged ${entry.manifestDigest}`;
  if (options.blobs === false) return undefined;
  for (const [digest, size] of entry.blobs) {
    const b = await fetchFn('pull-blob', `${base}/v2/${entry.repository}/blobs/${digest}`);
    if (b.status !== 200) return `blob ${digest} of ${entry.repository}:${entry.tag} answered ${b.status}: ${b.body.toString().slice(0, 200)}`;
    if (b.body.length !== size || sha256(b.body) !== digest) return `blob ${digest} of ${entry.repository}:${entry.tag} read back ${b.body.length} bytes with digest ${sha256(b.body)}`;
  }
  return undefined;
}

/** The fleet-level invariants at rest. */
export interface SettledFigures {
  /** Seconds from asking until every check passed (or the timeout). */
  settleSeconds: number;
  auditClean: boolean;
  orphanObjects: number;
  missingObjects: number;
  /** What was still collectable / pending / in flight at the last look (all 0 when settled). */
  gcLeftover: { tags: number; manifests: number; leases: number; blobs: number; pendingDeletions: number; uploadIntents: number; danglingLabels: number };
  quotaMismatches: number;
  backlog: QueueBacklog;
  queuesDrained: boolean;
  deadLetters: number;
  problems: string[];
}

/**
 * Waits (up to `timeoutMs`) until GC has settled, storage matches the database, quota totals equal
 * their recomputation and every queue has drained; returns the last look. Missing objects fail at
 * once (they never heal); the rest is given time, since GC and the quota worker run on their own.
 */
export async function waitSettled(fleet: Fleet, timeoutMs: number): Promise<SettledFigures> {
  const started = Date.now();
  for (;;) {
    const audit = await fleet.auditStorage();
    const quota = await fleet.auditQuota();
    const backlog = await fleet.queueBacklog();
    const orphanObjects = audit.locations.reduce((n, l) => n + l.orphanObjects.length, 0);
    const missingObjects = audit.locations.reduce((n, l) => n + l.missingObjects.length, 0);
    const queuesDrained = Object.keys(backlog.pending).length === 0 && backlog.outbox === 0;
    const deadLetters = Object.values(backlog.failed).reduce((a, b) => a + b, 0);
    const problems: string[] = [];
    if (!audit.ok) problems.push(`audit: ${JSON.stringify({ locations: audit.locations.map((l) => ({ ...l, orphanObjects: l.orphanObjects.slice(0, 5), missingObjects: l.missingObjects.slice(0, 5) })), collectable: Object.fromEntries(Object.entries(audit.collectable).map(([k, v]) => [k, v.length])), pending: audit.pendingDeletions, intents: audit.uploadIntents, labels: audit.danglingLabels.length })}`);
    if (quota.length > 0) problems.push(`quota: ${JSON.stringify(quota.slice(0, 5))} (${quota.length})`);
    if (!queuesDrained) problems.push(`queues: ${JSON.stringify(backlog)}`);
    if (deadLetters > 0) problems.push(`dead letters: ${JSON.stringify(backlog.failed)}`);
    const figures: SettledFigures = {
      settleSeconds: Math.round((Date.now() - started) / 100) / 10,
      auditClean: audit.ok, orphanObjects, missingObjects,
      gcLeftover: {
        tags: audit.collectable.tags.length, manifests: audit.collectable.manifests.length, leases: audit.collectable.leases.length,
        blobs: audit.collectable.blobs.length, pendingDeletions: audit.pendingDeletions, uploadIntents: audit.uploadIntents,
        danglingLabels: audit.danglingLabels.length,
      },
      quotaMismatches: quota.length, backlog, queuesDrained, deadLetters, problems,
    };
    if (problems.length === 0 || missingObjects > 0 || Date.now() - started > timeoutMs) return figures;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** RSS figures in MiB, and whether each process's last RSS is within `slackMiB` (and 1.5x) of its first. */
export function memoryFigures(rss: Record<string, RssFigures>, slackMiB = 64): { perProcess: Record<string, { firstMiB: number; lastMiB: number; peakMiB: number }>; flat: boolean; growing: string[] } {
  const mib = (kib: number): number => Math.round(kib / 102.4) / 10;
  const perProcess: Record<string, { firstMiB: number; lastMiB: number; peakMiB: number }> = {};
  const growing: string[] = [];
  for (const [name, f] of Object.entries(rss)) {
    perProcess[name] = { firstMiB: mib(f.firstKiB), lastMiB: mib(f.lastKiB), peakMiB: mib(f.peakKiB) };
    if (f.lastKiB - f.firstKiB > slackMiB * 1024 && f.lastKiB > f.firstKiB * 1.5) growing.push(name);
  }
  return { perProcess, flat: growing.length === 0, growing };
}

/** /proc/loadavg's three averages. */
export function loadAverage(): number[] {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return [];
  }
}
