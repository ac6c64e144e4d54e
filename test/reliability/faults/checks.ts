/**
 * What a fault run checks: that a fleet has recovered (a push and a pull go through, health is
 * green, GC runs), that its queues and GC have settled afterwards (no backlog, no dead letter,
 * every schedule back, the storage-versus-database audit clean), that every acknowledged image
 * pulls back byte for byte, and how each recorded request fits the fault windows.
 */
import { auditStorage, type AuditReport } from '../../../shared/db/gc/audit.ts';
import { createPool } from '../../../shared/db/pool.ts';
import { createProducer } from '../../../shared/runtime/producer.ts';
import { queueStatus } from '../../../shared/runtime/queue-status.ts';
import { createDistributedStorage } from '../../../shared/storage/distributed.ts';
import { ALL_QUEUE_NAMES } from '../../../queues/index.ts';
import { instanceHealth, metricValue } from '../../faults/fleet-process.ts';
import { RADOSGW } from '../../servers/storage-endpoints.ts';
import type { FleetUnderTest, StorageConfig } from './fleet-pool.ts';
import type { LoadLedger} from './load.ts';
import { LoadClient, sha256, type AckedImage, type RequestRecord } from './load.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A probe client per fleet, recording into a ledger of its own (probes are not load). */
export function probeClient(fleet: FleetUnderTest, ledger: LoadLedger, sharedLayer: Buffer, leaseMs: number): LoadClient {
  const tokens = new Map<string, Promise<string>>();
  return new LoadClient({ ...fleet.target, repositories: [fleet.probeRepository] }, ledger, (repository, refresh) => {
    if (refresh || !tokens.has(repository)) tokens.set(repository, fleet.target.token(repository));
    return tokens.get(repository)!;
  }, sharedLayer, leaseMs);
}

/**
 * Whether the fleet works: health 200, a push and its pull succeed, and GC ran since the count
 * `gcBefore`. Resolves `true`, or the first condition that failed.
 */
export async function fleetWorks(fleet: FleetUnderTest, probe: LoadClient, gcBefore: number): Promise<true | string> {
  const health = await instanceHealth(fleet.process.metricsBase).catch(() => undefined);
  if (health?.status !== 200) return `health ${health ? JSON.stringify(health.services) : 'no answer'}`;
  const failed = (what: string): string => {
    const last = probe.lastFailure;
    if (!last) return what;
    if (last.leaseExpired) return `${what} (the push outlasted the upload lease: its blobs were collected before the manifest)`;
    return `${what} (${last.step} ${last.status}${last.code ? ` ${last.code}` : ''}${last.detail ? `: ${last.detail.slice(0, 160)}` : ''})`;
  };
  probe.lastFailure = undefined;
  const image = await probe.push(fleet.probeRepository).catch(() => undefined);
  if (!image) return failed('push failed');
  if (!(await probe.pull(image, 'manifest-get').catch(() => false))) return failed('manifest pull failed');
  if (!(await probe.pullBlob(image, image.blobs[2]!).catch(() => false))) return failed('blob pull failed');
  return (await gcIterations(fleet)) > gcBefore ? true : 'no GC iteration yet';
}

/** quay_gc_iterations_total of the fleet (NaN when /metrics does not answer). */
export function gcIterations(fleet: FleetUnderTest): Promise<number> {
  return metricValue(fleet.process.metricsBase, 'quay_gc_iterations_total').catch(() => Number.NaN);
}

/**
 * Polls `fleetWorks` on every fleet until all pass. `at` is when they did (undefined after
 * `timeoutMs`); `waitingOn` is, per fleet, the last condition that held its recovery back.
 */
export async function waitRecovered(
  fleets: readonly FleetUnderTest[], probes: readonly LoadClient[], gcBefore: readonly number[], timeoutMs: number,
): Promise<{ at?: number; waitingOn: Record<string, string> }> {
  const deadline = Date.now() + timeoutMs;
  const done = fleets.map(() => false);
  const waitingOn: Record<string, string> = {};
  while (Date.now() < deadline) {
    await Promise.all(fleets.map(async (fleet, i) => {
      if (done[i]) return;
      const works = await fleetWorks(fleet, probes[i]!, gcBefore[i]!);
      if (works === true) done[i] = true;
      else waitingOn[fleet.spec.name] = works;
    }));
    if (done.every(Boolean)) return { at: Date.now(), waitingOn };
    await sleep(100);
  }
  return { waitingOn };
}

