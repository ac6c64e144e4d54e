/**
 * Kill: the soak's clients drive the whole fleet while every process type (the front end and each
 * worker pod) is SIGKILLed at random points and restarted, over and over (each type on its own
 * loop, so kills overlap). Afterwards every job must have completed exactly once in effect and
 * nothing may leak:
 * - every push the registry acknowledged is still pullable, digest-verified (data lost: 0);
 * - the fleet settles: the storage-versus-database audit is clean (no orphan object, no missing
 *   one: a GC deletion run twice or half-run would show), quota totals equal their recomputation
 *   (a quota job applied twice or not at all would show), every queue and the outbox drain and
 *   nothing is dead-lettered;
 * - no stuck lock: no BullMQ job lock left in Redis and no advisory lock held in the database once
 *   the queues are drained (beyond the ones live processes hold by design, reported);
 * - no 500 from the front end (refused connections, 502/503 while it restarts are expected and counted).
 */
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { ALL_PROCESSES, fleetBuild, startFleet, type Fleet } from '../fleet.ts';
import { loadAverage, waitSettled } from '../invariants.ts';
import { prepareNamespaces, SoakClients, soakConfig } from '../soak/index.ts';
import type { PartFigures, PartOptions } from '../types.ts';

/** This part's ports: 22150-22199 (the fleet takes base..base+40). */
const BASE_PORT = 22150;

/** The short form kills these (the long form every process type the config enables). */
const SHORT_TARGETS = ['registry', 'gcworker', 'quotatotalworker', 'storagereplicationworker'];

const KILL_LEASE_SECONDS = 30;

/** Kills of each type the long form aims at (the part fails below 20). */
const LONG_KILLS_PER_TYPE = 30;

/** Processes restarting at once in the long form. */
const MAX_RESTARTING = 3;

/** The least time the front end serves between two kills in the long form. */
const REGISTRY_MIN_UP_MS = 15_000;

/** A counting semaphore. */
function semaphore(slots: number): { acquire(): Promise<void>; release(): void } {
  const waiting: (() => void)[] = [];
  let free = slots;
  return {
    async acquire() {
      if (free > 0) { free--; return; }
      await new Promise<void>((resolve) => waiting.push(resolve));
    },
    release() {
      const next = waiting.shift();
      if (next) next(); else free++;
    },
  };
}

/** A copy of `items` in a random order (Fisher-Yates). */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** BullMQ job locks left in Redis (`<prefix>:<queue>:<job>:lock`). */
async function redisLocks(redisUrl: string): Promise<string[]> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', '*:lock', 'COUNT', 1000);
      cursor = next;
      // A scheduler tick (`repeat:...`) running right now holds its lock by design (GC ticks every second).
      found.push(...keys.filter((key) => !key.includes(':repeat:')));
    } while (cursor !== '0');
    return found;
  } finally {
    redis.disconnect();
  }
}

/** Advisory locks held in the fleet's database, with the holder's application name. */
async function advisoryLocks(fleet: Fleet): Promise<{ objid: string; pid: number; application: string }[]> {
  const { rows } = await fleet.pool.query<{ objid: string; pid: number; application: string }>(
    `SELECT l.objid::text AS objid, l.pid, a.application_name AS application FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()`);
  return rows;
}

