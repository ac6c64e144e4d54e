/**
 * Faults: two fleets (`quayfleet all` on RadosGW through a fault proxy, and on a filesystem that
 * can fill) carry a steady load of pushes, pulls and deletes with GC collecting continuously,
 * while the run breaks what they depend on, one fault at a time: Redis flushed, Redis restarted,
 * Postgres backends terminated, Postgres restarted, storage answering errors, answering slowly,
 * not answering, refusing connections, the disk full. After each fault is healed, the run
 * measures how long the fleets take to work again without any help (time to recovery). At the end
 * it checks that nothing acknowledged was lost (every image whose push was answered 201 and not
 * deleted pulls back with the right digests), that no request failed outside a fault window and
 * none inside got anything but success or 503 UNAVAILABLE, that every queue drained and GC settled
 * (storage matching the database), and that no process crashed.
 *
 * The short form (CI) injects each fault once for 2 s; the long form repeats the cycle for
 * `minutes`, holding each fault 10 s (the storage hang 75 s, past the S3 client's idle timeout).
 *
 * Time to recovery is measured from the heal to the moment every fleet the fault hit passes a
 * probe: /health/instance 200, a push (three blobs and a manifest) and its pull back, and a GC
 * iteration completed after the heal. Its resolution is one probe round (about a second on a
 * loaded machine). The fleets are `quayfleet all` processes (front end and every worker in one
 * process), on servers of the run's own, so that a Postgres restart is a real one.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { faultCatalog, type Fault, type FleetName } from './catalog.ts';
import {
  classify, gcIterations, probeClient, schedulerCount, verifyAcknowledged, waitRecovered, waitSettled, windowOf, type Settled, type Window,
} from './checks.ts';
import { LEASE_SECONDS, type FleetUnderTest } from './fleet-pool.ts';
import { LoadLedger, runLoad, type LoadClient } from './load.ts';
import { startFaultSystem, type FaultSystem } from './system.ts';
import type { PartFigures, PartOptions } from '../types.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const loadAverage = (): string => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** One injection of one fault. */
interface Injection {
  readonly fault: string;
  readonly heldMs: number;
  /** From heal to both fleets working again; null when they did not within the limit. */
  readonly recoveryMs: number | null;
  /** Requests the fault proxy saw while it was in the fault's mode (storage faults). */
  readonly storageRequestsFaulted?: number;
  /** Per fleet, the last condition that held its recovery back. */
  readonly waitingOn: Record<string, string>;
}

/** Timing of a run. */
interface Pace {
  readonly short: boolean;
  readonly holdMs: number;
  readonly recoveryLimitMs: number;
  readonly settleLimitMs: number;
  /** Quiet time after each recovery, so a late failure is seen outside the window. */
  readonly gapMs: number;
  readonly clients: number;
}

function paceOf(options: PartOptions): Pace {
  return options.short
    // Settling can take a minute after a storage fault: a storage delete that failed during it is
    // retried by the GC sweep once its record is 60 s old (shared/db/gc/run.ts), by design.
    ? { short: true, holdMs: 2000, recoveryLimitMs: 60_000, settleLimitMs: 120_000, gapMs: 500, clients: 2 }
    : { short: false, holdMs: 10_000, recoveryLimitMs: 180_000, settleLimitMs: 180_000, gapMs: 5000, clients: 4 };
}

/** Runs the fault part; see the module comment. */
export async function run(options: PartOptions): Promise<PartFigures> {
  const startedAt = Date.now();
  const log = (line: string): void => options.log(`[${((Date.now() - startedAt) / 1000).toFixed(1)} s] ${line}`);
  const pace = paceOf(options);
  const loadBefore = loadAverage();
  const system = await startFaultSystem({ runId: randomBytes(4).toString('hex'), diskBytes: options.short ? 32 * 1024 * 1024 : 64 * 1024 * 1024, log });
  try {
    return await runFaults(system, pace, { ...options, log }, { startedAt, loadBefore });
  } finally {
    await system.close();
  }
}

