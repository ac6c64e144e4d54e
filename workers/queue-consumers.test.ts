/**
 * Jobs never pile up where nothing consumes them: every queue a producer enqueues to (an
 * `enqueue`, `enqueueInTransaction` or `enqueueManyInTransaction` call outside workers/ and the
 * tests) has a worker in WORKERS consuming it, or is gated off until that worker lands.
 *
 * AWAITING_WORKER is the table of the second kind. A worker registered in workers/index.ts
 * satisfies its queue's entry by itself; the entry can then go.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as queues from '../queues/index.ts';
import { parseConfig, type QuayConfig } from '../shared/config/index.ts';
import { WORKERS } from './index.ts';

/** What keeps a queue's jobs from being produced before its worker exists. */
type Gate =
  /** A feature flag that is false by default and that every producing file checks. */
  | { readonly flag: keyof QuayConfig }
  /** Jobs are made only for rows of these tables, which no code writes until the worker's API lands. */
  | { readonly noRowsIn: readonly string[] };

/** Queues produced before their worker is merged: the worker to come and the gate meanwhile. */
const AWAITING_WORKER: Readonly<Record<string, { readonly worker: string; readonly gate: Gate }>> = {
  imagestoragereplication: { worker: 'storagereplicationworker', gate: { flag: 'FEATURE_STORAGE_REPLICATION' } },
  notification: { worker: 'notificationworker', gate: { noRowsIn: ['repositorynotification', 'namespacenotification'] } },
  secscanv4: { worker: 'securityscanningnotificationworker', gate: { flag: 'FEATURE_SECURITY_SCANNER' } },
  repomirror: { worker: 'repomirrorworker', gate: { flag: 'FEATURE_REPO_MIRROR' } },
  // FEATURE_LOG_EXPORT is true by default (Quay's): an export may be produced only with its worker.
  exportactionlogs: { worker: 'exportactionlogsworker', gate: { flag: 'FEATURE_LOG_EXPORT' } },
  chunk_cleanup: { worker: 'chunkcleanupworker', gate: { noRowsIn: [] } },
  blobuploadcleanup: { worker: 'chunkcleanupworker', gate: { noRowsIn: [] } },
};

/** Files that pass a caller's contract through (the outbox and job-context helpers themselves). */
const PASS_THROUGH = new Set(['shared/db/outbox.ts', 'shared/runtime/job-context.ts', 'shared/runtime/run-worker.ts', 'shared/runtime/producer.ts']);

const root = path.resolve(import.meta.dirname, '..');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(relative);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [relative] : [];
  });
}

/** Exported contract name -> queue name (`chunkCleanup` -> `chunk_cleanup`). */
const contractQueue = new Map(Object.entries(queues)
  .filter(([, value]) => typeof value === 'object' && value !== null && 'dedupeId' in value && 'name' in value)
  .map(([exported, contract]) => [exported, (contract as { name: string }).name]));

const ENQUEUE_CALL = /\benqueue(?:Many)?InTransaction\(\s*[\w.]+\s*,\s*(\w+)|\.enqueue\(\s*(\w+)\s*,/g;

/** Producing sites outside workers/ and the tests: queue name -> files. */
function producedQueues(): { byQueue: Map<string, string[]>; unresolved: string[] } {
  const byQueue = new Map<string, string[]>();
  const unresolved: string[] = [];
  for (const file of ['bin', 'queues', 'registry', 'shared'].flatMap(sourceFiles)) {
    const text = fs.readFileSync(path.join(root, file), 'utf8');
    for (const match of text.matchAll(ENQUEUE_CALL)) {
      const identifier = match[1] ?? match[2]!;
      const queue = contractQueue.get(identifier);
      if (queue) byQueue.set(queue, [...new Set([...(byQueue.get(queue) ?? []), file])]);
      else if (!PASS_THROUGH.has(file)) unresolved.push(`${file}: ${match[0]}`);
    }
  }
  return { byQueue, unresolved };
}

const consumers = new Map<string, string[]>();
for (const worker of Object.values(WORKERS)) consumers.set(worker.queue.name, [...(consumers.get(worker.queue.name) ?? []), worker.name]);

/** Non-test code that inserts rows into `table` (migrations excluded: they create tables, not rows). */
function writersOf(table: string): string[] {
  const insert = new RegExp(`INSERT\\s+INTO\\s+"?${table}"?\\b`, 'i');
  return ['bin', 'registry', 'shared', 'workers'].flatMap(sourceFiles)
    .filter((file) => !file.includes('/migrations/') && insert.test(fs.readFileSync(path.join(root, file), 'utf8')));
}

describe('every produced queue has a consumer', () => {
  const { byQueue, unresolved } = producedQueues();
  const defaults = parseConfig({}).quay;

  it('finds the producers (and every enqueue names its contract by its exported name)', () => {
    expect(unresolved).toEqual([]);
    // The scan works: the tag and upload paths enqueue GC through the outbox.
    expect(byQueue.get('garbagecollection')).toEqual(expect.arrayContaining(['registry/v2/uploads/commit.ts', 'shared/db/tag-history.ts']));
  });

  it.each([...contractQueue.values()])('%s: consumed by a worker, or gated off until its worker lands', (queue) => {
    const producers = byQueue.get(queue) ?? [];
    if (producers.length === 0 || consumers.has(queue)) return;
    const awaiting = AWAITING_WORKER[queue];
    expect(awaiting, `${queue} is enqueued by ${producers.join(', ')} but no worker in workers/index.ts consumes it`).toBeDefined();
    const gate = awaiting!.gate;
    if ('flag' in gate) {
      expect(defaults[gate.flag], `${gate.flag} must default to false while ${awaiting!.worker} is missing`).toBe(false);
      for (const file of producers) {
        expect(fs.readFileSync(path.join(root, file), 'utf8'), `${file} enqueues ${queue} without checking ${gate.flag}`).toContain(gate.flag);
      }
    } else {
      expect(gate.noRowsIn.length, `${queue}: no gate says why its producers (${producers.join(', ')}) make no jobs`).toBeGreaterThan(0);
      for (const table of gate.noRowsIn) {
        expect(writersOf(table), `${table} gets rows, so ${queue} jobs are made, but ${awaiting!.worker} is missing`).toEqual([]);
      }
    }
  });

  it('a worker named in the table consumes the queue it is listed for', () => {
    for (const [queue, { worker }] of Object.entries(AWAITING_WORKER)) {
      const definition = WORKERS[worker];
      if (definition) expect(definition.queue.name === queue || consumers.get(queue)?.length, `${worker} should consume ${queue}`).toBeTruthy();
    }
  });
});
