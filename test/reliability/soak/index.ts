/**
 * Soak: N clients push, pull, re-tag and delete overlapping content (a pool of layers shared by
 * every namespace and repository) against the whole fleet in separate processes, while GC runs with
 * 0 s time-machine windows and 1 s upload leases, quota is enforced (a system-wide reject limit
 * some namespaces reach), every blob is replicated to a second storage location, and repositories
 * mirror a CNCF distribution upstream every few seconds (soak/mirror.ts; the upstream changes halfway).
 *
 * Invariants, checked continuously and at the end (test/reliability/invariants.ts): every push the
 * registry acknowledged is pullable, digest-verified, until its client deletes it; no 5xx; then,
 * once the fleet settles, the storage-versus-database audit is clean, quota totals equal their
 * recomputation, every queue drains and nothing is dead-lettered; each process's RSS is flat; every
 * mirrored tag pulls digest-equal to the upstream; no secret appears in any process's output.
 *
 * A manifest PUT answered 404 MANIFEST_BLOB_UNKNOWN after all its blobs were acknowledged is
 * counted with the time since the last blob's acknowledgement: within the lease it is a GC-versus-
 * upload-lease bug (it fails the part); after it the lease had legitimately expired.
 */
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFleet, type Fleet } from '../fleet.ts';
import {
  Ledger, loadAverage, memoryFigures, OCI_MANIFEST, sha256, Tally, verifyPull, waitSettled, type LedgerEntry,
} from '../invariants.ts';
import type { PartFigures, PartOptions } from '../types.ts';
import { MIRROR_CONFIG, MIRROR_SECRETS, startSoakMirrors, type SoakMirrors } from './mirror.ts';

/** This part's ports: 22100-22149 (the fleet takes base..base+40). */
const BASE_PORT = 22100;
const PASSWORD = 'soak-password-1';
const USER = 'soaker';
const LEASE_SECONDS = 1;

interface Blob { digest: string; bytes: Buffer }

const makeBlob = (size: number): Blob => {
  const bytes = randomBytes(size);
  return { digest: sha256(bytes), bytes };
};

/** The processes the soak needs: the front end and the workers its traffic makes work for. */
export const SOAK_PROCESSES = ['registry', 'gcworker', 'repositorygcworker', 'quotatotalworker', 'chunkcleanupworker', 'storagereplicationworker', 'repomirrorworker'];

/** The soak's config: 0 s GC windows come from the namespaces; 1 s leases; quota; two locations. */
export function soakConfig(dataDir: string, rejectBytes: number): Record<string, unknown> {
  return {
    GARBAGE_COLLECTION_FREQUENCY: 1,
    PUSH_TEMP_TAG_EXPIRATION_SEC: LEASE_SECONDS,
    FEATURE_QUOTA_MANAGEMENT: true,
    QUOTA_TOTAL_DELAY_SECONDS: 0,
    DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: rejectBytes,
    FEATURE_STORAGE_REPLICATION: true,
    STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE: true,
    DISTRIBUTED_STORAGE_CONFIG: {
      local_us: ['LocalStorage', { storage_path: path.join(dataDir, 'us') }],
      local_eu: ['LocalStorage', { storage_path: path.join(dataDir, 'eu') }],
    },
    DISTRIBUTED_STORAGE_PREFERENCE: ['local_us'],
    DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: ['local_us', 'local_eu'],
  };
}

/** What the clients observed. */
export interface SoakCounters {
  pushes: number;
  pushesAcked: number;
  quotaDenied: number;
  retags: number;
  deletes: number;
  pulls: number;
  pullFailures: string[];
  blobUnknownWithinLease: string[];
  blobUnknownAfterLease: number;
  /** Longest gap between a push's first blob acknowledgement and its manifest PUT, ms. */
  maxBlobToManifestMs: number;
  mounts: number;
  chunkedUploads: number;
  bytesPushed: number;
}