async function runFaults(system: FaultSystem, pace: Pace, options: PartOptions, started: { startedAt: number; loadBefore: string }): Promise<PartFigures> {
  const { log } = options;
  const fleets = system.fleets.all;
  const sharedLayer = randomBytes(16 * 1024);
  const ledger = new LoadLedger();
  const probeLedger = new LoadLedger();
  const probes = fleets.map((fleet) => probeClient(fleet, probeLedger, sharedLayer, LEASE_SECONDS * 1000));
  const ready = await waitRecovered(fleets, probes, fleets.map(() => -1), pace.recoveryLimitMs);
  if (ready.at === undefined) throw new Error(`the fleets never worked before any fault: ${JSON.stringify(ready.waitingOn)}`);
  const schedulers = await Promise.all(fleets.map(schedulerCount));
  const loads = fleets.map((fleet) => runLoad(fleet.target, ledger, pace.clients, sharedLayer, LEASE_SECONDS * 1000));
  log(`load running: ${pace.clients} clients per fleet`);
  await sleep(pace.gapMs * 2);

  const injections: Injection[] = [];
  const windows: Window[] = [];
  const endAt = started.startedAt + options.minutes * 60_000;
  const catalog = faultCatalog(system);
  let cycles = 0;
  do {
    for (const fault of catalog) {
      const { injection, window } = await inject(fault, system, fleets, probes, pace);
      injections.push(injection);
      windows.push(window);
      log(`fault ${fault.name}: held ${injection.heldMs} ms, recovered ${injection.recoveryMs === null ? 'NOT within the limit' : `in ${injection.recoveryMs} ms`}`
        + `${Object.keys(injection.waitingOn).length > 0 ? ` (had waited on ${JSON.stringify(injection.waitingOn)})` : ''} (load ${loadAverage()})`);
      await sleep(pace.gapMs);
    }
    cycles += 1;
  } while (!options.short && Date.now() < endAt);

  await Promise.all(loads.map((load) => load.stop()));
  log('load stopped; waiting for queues to drain and GC to settle');
  const settled = await Promise.all(fleets.map((fleet, i) => waitSettled(fleet, schedulers[i]!, pace.settleLimitMs)));
  log(`settled: ${settled.map((s) => `${s.fleet} ${s.settled ? 'yes' : 'NO'} after ${s.waitedMs} ms${s.lastWaitedOn ? ` (last waited on ${s.lastWaitedOn})` : ''}`).join(', ')}`);
  const verified = await verifyAcknowledged([...ledger.images, ...probeLedger.images], fleets);
  log(`verified ${verified.checked} acknowledged images: ${verified.lost.length} lost`);
  const classified = classify(ledger.records, windows);
  const crashes = fleets.flatMap((fleet) => crashesOf(fleet));
  return figures({ injections, windows, settled, verified, classified, crashes, cycles, ledger, probeLedger, schedulers, started, log });
}

/** Injects `fault`, holds it, heals it, and measures the time until every fleet works again. */
async function inject(fault: Fault, system: FaultSystem, allFleets: readonly FleetUnderTest[], allProbes: readonly LoadClient[], pace: Pace): Promise<{ injection: Injection; window: Window }> {
  const hit = allFleets.map((fleet) => fault.fleets.includes(fleet.spec.name as FleetName));
  const fleets = allFleets.filter((_, i) => hit[i]);
  const probes = allProbes.filter((_, i) => hit[i]);
  const proxyBefore = { ...system.proxy.requests };
  const from = Date.now();
  await fault.inject();
  if (!fault.instant) await sleep(pace.short ? pace.holdMs : fault.longHoldMs ?? pace.holdMs);
  const proxyMode = system.proxy.mode;
  await fault.heal();
  const healedAt = Date.now();
  const gcAtHeal = await Promise.all(fleets.map(gcIterations));
  const { at: recoveredAt, waitingOn } = await waitRecovered(fleets, probes, gcAtHeal.map((n) => (Number.isNaN(n) ? -1 : n)), pace.recoveryLimitMs);
  const faulted = proxyMode === 'pass' ? undefined : system.proxy.requests[proxyMode] - proxyBefore[proxyMode];
  return {
    injection: {
      fault: fault.name, heldMs: healedAt - from, recoveryMs: recoveredAt === undefined ? null : recoveredAt - healedAt,
      ...(faulted === undefined ? {} : { storageRequestsFaulted: faulted }), waitingOn,
    },
    window: { fault: fault.name, fleets: fault.fleets, from, to: recoveredAt ?? Date.now() },
  };
}

/**
 * Lines of a fleet's output that mean a crash or an unhandled error (a pino line at level fatal,
 * or whose message says unhandled/uncaught; a raw stack trace on stderr), and whether it exited.
 */
function crashesOf(fleet: FleetUnderTest): string[] {
  const lines = fleet.process.output().split('\n').filter((line) => {
    if (!line.startsWith('{')) return /Unhandled|uncaught|heap out of memory|^\s+at /i.test(line);
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string };
      return (entry.level ?? 0) >= 60 || /unhandled|uncaught/i.test(entry.msg ?? '');
    } catch {
      return false;
    }
  });
  if (!fleet.process.alive()) lines.unshift(`${fleet.spec.name}: process exited`);
  return lines.map((line) => `${fleet.spec.name}: ${line.slice(0, 300)}`);
}