export async function run(options: PartOptions): Promise<PartFigures> {
  const { short, log } = options;
  const loadStart = loadAverage();
  const started = Date.now();
  const storesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-kill-stores-'));
  const maxLayerBytes = short ? 16 * 1024 : 32 * 1024;
  const sharedLayers = short ? 8 : 16;
  let fleet: Fleet | undefined;
  try {
    fleet = await startFleet({
      basePort: BASE_PORT,
      processes: short ? [...SHORT_TARGETS, 'chunkcleanupworker'] : ALL_PROCESSES,
      // A 30 s upload lease, not the soak's 1 s: with processes restarting on two loaded cores a push
      // takes seconds, and this part is about crashes, not lease expiry (the soak covers that).
      config: { ...soakConfig(storesDir, sharedLayers * maxLayerBytes), PUSH_TEMP_TAG_EXPIRATION_SEC: KILL_LEASE_SECONDS, FEATURE_REPO_MIRROR: true },
      label: 'kill',
      // The long form logs at info: its whole output is scanned for secrets at the end.
      logLevel: short ? 'warn' : 'info',
    });
    const f = fleet;
    const startSeconds = Math.round((Date.now() - started) / 100) / 10;
    const targets = short ? SHORT_TARGETS.filter((n) => f.names().includes(n)) : f.names();
    const disabled = [...f.members.values()].filter((m) => m.disabled).map((m) => m.name);
    log(`fleet (${fleetBuild()}) up in ${startSeconds} s; killing ${targets.join(', ')}${disabled.length ? `; disabled by config: ${disabled.join(', ')}` : ''}`);
    const namespaces = await prepareNamespaces(f, 2);
    let clientErrors = 0;
    const clients = new SoakClients(f, namespaces, {
      clients: short ? 3 : 6, sharedLayers, maxLayerBytes, maxTagsPerClient: 8, leaseSeconds: KILL_LEASE_SECONDS,
      log: (line) => { if (line.startsWith('PULL FAILED') || clientErrors++ < 5) log(line); },
      tolerateStatus: (status) => status === 'network' || status === 502 || status === 503 || status === 504,
    });
    clients.start();

    const kills: Record<string, number> = {};
    const restartMs: Record<string, number[]> = {};
    const restartFailures: string[] = [];
    /** Processes found dead (not by us) when their next kill came: a crash the restart must not hide. */
    const exitedOnTheirOwn: string[] = [];
    const jobsDone: Record<string, number> = {};
    /** Whether the process was last restarted waiting for its health (else it may still be starting). */
    const healthy: Record<string, boolean> = {};
    /** When the process last became healthy after a restart (the front end is let serve a while). */
    const upSince: Record<string, number> = {};
    for (const name of targets) {
      kills[name] = 0; restartMs[name] = []; jobsDone[name] = 0; healthy[name] = true; upSince[name] = Date.now();
    }
    const deadline = Date.now() + options.minutes * 60_000;
    /** SIGKILLs `name` now and starts it again (waiting for its health for the front end and a worker's every other kill). */
    const killOnce = async (name: string): Promise<void> => {
      if (healthy[name] && name !== 'registry') jobsDone[name]! += await f.metricValue(name, 'quayfleet_worker_jobs_total', 'outcome="done"').catch(() => 0);
      if (!f.alive(name)) exitedOnTheirOwn.push(`${name}: ${f.members.get(name)!.child.exitCode ?? f.members.get(name)!.child.signalCode}`);
      await f.kill(name, 'SIGKILL');
      kills[name]!++;
      const waitForHealth = name === 'registry' || kills[name]! % 2 === 0;
      const t0 = Date.now();
      for (let attempt = 0; ; attempt++) {
        try {
          await f.restart(name, { wait: waitForHealth });
          break;
        } catch (error) {
          restartFailures.push(`${name}: ${(error as Error).message.slice(0, 300)}`);
          if (attempt >= 2) throw error;
          await f.kill(name);
        }
      }
      healthy[name] = waitForHealth;
      if (waitForHealth) { restartMs[name]!.push(Date.now() - t0); upSince[name] = Date.now(); }
    };
    /** The short form: each type on its own loop, killed at a random point every few seconds (kills overlap). */
    const restarting = semaphore(4);
    const shortLoop = async (name: string): Promise<void> => {
      while (Date.now() < deadline) {
        await sleep(randomInt(200, 2500));
        if (Date.now() >= deadline) break;
        if (name !== 'registry') await restarting.acquire();
        try { await killOnce(name); } finally { if (name !== 'registry') restarting.release(); }
      }
    };
    /**
     * The long form staggers the kills, one every `gap` (jittered): rounds in which every type is
     * killed once, in a shuffled order, so each type gets about LONG_KILLS_PER_TYPE kills over the
     * run. A process is not killed again while it restarts, at most MAX_RESTARTING processes start
     * at once (starting processes on two loaded cores take tens of seconds each, more when many
     * start together), and the front end, once up, serves at least twice its last restart time
     * (and REGISTRY_MIN_UP_MS) before its next kill: it is up most of the time and pushes keep
     * being acknowledged. When restarts are slower than the gap the run simply kills less often.
     */
    const longSchedule = async (): Promise<void> => {
      const gap = options.minutes * 60_000 / (LONG_KILLS_PER_TYPE * targets.length);
      const inFlight = new Map<string, Promise<void>>();
      const failures: unknown[] = [];
      let round: string[] = [];
      while (Date.now() < deadline) {
        await sleep(randomInt(Math.round(gap / 2), Math.round(gap * 1.5)));
        if (round.length === 0) round = shuffled(targets);
        while (inFlight.size >= MAX_RESTARTING && Date.now() < deadline) await Promise.race([...inFlight.values(), sleep(1000)]);
        if (Date.now() >= deadline) break;
        const registryMinUp = Math.max(REGISTRY_MIN_UP_MS, 2 * (restartMs.registry?.at(-1) ?? 0));
        const next = round.find((name) => !inFlight.has(name) && (name !== 'registry' || Date.now() - upSince.registry! >= registryMinUp));
        if (!next) continue;
        round.splice(round.indexOf(next), 1);
        inFlight.set(next, killOnce(next).catch((error: unknown) => { failures.push(error); }).finally(() => inFlight.delete(next)));
      }
      await Promise.all(inFlight.values());
      if (failures.length > 0) throw failures[0];
    };
    const progress = setInterval(() => {
      const c = clients.counters;
      log(`${Math.round((Date.now() - started) / 1000)} s: kills ${JSON.stringify(kills)}; ${c.pushesAcked}/${c.pushes} pushes, ${c.pulls} pulls, load ${loadAverage().join(' ')}`);
    }, 15_000);
    try {
      if (short) await Promise.all(targets.map(shortLoop));
      else await longSchedule();
      // Whatever the last kill left, every process ends the run up and healthy.
      for (const name of targets) if (!healthy[name]) await f.waitHealthy(name);
    } finally {
      clearInterval(progress);
    }
    await clients.stop();
    const loadEnd = loadAverage();
    for (const name of targets) jobsDone[name]! += await f.metricValue(name, 'quayfleet_worker_jobs_total', 'outcome="done"').catch(() => 0);
    const finalPullFailures = await clients.verifyAll();
    log(`kills done; ${clients.ledger.live.size} live tags verified (${finalPullFailures} failures); waiting for the fleet to settle`);
    const settled = await waitSettled(f, short ? 90_000 : 240_000);
    for (const problem of settled.problems) log(`NOT SETTLED: ${problem}`);
    const locks = await redisLocks(f.redisUrl);
    const advisory = await advisoryLocks(f);
    const unhealthy: string[] = [];
    for (const name of f.names()) {
      const health = await f.health(name);
      if (health.status !== 200) unhealthy.push(`${name}:${health.status}`);
    }
    const secretScan = f.secretLeaks();
    for (const leak of secretScan.leaks.slice(0, 10)) log(`SECRET IN OUTPUT: ${leak}`);
    const c = clients.counters;
    const internalErrors = clients.tally.count(/:500$/);
    const dataLost = c.pullFailures.length;
    const minKills = Math.min(...Object.values(kills));
    const ok = dataLost === 0 && internalErrors === 0 && c.blobUnknownWithinLease.length === 0 && settled.problems.length === 0
      && locks.length === 0 && unhealthy.length === 0 && restartFailures.length === 0 && exitedOnTheirOwn.length === 0 && secretScan.leaks.length === 0 && minKills >= (short ? 1 : 20);
    const median = (xs: number[]): number => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : 0);
    for (const s of clients.tally.samples.slice(0, 10)) log(`sample: ${s}`);
    return {
      ok, dataLost,
      fleetStartSeconds: startSeconds, build: fleetBuild(),
      killed: targets, disabledByConfig: disabled,
      kills, totalKills: Object.values(kills).reduce((a, b) => a + b, 0), minKillsPerType: minKills,
      // The share of the kill phase the front end was up (its restarts are the only time it is down).
      frontEndUpFraction: Math.round(1000 * (1 - (restartMs.registry ?? []).reduce((a, b) => a + b, 0) / (options.minutes * 60_000))) / 1000,
      restartMedianMs: Object.fromEntries(Object.entries(restartMs).map(([n, xs]) => [n, median(xs)])),
      restartMaxMs: Object.fromEntries(Object.entries(restartMs).map(([n, xs]) => [n, Math.max(0, ...xs)])),
      restartFailures: restartFailures.slice(0, 10), exitedOnTheirOwn: exitedOnTheirOwn.slice(0, 10),
      jobsDoneAcrossKills: jobsDone,
      pushes: c.pushes, pushesAcked: c.pushesAcked, retags: c.retags, deletes: c.deletes, pulls: c.pulls, quotaDenied: c.quotaDenied,
      liveTagsAtEnd: clients.ledger.live.size,
      internalErrors, serverErrors: clients.tally.serverErrors(), networkErrors: clients.tally.count(/:network$/),
      blobUnknownWithinLease: c.blobUnknownWithinLease.length, blobUnknownAfterLease: c.blobUnknownAfterLease,
      pullFailures: c.pullFailures.slice(0, 10),
      settleSeconds: settled.settleSeconds, auditClean: settled.auditClean, orphanObjects: settled.orphanObjects,
      missingObjects: settled.missingObjects, gcLeftover: settled.gcLeftover, quotaMismatches: settled.quotaMismatches,
      queuesDrained: settled.queuesDrained, deadLetters: settled.deadLetters, problems: settled.problems,
      jobLocksLeft: locks.length, jobLockKeys: locks.slice(0, 5), advisoryLocksHeld: advisory.map((a) => `${a.application || 'pid'}:${a.objid}`), unhealthy,
      outputLinesScanned: secretScan.linesScanned, secretsChecked: f.secrets.size, secretsLeaked: secretScan.leaks.length,
      secretLeaks: secretScan.leaks.slice(0, 10),
      statuses: clients.tally.toJSON(),
      loadAverage: { start: loadStart, end: loadEnd },
    };
  } finally {
    await fleet?.stop();
    fs.rmSync(storesDir, { recursive: true, force: true });
  }
}