/** One fleet's queues and GC after the load stopped. */
export interface Settled {
  readonly fleet: string;
  readonly settled: boolean;
  readonly backlog: number;
  readonly deadLetters: number;
  readonly outbox: number;
  readonly schedulers: number;
  readonly audit: Pick<AuditReport, 'ok' | 'storageConsistent' | 'pendingDeletions' | 'uploadIntents'> & {
    collectable: Record<string, number>; orphanObjects: number; missingObjects: number; missingSample: string[];
  };
  readonly waitedMs: number;
  /** What the wait was held back by last (before it settled), e.g. `pendingDeletions=3`. */
  readonly lastWaitedOn?: string;
}

/** Job schedulers (periodic triggers) registered across the fleet's queues. */
export async function schedulerCount(fleet: FleetUnderTest): Promise<number> {
  const producer = createProducer({ url: fleet.spec.redisUrl });
  try {
    const counts = await Promise.all(ALL_QUEUE_NAMES.map((name) => producer.queue(name).getJobSchedulersCount()));
    return counts.reduce((a, b) => a + b, 0);
  } finally {
    await producer.close();
  }
}

/**
 * Waits (up to `timeoutMs`) until the fleet has settled: no runnable job waiting, nothing in the
 * outbox, every schedule registered (`schedulersExpected`), and the audit clean (GC collected
 * everything collectable, storage matches the database). Reports the last state either way.
 */
