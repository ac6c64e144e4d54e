/**
 * Shutdown is bounded: a slow client reading a pull does not hold SIGTERM past the shutdown
 * deadline. At the deadline the front end closes what is still open and the process exits, well
 * inside the grace period deploy/ gives the pod.
 */
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.ts';
import { TEST_REDIS_URL } from '../servers/ports.ts';
import { createUser, pushToken, startFleetProcess } from './fleet-process.ts';

// Its own Redis database: the registry publishes jobs nobody here consumes, and the fleet of
// postgres-outage.test.ts (database 11) must not pick them up.
const redisUrl = `${TEST_REDIS_URL.replace(/\/\d*$/, '')}/12`;
const DEADLINE_S = 2;
const BLOB_BYTES = 64 * 1024 * 1024;

/** GETs `url` and reads at most one chunk (≤ 64 KiB) per 100 ms, until the response ends or breaks. */
function slowPull(url: string, token: string): { started: Promise<void>; ended: Promise<{ received: number; complete: boolean }> } {
  let onStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => { onStarted = resolve; });
  const ended = new Promise<{ received: number; complete: boolean }>((resolve) => {
    let received = 0;
    const request = http.get(url, { headers: { authorization: `Bearer ${token}` } }, (response) => {
      expect(response.statusCode).toBe(200);
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        onStarted();
        response.pause();
        setTimeout(() => response.resume(), 100);
      });
      response.on('end', () => resolve({ received, complete: response.complete }));
      response.on('error', () => resolve({ received, complete: false }));
      response.on('close', () => resolve({ received, complete: response.complete }));
    });
    request.on('error', () => resolve({ received, complete: false }));
  });
  return { started, ended };
}

interface Deployment {
  kind: string;
  spec: { template: { spec: {
    terminationGracePeriodSeconds: number;
    containers: { env?: { name: string; value?: string }[]; lifecycle?: { preStop?: { exec?: { command?: string[] } } } }[];
  } } };
}

describe('shutdown', { timeout: 300_000 }, () => {
  it('closes a slow pull still being read at the deadline and exits, instead of waiting for the client', async () => {
    const database = await createTestDatabase('shutdown');
    const fleet = await startFleetProcess({
      dbUri: database.url, redisUrl, httpPort: 18564, metricsPort: 18574, command: ['registry'],
      env: { QUAYFLEET_SHUTDOWN_DEADLINE_SECONDS: String(DEADLINE_S) },
    });
    try {
      await createUser(database.url, 'alice', 'password-1');
      const token = await pushToken(fleet.base, '127.0.0.1:18564', 'alice', 'password-1', 'alice/big');
      const blob = randomBytes(BLOB_BYTES);
      const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
      const push = await fetch(`${fleet.base}/v2/alice/big/blobs/uploads/?digest=${digest}`, {
        method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: blob,
      });
      expect(push.status).toBe(201);

      const pull = slowPull(`${fleet.base}/v2/alice/big/blobs/${digest}`, token);
      await pull.started;
      const signalledAt = Date.now();
      fleet.child.kill('SIGTERM');
      const exit = await fleet.exited;
      const tookMs = Date.now() - signalledAt;
      const { received, complete } = await pull.ended;

      expect(exit, fleet.output()).toEqual({ code: 0, signal: null });
      // The deadline, plus the rest of the shutdown on a loaded machine; the pull alone needs > 100 s.
      expect(tookMs).toBeGreaterThanOrEqual(DEADLINE_S * 1000 - 200);
      expect(tookMs).toBeLessThan(DEADLINE_S * 1000 + 8000);
      expect(complete).toBe(false);
      expect(received).toBeLessThan(BLOB_BYTES);
      expect(fleet.output()).toContain('shutdown deadline reached; closing the HTTP connections still open');
    } finally {
      await fleet.stop();
      await database.drop();
    }
  });

  it('fits, with the preStop sleep and the cleanup after the deadline, well inside the grace period of every Deployment', () => {
    const dir = path.resolve(import.meta.dirname, '../../deploy/kubernetes');
    const files = [path.join(dir, 'registry/deployment.yaml'), ...fs.readdirSync(path.join(dir, 'workers')).map((f) => path.join(dir, 'workers', f))];
    for (const file of files) {
      for (const document of fs.readFileSync(file, 'utf8').split(/^---$/m).map((text) => parse(text) as Deployment | null)) {
        if (document?.kind !== 'Deployment') continue;
        const pod = document.spec.template.spec;
        const command = pod.containers[0]!.lifecycle?.preStop?.exec?.command ?? [];
        const preStop = command[0] === 'sleep' ? Number(command[1]) : 0;
        const env = Object.fromEntries((pod.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
        const deadline = Number(env.QUAYFLEET_SHUTDOWN_DEADLINE_SECONDS ?? 25);
        // preStop + deadline + 10 s of cleanup (the hard exit), with at least a third of the period to spare.
        expect(preStop + deadline + 10, file).toBeLessThanOrEqual(pod.terminationGracePeriodSeconds * 2 / 3);
      }
    }
  });
});