interface Outcome {
  readonly injections: Injection[];
  readonly windows: Window[];
  readonly settled: Settled[];
  readonly verified: { checked: number; lost: string[] };
  readonly classified: ReturnType<typeof classify>;
  readonly crashes: string[];
  readonly cycles: number;
  readonly ledger: LoadLedger;
  readonly probeLedger: LoadLedger;
  readonly schedulers: number[];
  readonly started: { startedAt: number; loadBefore: string };
  log(line: string): void;
}

function figures(outcome: Outcome): PartFigures {
  const { injections, settled, verified, classified, crashes, ledger, probeLedger, log } = outcome;
  const recovered = injections.filter((i) => i.recoveryMs !== null);
  const dataLost = verified.lost.length + ledger.corruptions.length + probeLedger.corruptions.length;
  const wrong = [...classified.wrongDuringFaults, ...classified.failuresOutsideFaults];
  const byFault: Record<string, { recoveryMs: (number | null)[]; requests: number; unavailable: number; wrong: number; longestAnswerMs: number }> = {};
  for (const injection of injections) {
    const entry = byFault[injection.fault] ??= { recoveryMs: [], requests: 0, unavailable: 0, wrong: 0, longestAnswerMs: 0 };
    entry.recoveryMs.push(injection.recoveryMs);
  }
  // How long the load's clients were held for an answer in each fault (a silent storage server
  // must be answered 503 within the front end's storage deadline, not after the S3 client's minutes).
  for (const record of ledger.records) {
    const window = windowOf(record, outcome.windows);
    if (window) byFault[window.fault]!.longestAnswerMs = Math.max(byFault[window.fault]!.longestAnswerMs, record.endedAt - record.startedAt);
  }
  for (const [fault, n] of Object.entries(classified.duringFaults)) byFault[fault]!.requests = n;
  for (const [fault, n] of Object.entries(classified.unavailableDuringFaults)) byFault[fault]!.unavailable = n;
  for (const record of classified.wrongDuringFaults) {
    const window = windowOf(record, outcome.windows);
    if (window) byFault[window.fault]!.wrong += 1;
  }
  const ok = recovered.length === injections.length && dataLost === 0 && wrong.length === 0
    && settled.every((s) => s.settled) && crashes.length === 0;
  for (const record of wrong.slice(0, 20)) log(`wrong answer: ${JSON.stringify(record)}`);
  for (const line of verified.lost.slice(0, 20)) log(`lost: ${line}`);
  for (const line of crashes.slice(0, 20)) log(`crash: ${line}`);
  for (const state of settled.filter((s) => !s.settled)) log(`not settled: ${JSON.stringify(state)}`);
  return {
    ok,
    dataLost,
    faultsInjected: injections.length,
    faultsSurvived: recovered.length,
    cycles: outcome.cycles,
    recoveryMs: Object.fromEntries(Object.entries(byFault).map(([fault, e]) => [fault, e.recoveryMs.length === 1 ? e.recoveryMs[0] : e.recoveryMs])),
    maxRecoveryMs: Math.max(0, ...recovered.map((i) => i.recoveryMs!)),
    requests: classified.total,
    requestsDuringFaults: Object.values(classified.duringFaults).reduce((a, b) => a + b, 0),
    unavailableDuringFaults: Object.values(classified.unavailableDuringFaults).reduce((a, b) => a + b, 0),
    wrongDuringFaults: classified.wrongDuringFaults.length,
    failuresOutsideFaults: classified.failuresOutsideFaults.length,
    pushesOutlastingLease: ledger.records.filter((r) => r.leaseExpired).length,
    perFault: byFault,
    storageRequestsFaulted: Object.fromEntries(injections.filter((i) => i.storageRequestsFaulted !== undefined).map((i) => [i.fault, i.storageRequestsFaulted])),
    imagesAcknowledged: ledger.images.filter((i) => i.state !== 'uncertain').length + probeLedger.images.length,
    imagesVerified: verified.checked,
    imagesUncertain: ledger.images.filter((i) => i.state === 'uncertain').length,
    settled: settled.map((s) => ({ fleet: s.fleet, settled: s.settled, waitedMs: s.waitedMs, backlog: s.backlog, deadLetters: s.deadLetters, outbox: s.outbox, schedulers: `${s.schedulers}/${outcome.schedulers[settled.indexOf(s)]}`, audit: s.audit })),
    crashes: crashes.length,
    wallSeconds: Math.round((Date.now() - outcome.started.startedAt) / 1000),
    loadBefore: outcome.started.loadBefore,
    loadAfter: loadAverage(),
  };
}