export async function waitSettled(fleet: FleetUnderTest, schedulersExpected: number, timeoutMs: number): Promise<Settled> {
  const started = Date.now();
  const pool = createPool({ connectionString: fleet.spec.dbUri, max: 2 });
  const producer = createProducer({ url: fleet.spec.redisUrl });
  const storage = await createDistributedStorage({
    DISTRIBUTED_STORAGE_CONFIG: directStorage(fleet.spec.storage), DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
  });
  let lastWaitedOn: string | undefined;
  try {
    for (;;) {
      const statuses = await queueStatus(producer);
      const backlog = statuses.reduce((sum, s) => sum + s.availableUnlocked, 0);
      const deadLetters = statuses.reduce((sum, s) => sum + s.failed, 0);
      const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox');
      const schedulers = await schedulerCount(fleet);
      const audit = await auditStorage(pool, storage, storage.locations);
      const state: Settled = {
        fleet: fleet.spec.name, backlog, deadLetters, outbox: rows[0]!.n, schedulers, waitedMs: Date.now() - started, lastWaitedOn,
        settled: backlog === 0 && deadLetters === 0 && rows[0]!.n === 0 && schedulers >= schedulersExpected && audit.ok,
        audit: {
          ok: audit.ok, storageConsistent: audit.storageConsistent, pendingDeletions: audit.pendingDeletions, uploadIntents: audit.uploadIntents,
          collectable: Object.fromEntries(Object.entries(audit.collectable).map(([k, ids]) => [k, ids.length])),
          orphanObjects: audit.locations.reduce((n, l) => n + l.orphanObjects.length, 0),
          missingObjects: audit.locations.reduce((n, l) => n + l.missingObjects.length, 0),
          missingSample: audit.locations.flatMap((l) => l.missingObjects).slice(0, 5),
        },
      };
      // A missing object can be a GC deletion seen half-way (placements read, then the row and its
      // object deleted before the listing), so only the state at the end counts.
      if (state.settled || Date.now() - started > timeoutMs) return state;
      lastWaitedOn = Object.entries({
        backlog, deadLetters, outbox: state.outbox, missingSchedulers: Math.max(0, schedulersExpected - schedulers),
        pendingDeletions: audit.pendingDeletions, uploadIntents: audit.uploadIntents, ...state.audit.collectable,
        orphanObjects: state.audit.orphanObjects, missingObjects: state.audit.missingObjects,
      }).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`).join(' ');
      await sleep(1000);
    }
  } finally {
    await producer.close();
    await pool.end();
    await storage.close();
  }
}

/** The fleet's storage config with the fault proxy taken out (the audit talks to RadosGW itself). */
function directStorage(config: StorageConfig): StorageConfig {
  return Object.fromEntries(Object.entries(config).map(([location, [driver, params]]) => [
    location, [driver, driver === 'RadosGWStorage' ? { ...params, hostname: RADOSGW.host, port: RADOSGW.port } : params] as const,
  ]));
}

/** Pulls every acknowledged image still alive (manifest by tag, then each blob) and returns the ones that did not come back intact. */
export async function verifyAcknowledged(images: readonly AckedImage[], fleets: readonly FleetUnderTest[]): Promise<{ checked: number; lost: string[] }> {
  const alive = images.filter((i) => i.state === 'alive');
  const lost: string[] = [];
  const tokens = new Map<string, Promise<string>>();
  const verified = new Set<string>();
  const check = async (image: AckedImage): Promise<void> => {
    const fleet = fleets.find((f) => f.spec.name === image.fleet)!;
    const key = `${image.fleet}/${image.repository}`;
    if (!tokens.has(key)) tokens.set(key, fleet.target.token(image.repository));
    const auth = { authorization: `Bearer ${await tokens.get(key)!}` };
    const manifest = await fetch(`${fleet.process.base}/v2/${image.repository}/manifests/${image.tag}`, { headers: { ...auth, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const body = Buffer.from(await manifest.arrayBuffer());
    if (manifest.status !== 200 || sha256(body) !== image.manifestDigest) {
      lost.push(`${key}:${image.tag} manifest: ${manifest.status} ${manifest.status === 200 ? sha256(body) : body.toString().slice(0, 200)}`);
      return;
    }
    for (const blob of image.blobs) {
      if (verified.has(`${key}@${blob.digest}`)) continue;
      const got = await fetch(`${fleet.process.base}/v2/${image.repository}/blobs/${blob.digest}`, { headers: auth });
      const bytes = Buffer.from(await got.arrayBuffer());
      if (got.status !== 200 || sha256(bytes) !== blob.digest) {
        lost.push(`${key}:${image.tag} blob ${blob.digest}: ${got.status} ${got.status === 200 ? `${bytes.length} bytes` : bytes.toString().slice(0, 200)}`);
        return;
      }
      verified.add(`${key}@${blob.digest}`);
    }
  };
  // Eight at a time: enough to be quick, little enough to leave the machine to the fleets.
  for (let i = 0; i < alive.length; i += 8) await Promise.all(alive.slice(i, i + 8).map(check));
  return { checked: alive.length, lost };
}

/** A fault's window: from injection until the fleets it hit were seen working again. */
export interface Window {
  readonly fault: string;
  readonly fleets: readonly string[];
  readonly from: number;
  readonly to: number;
}

/** How the recorded requests fit the windows. */
export interface Classified {
  readonly total: number;
  /** Requests that overlapped a fault window, by fault. */
  readonly duringFaults: Record<string, number>;
  /** 503 UNAVAILABLE answers (the right answer to a request a fault hit), by fault. */
  readonly unavailableDuringFaults: Record<string, number>;
  /** Answers other than success or 503 UNAVAILABLE inside a window (a 500, a dropped connection): wrong. */
  readonly wrongDuringFaults: RequestRecord[];
  /** Anything but the expected success outside every window: wrong. */
  readonly failuresOutsideFaults: RequestRecord[];
}

/** The window `record` overlapped on its fleet, if any. */
export function windowOf(record: RequestRecord, windows: readonly Window[], slackMs = 0): Window | undefined {
  return windows.find((w) => w.fleets.includes(record.fleet) && record.startedAt <= w.to + slackMs && record.endedAt >= w.from);
}

/** Sorts every record into the windows it overlapped (with `slackMs` after each window for in-flight answers). */
export function classify(records: readonly RequestRecord[], windows: readonly Window[], slackMs = 0): Classified {
  const duringFaults: Record<string, number> = {};
  const unavailableDuringFaults: Record<string, number> = {};
  const wrongDuringFaults: RequestRecord[] = [];
  const failuresOutsideFaults: RequestRecord[] = [];
  for (const record of records) {
    const window = windowOf(record, windows, slackMs);
    const ok = record.status === record.expected || record.leaseExpired === true;
    if (window) {
      duringFaults[window.fault] = (duringFaults[window.fault] ?? 0) + 1;
      if (record.status === 503 && record.code === 'UNAVAILABLE') unavailableDuringFaults[window.fault] = (unavailableDuringFaults[window.fault] ?? 0) + 1;
      else if (!ok) wrongDuringFaults.push(record);
    } else if (!ok) {
      failuresOutsideFaults.push(record);
    }
  }
  return { total: records.length, duringFaults, unavailableDuringFaults, wrongDuringFaults, failuresOutsideFaults };
}
