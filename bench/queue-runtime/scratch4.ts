import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { pino } from 'pino';
import { z } from 'zod';
import { defineQueue, jobOptions, REMOVE_COMPLETED } from '../../queues/contract.ts';
import { parseConfig } from '../../shared/config/index.ts';
import { runWorker } from '../../shared/runtime/run-worker.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
const connection = { url: 'redis://127.0.0.1:6379', maxRetriesPerRequest: null };
const q = defineQueue({ name: 'x', version: 1, payload: z.object({ v: z.literal(1), n: z.number().int(), repositoryId: z.number().int() }), jobOptions: jobOptions({ removeOnComplete: REMOVE_COMPLETED }), dedupeId: (p) => `x/${p.n}` });
const log = pino({ level: 'info' }, pino.destination('/dev/null'));
const kind = process.env.K!; const C = Number(process.env.C ?? 10); const N = 20000;
const prefix = `bench:s:${randomBytes(4).toString('hex')}`; const queue = new Queue('x', { connection, prefix });
await queue.pause();
for (let s = 0; s < N; s += 1000) await queue.addBulk(Array.from({ length: 1000 }, (_, i) => ({ name: 'x', data: { v: 1, n: s + i, repositoryId: 3 }, opts: { ...q.jobOptions, jobId: `x/${s + i}` } })));
let done = 0; let fin!: () => void; const p = new Promise<void>((r) => { fin = r; });
let stop: () => Promise<void>;
if (kind === 'bare') { const w = new Worker('x', async () => { if (++done === N) fin(); }, { connection, prefix, concurrency: C }); await w.waitUntilReady(); stop = () => w.close(); }
else { const r = await runWorker(defineWorker({ name: 'w', queue: q, concurrency: C, handler: async () => { if (++done === N) fin(); } }), { config: parseConfig({}), services: { db: {} as never }, redis: { url: 'redis://127.0.0.1:6379', prefix }, log }); if (r.disabled) throw 1; stop = () => r.stop(5000); }
const c = process.cpuUsage(); const t = performance.now();
await queue.resume(); await p;
const u = process.cpuUsage(c);
console.log(kind, (N / ((performance.now() - t) / 1000)).toFixed(0), 'jobs/s', ((u.user + u.system) / N).toFixed(1), 'us/job');
await stop(); await queue.obliterate({ force: true }); await queue.close();
