/**
 * A Postgres cluster of the test's own (initdb + pg_ctl from the machine's Postgres 15), on a fixed
 * loopback port, so a test can stop and restart a server without touching the shared one on 5432.
 * Postgres refuses to run as root: as root the binaries run as the `postgres` user.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

export interface PrivatePostgres {
  readonly url: string;
  readonly port: number;
  /** Stops the server (fast shutdown: backends are terminated, as in a real restart). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server if it runs and removes its directory. */
  destroy(): Promise<void>;
}

function asPostgres(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

async function pg(command: string, args: string[]): Promise<void> {
  const [file, argv] = asPostgres(path.join(BIN, command), args);
  await run(file, argv, { timeout: 60_000 });
}

/** Creates and starts a cluster on 127.0.0.1:`port` (trust auth, user postgres). */
export async function startPrivatePostgres(port: number): Promise<PrivatePostgres> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qf-private-pg-'));
  const data = path.join(dir, 'data');
  if (process.getuid?.() === 0) await run('chown', ['postgres:postgres', dir]);
  await pg('initdb', ['--no-sync', '-A', 'trust', '-U', 'postgres', '-D', data]);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  const start = () => pg('pg_ctl', ['-w', '-t', '60', '-D', data, '-l', path.join(dir, 'log'), '-o', options, 'start']);
  const stop = () => pg('pg_ctl', ['-w', '-t', '60', '-D', data, '-m', 'fast', 'stop']);
  await start();
  let running = true;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop() { await stop(); running = false; },
    async start() { await start(); running = true; },
    async destroy() {
      if (running) await stop().catch(() => undefined);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
