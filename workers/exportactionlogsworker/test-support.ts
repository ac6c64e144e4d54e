/**
 * Test helpers for the export worker: a job context over real services, the export job an API
 * request left in the outbox, a callback receiver, and a loopback SMTP server. Test-only.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { exportactionlogs, type ExportRequestPayload } from '../../queues/exportactionlogs.ts';
import type { Pool } from '../../shared/db/pool.ts';
import { createLogger } from '../../shared/runtime/logger.ts';
import { RADOSGW } from '../../test/servers/storage-endpoints.ts';
import type { JobContext } from '../../shared/runtime/worker.ts';
import type { ExportServices } from './handler.ts';

/** Config keys making the test RadosGW bucket the only location, under a fresh `<prefix>-<random>` path. */
export function radosgwOnly(prefix: string): Record<string, unknown> {
  return {
    DISTRIBUTED_STORAGE_CONFIG: {
      radosgw: ['RadosGWStorage', {
        hostname: RADOSGW.host, port: RADOSGW.port, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey,
        bucket_name: RADOSGW.bucket, storage_path: `${prefix}-${randomBytes(4).toString('hex')}`,
      }],
    },
    DISTRIBUTED_STORAGE_PREFERENCE: ['radosgw'],
  };
}

/** A handler context for attempt `attempt` of 3. */
export function jobContext(services: ExportServices, attempt = 1, signal = new AbortController().signal): JobContext<ExportServices> {
  return {
    ...services,
    log: createLogger({ level: 'silent' }),
    signal,
    job: { id: 'test', queueName: exportactionlogs.name, attempt, attemptsMade: attempt - 1, maxAttempts: 3, scheduleId: undefined },
    resumeFrom: undefined,
    enqueue: async () => 'unused',
    unfinishedJobs: async () => [],
    progress: async () => undefined,
    checkpoint: async () => undefined,
  };
}

/** The payloads of export jobs waiting in the outbox (then removed, as a relay would). */
export async function takeExportJobs(db: Pool): Promise<ExportRequestPayload[]> {
  const { rows } = await db.query<{ payload: unknown }>(
    `DELETE FROM outbox WHERE queue_name = $1 RETURNING payload`, [exportactionlogs.name]);
  return rows.map((r) => exportactionlogs.parse(r.payload)).filter((p): p is ExportRequestPayload => 'exportId' in p);
}

/** An HTTP server recording JSON POST bodies; `statuses` are answered in turn, then 200. */
export async function callbackReceiver(statuses: number[] = []): Promise<{ url: string; bodies: Record<string, unknown>[]; close(): Promise<void> }> {
  const bodies: Record<string, unknown>[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      response.statusCode = statuses.shift() ?? 200;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/callback`, bodies, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A loopback SMTP server without TLS or auth that records each message's raw text. */
export async function smtpReceiver(): Promise<{ port: number; messages: string[]; close(): Promise<void> }> {
  const messages: string[] = [];
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push(Buffer.concat(chunks).toString('utf8'));
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return { port, messages, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