/** The client side of the soak, reusable by the kill part: a set of clients driving one fleet. */
export class SoakClients {
  readonly tally = new Tally();
  readonly ledger = new Ledger();
  readonly counters: SoakCounters = {
    pushes: 0, pushesAcked: 0, quotaDenied: 0, retags: 0, deletes: 0, pulls: 0, pullFailures: [], blobUnknownWithinLease: [],
    blobUnknownAfterLease: 0, maxBlobToManifestMs: 0, mounts: 0, chunkedUploads: 0, bytesPushed: 0,
  };
  readonly repositories: string[];
  private readonly tokens = new Map<string, string>();
  private readonly shared: Blob[];
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly fleet: Fleet,
    namespaces: readonly string[],
    private readonly options: { clients: number; sharedLayers: number; maxLayerBytes: number; maxTagsPerClient: number; log(line: string): void;
      /** Statuses a request may answer besides the expected ones without being a failure (the kill part: 502/503 while a process restarts). */
      tolerateStatus?: (status: number | 'network') => boolean;
      /** PUSH_TEMP_TAG_EXPIRATION_SEC of the fleet (default the soak's 1 s). */
      leaseSeconds?: number },
  ) {
    this.repositories = namespaces.flatMap((ns) => [`${ns}/app`, `${ns}/base`, `${ns}/tools`]);
    this.shared = Array.from({ length: options.sharedLayers }, () => makeBlob(randomInt(1024, options.maxLayerBytes)));
  }

  private async token(repository: string, refresh = false): Promise<string> {
    let token = this.tokens.get(repository);
    if (!token || refresh) {
      token = await this.fleet.token(USER, PASSWORD, [`repository:${repository}:push,pull,delete`]);
      this.tokens.set(repository, token);
    }
    return token;
  }

  /** One request with the repository's bearer token; tallies `step:status`. */
  async request(step: string, repository: string, url: string, init: RequestInit = {}): Promise<{ status: number; body: Buffer; headers: Headers }> {
    for (let attempt = 0; ; attempt++) {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${await this.token(repository, attempt > 0)}`);
      let response: Response;
      try {
        response = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(60_000) });
      } catch (error) {
        this.tally.add(step, 'network', (error as Error).message);
        return { status: 0, body: Buffer.alloc(0), headers: new Headers() };
      }
      const body = Buffer.from(await response.arrayBuffer());
      if (response.status === 401 && attempt === 0) continue; // token expired: fetch a new one once
      this.tally.add(step, response.status, body.toString());
      return { status: response.status, body, headers: response.headers };
    }
  }

  /**
   * Uploads `blob` to `repository` one of three ways; returns when the request that committed it
   * (and so took its lease) was sent, or undefined when it was not acknowledged (201).
   */
  private async upload(repository: string, blob: Blob): Promise<number | undefined> {
    const base = this.fleet.base;
    const way = randomInt(10);
    if (way < 2) {
      // Mount from another repository (201 when linked there; otherwise 202 and an upload session).
      const from = this.repositories[randomInt(this.repositories.length)]!;
      this.counters.mounts++;
      const mountSent = Date.now();
      const r = await this.request('blob-mount', repository, `${base}/v2/${repository}/blobs/uploads/?mount=${blob.digest}&from=${from}`, { method: 'POST' });
      if (r.status === 201) return mountSent;
      if (r.status !== 202) return undefined;
      const location = new URL(r.headers.get('location') ?? '', base);
      location.searchParams.set('digest', blob.digest);
      const sent = Date.now();
      const put = await this.request('blob-put', repository, location.toString(), { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: blob.bytes });
      return put.status === 201 ? sent : undefined;
    }
    if (way < 4) {
      // Chunked: POST, PATCH, PUT.
      this.counters.chunkedUploads++;
      const start = await this.request('blob-start', repository, `${base}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
      if (start.status !== 202) return undefined;
      const location = new URL(start.headers.get('location') ?? '', base);
      const patch = await this.request('blob-patch', repository, location.toString(), {
        method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${blob.bytes.length - 1}` }, body: blob.bytes,
      });
      if (patch.status !== 202) return undefined;
      const next = new URL(patch.headers.get('location') ?? location.toString(), base);
      next.searchParams.set('digest', blob.digest);
      const sent = Date.now();
      const put = await this.request('blob-put', repository, next.toString(), { method: 'PUT' });
      return put.status === 201 ? sent : undefined;
    }
    const sent = Date.now();
    const r = await this.request('blob-post', repository, `${base}/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, {
      method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: blob.bytes,
    });
    return r.status === 201 ? sent : undefined;
  }

  /** Pushes a new image (shared layers + maybe a unique one + a unique config) under `tag`. */
  async push(client: number, repository: string, tag: string): Promise<void> {
    this.counters.pushes++;
    const config = makeBlob(0);
    const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', soak: { client, tag, nonce: randomBytes(8).toString('hex') } }));
    Object.assign(config, { bytes: configBytes, digest: sha256(configBytes) });
    const layers: Blob[] = [];
    const wanted = 1 + randomInt(3);
    while (layers.length < wanted) {
      const layer = this.shared[randomInt(this.shared.length)]!;
      if (!layers.includes(layer)) layers.push(layer);
    }
    if (randomInt(2) === 0) layers.push(makeBlob(randomInt(512, this.options.maxLayerBytes)));
    // As docker does: the layers and the config uploaded concurrently, then the manifest.
    // digest -> [commit request sent, acknowledged]: the lease ends 1 s after an instant in between.
    const ackedAt = new Map<string, number>();
    const sentAt0 = new Map<string, number>();
    const uploaded = await Promise.all([config, ...layers].map(async (blob) => {
      const sent = await this.upload(repository, blob);
      if (sent !== undefined) {
        sentAt0.set(blob.digest, sent);
        ackedAt.set(blob.digest, Date.now());
        this.counters.bytesPushed += blob.bytes.length;
      }
      return sent !== undefined;
    }));
    if (!uploaded.every(Boolean)) return;
    const firstBlobAck = Math.min(...ackedAt.values());
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.bytes.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.bytes.length })),
    }));
    const sentAt = Date.now();
    this.counters.maxBlobToManifestMs = Math.max(this.counters.maxBlobToManifestMs, sentAt - firstBlobAck);
    const put = await this.request('manifest-put', repository, `${this.fleet.base}/v2/${repository}/manifests/${tag}`, {
      method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest,
    });
    if (put.status === 201) {
      this.counters.pushesAcked++;
      this.ledger.ack({
        repository, tag, manifestDigest: sha256(manifest), manifest,
        blobs: new Map([config, ...layers].map((b) => [b.digest, b.bytes.length])), ackedAt: Date.now(),
      });
    } else if (put.status === 403) {
      this.counters.quotaDenied++;
    } else if (put.status === 404 && put.body.toString().includes('MANIFEST_BLOB_UNKNOWN')) {
      // The unknown blob's lease ends LEASE_SECONDS after an instant between its commit request's
      // sending and its acknowledgement; the server checked it between sentAt and the answer. Only
      // when the answer came less than a lease after the commit request was sent was the lease
      // certainly live: that is a bug. Otherwise the lease may have run out and GC collected the
      // blob before the manifest linked it (a manifest links a blob with an expired lease until GC
      // removes it, as Quay does), counted apart with the times.
      const digest = /"digest":"(sha256:[0-9a-f]{64})"/.exec(put.body.toString())?.[1];
      const commitSent = digest ? sentAt0.get(digest) : undefined;
      const ack = digest ? ackedAt.get(digest) : undefined;
      const answeredAt = Date.now();
      if (commitSent === undefined || ack === undefined || answeredAt - commitSent < (this.options.leaseSeconds ?? LEASE_SECONDS) * 1000) {
        this.counters.blobUnknownWithinLease.push(`${repository}:${tag} blob ${digest}: commit sent ${commitSent === undefined ? '?' : sentAt - commitSent} ms and acknowledged ${ack === undefined ? '?' : sentAt - ack} ms before the PUT, answered ${commitSent === undefined ? '?' : answeredAt - commitSent} ms after the commit was sent: ${put.body.toString().slice(0, 300)}`);
      } else {
        this.counters.blobUnknownAfterLease++;
      }
    }
  }

  /** The client's own live entries (only its owner deletes an entry, so its pulls never race a delete). */
  private own(client: number): LedgerEntry[] {
    return [...this.ledger.live.values()].filter((e) => e.tag.startsWith(`c${client}-`));
  }

  async pull(entry: LedgerEntry): Promise<void> {
    this.counters.pulls++;
    const failure = await verifyPull(this.fleet.base, entry, (step, url, init) => this.request(step, entry.repository, url, init));
    if (failure && this.ledger.live.get(`${entry.repository}:${entry.tag}`) === entry) {
      const tolerated = this.options.tolerateStatus && /answered (\d+|0)/.test(failure)
        && this.options.tolerateStatus(Number(/answered (\d+)/.exec(failure)![1]) || 'network');
      if (!tolerated) {
        this.counters.pullFailures.push(failure);
        this.options.log(`PULL FAILED: ${failure}`);
      }
    }
  }

  async retag(client: number, entry: LedgerEntry, tag: string): Promise<void> {
    this.counters.retags++;
    const put = await this.request('retag-put', entry.repository, `${this.fleet.base}/v2/${entry.repository}/manifests/${tag}`, {
      method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: entry.manifest,
    });
    if (put.status === 201) this.ledger.ack({ ...entry, tag, ackedAt: Date.now() });
    else if (put.status === 403) this.counters.quotaDenied++;
    void client;
  }

  async remove(client: number, entry: LedgerEntry): Promise<void> {
    this.counters.deletes++;
    if (randomInt(5) === 0) {
      // By digest: every tag of the manifest in the repository goes (all of them this client's).
      for (const e of this.own(client)) if (e.repository === entry.repository && e.manifestDigest === entry.manifestDigest) this.ledger.forget(e.repository, e.tag);
      await this.request('delete-digest', entry.repository, `${this.fleet.base}/v2/${entry.repository}/manifests/${entry.manifestDigest}`, { method: 'DELETE' });
      return;
    }
    this.ledger.forget(entry.repository, entry.tag);
    await this.request('delete-tag', entry.repository, `${this.fleet.base}/v2/${entry.repository}/manifests/${entry.tag}`, { method: 'DELETE' });
  }

  /** One client's loop until stop(). */
  private async loop(client: number): Promise<void> {
    let n = 0;
    while (this.running) {
      const own = this.own(client);
      const roll = randomInt(100);
      const tag = `c${client}-${n++}`;
      const networkBefore = this.tally.count(/:network$/);
      try {
        if (own.length === 0 || roll < 35) await this.push(client, this.repositories[randomInt(this.repositories.length)]!, tag);
        else if (roll < 65) await this.pull(own[randomInt(own.length)]!);
        else if (roll < 78 && own.length < this.options.maxTagsPerClient) await this.retag(client, own[randomInt(own.length)]!, tag);
        else if (own.length > 2 || roll >= 90) await this.remove(client, own[randomInt(own.length)]!);
        else await this.push(client, this.repositories[randomInt(this.repositories.length)]!, tag);
      } catch (error) {
        this.options.log(`client ${client}: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      // The front end is down (killed, restarting): wait a little instead of spinning on refusals.
      if (this.tally.count(/:network$/) > networkBefore) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.options.clients }, (_, i) => this.loop(i));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Pulls every live entry (all blobs), as the end-of-run check. */
  async verifyAll(): Promise<number> {
    const before = this.counters.pullFailures.length;
    const entries = [...this.ledger.live.values()];
    for (let i = 0; i < entries.length; i += 8) await Promise.all(entries.slice(i, i + 8).map((e) => this.pull(e)));
    return this.counters.pullFailures.length - before;
  }
}

/** Makes the soak's user and its organizations (time machine 0 s everywhere). */
export async function prepareNamespaces(fleet: Fleet, orgs: number): Promise<string[]> {
  await fleet.createUser(USER, PASSWORD);
  const names = [USER];
  for (let i = 0; i < orgs; i++) {
    await fleet.createOrganization(`soakorg${i}`, USER);
    names.push(`soakorg${i}`);
  }
  return names;
}

export async function run(options: PartOptions): Promise<PartFigures> {
  const { short, log } = options;
  const loadStart = loadAverage();
  const maxLayerBytes = short ? 16 * 1024 : 64 * 1024;
  const sharedLayers = short ? 8 : 24;
  // A reject limit a namespace reaches now and then: about the shared pool plus a few unique layers.
  const rejectBytes = Math.round(sharedLayers * maxLayerBytes * 0.6);
  const started = Date.now();
  let fleet: Fleet | undefined;
  let mirrors: SoakMirrors | undefined;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-soak-stores-'));
  // The upstream is populated while the fleet starts.
  const mirrorsStarting = startSoakMirrors(dataDir, short ? 1 : 2);
  mirrorsStarting.catch(() => undefined);
  try {
    // Logs at info: every process's output is scanned for secrets at the end.
    fleet = await startFleet({
      basePort: BASE_PORT, processes: SOAK_PROCESSES, config: { ...soakConfig(dataDir, rejectBytes), ...MIRROR_CONFIG }, label: 'soak',
      logLevel: 'info', secrets: MIRROR_SECRETS,
    });
    mirrors = await mirrorsStarting;
    const startSeconds = Math.round((Date.now() - started) / 100) / 10;
    log(`fleet up in ${startSeconds} s: ${fleet.names().join(', ')}`);
    const namespaces = await prepareNamespaces(fleet, short ? 2 : 3);
    await mirrors.configure(fleet, USER);
    const clients = new SoakClients(fleet, namespaces, {
      clients: short ? 4 : 8, sharedLayers, maxLayerBytes, maxTagsPerClient: short ? 6 : 10, log,
    });
    clients.start();
    const unhealthy: string[] = [];
    const failedProbes = new Map<string, number>();
    let slowProbes = 0;
    const deadline = Date.now() + options.minutes * 60_000;
    // Halfway through, the upstream changes: the mirrors sync again under load.
    let upstreamChanged = false;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, Math.max(0, deadline - Date.now()))));
      if (!upstreamChanged && deadline - Date.now() < options.minutes * 30_000) {
        upstreamChanged = true;
        await mirrors.change();
      }
      for (const name of fleet.names()) {
        // As a liveness probe: one slow answer (5 s timeout) on a loaded machine is counted, three
        // failures in a row make the process unhealthy.
        const health = await fleet.health(name);
        if (health.status === 200) { failedProbes.set(name, 0); continue; }
        slowProbes++;
        failedProbes.set(name, (failedProbes.get(name) ?? 0) + 1);
        if (failedProbes.get(name) === 3) unhealthy.push(`${name}:${health.status}`);
      }
      const c = clients.counters;
      log(`${Math.round((Date.now() - started) / 1000)} s: ${c.pushesAcked}/${c.pushes} pushes, ${c.pulls} pulls, ${c.retags} retags, ${c.deletes} deletes, ${c.quotaDenied} quota denials, 5xx ${clients.tally.serverErrors()}, load ${loadAverage().join(' ')}`);
    }
    await clients.stop();
    const loadEnd = loadAverage();
    const finalPullFailures = await clients.verifyAll();
    log(`clients stopped; ${clients.ledger.live.size} live tags verified (${finalPullFailures} failures); checking the mirrors`);
    const mirrored = await mirrors.check(fleet, (step, repository, url, init) => clients.request(step, repository, url, init), short ? 60_000 : 120_000);
    for (const failure of mirrored.failures) log(`MIRROR: ${failure}`);
    log(`${mirrored.tagsChecked} mirrored tags checked in ${mirrored.seconds} s; waiting for the fleet to settle`);
    const settled = await waitSettled(fleet, short ? 60_000 : 180_000);
    for (const problem of settled.problems) log(`NOT SETTLED: ${problem}`);
    const secretScan = fleet.secretLeaks();
    for (const leak of secretScan.leaks.slice(0, 10)) log(`SECRET IN OUTPUT: ${leak}`);
    const mirrorSyncs = await fleet.metricValue('repomirrorworker', 'quayfleet_worker_jobs_total', 'outcome="done"').catch(() => -1);
    fleet.sampleRss();
    const memory = memoryFigures(fleet.rssFigures());
    const c = clients.counters;
    const serverErrors = clients.tally.serverErrors();
    const networkErrors = clients.tally.count(/:network$/);
    const dataLost = c.pullFailures.length;
    const ok = dataLost === 0 && serverErrors === 0 && networkErrors === 0 && c.blobUnknownWithinLease.length === 0
      && settled.problems.length === 0 && memory.flat && unhealthy.length === 0 && mirrored.failures.length === 0 && secretScan.leaks.length === 0;
    for (const s of clients.tally.samples.slice(0, 10)) log(`sample: ${s}`);
    for (const s of c.blobUnknownWithinLease.slice(0, 10)) log(`MANIFEST_BLOB_UNKNOWN within the lease: ${s}`);
    return {
      ok, dataLost,
      clients: short ? 4 : 8,
      processes: fleet.names(),
      fleetStartSeconds: startSeconds,
      requests: clients.tally.total(),
      pushes: c.pushes, pushesAcked: c.pushesAcked, retags: c.retags, deletes: c.deletes, pulls: c.pulls,
      quotaDenied: c.quotaDenied, mounts: c.mounts, chunkedUploads: c.chunkedUploads, bytesPushed: c.bytesPushed,
      liveTagsAtEnd: clients.ledger.live.size,
      serverErrors, networkErrors,
      blobUnknownWithinLease: c.blobUnknownWithinLease.length, blobUnknownAfterLease: c.blobUnknownAfterLease,
      maxBlobToManifestMs: c.maxBlobToManifestMs,
      pullFailures: c.pullFailures.slice(0, 10),
      mirrorRepositories: mirrors.repositories.size, mirrorTagsChecked: mirrored.tagsChecked, mirrorJobsDone: mirrorSyncs,
      mirrorCheckSeconds: mirrored.seconds, mirrorFailures: mirrored.failures.slice(0, 10),
      outputLinesScanned: secretScan.linesScanned, secretsChecked: fleet.secrets.size, secretsLeaked: secretScan.leaks.length,
      secretLeaks: secretScan.leaks.slice(0, 10),
      unhealthy: unhealthy.slice(0, 10), failedHealthProbes: slowProbes,
      settleSeconds: settled.settleSeconds, auditClean: settled.auditClean, orphanObjects: settled.orphanObjects,
      missingObjects: settled.missingObjects, gcLeftover: settled.gcLeftover, quotaMismatches: settled.quotaMismatches,
      queuesDrained: settled.queuesDrained, deadLetters: settled.deadLetters, problems: settled.problems,
      rssFlat: memory.flat, rssGrowing: memory.growing, rssMiB: memory.perProcess,
      statuses: clients.tally.toJSON(),
      loadAverage: { start: loadStart, end: loadEnd },
    };
  } finally {
    await fleet?.stop();
    await (mirrors ?? await mirrorsStarting.catch(() => undefined))?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
