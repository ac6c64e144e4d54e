/**
 * The benchmark's own Azurite. In-memory Azurite slows down with every blob and extent it has held
 * (a batch delete of 256 blobs takes 0.8 s in a fresh container, of 4096 blobs 110 s, and after a
 * few GiB its garbage collection stalls every request for minutes), so the benchmark never loads the
 * instance the tests share: it starts a private one and stops it, by PID, when done.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { AZURITE } from '../../test/servers/storage-endpoints.ts';
import { spawnDaemon, stopPid, waitForPort } from '../../test/servers/storage-processes.ts';

const require = createRequire(import.meta.url);

/** Port of the benchmark's Azurite (below the ephemeral range, away from the tests' 10000). */
export const BENCH_AZURITE_PORT = Number(process.env.BENCH_AZURITE_PORT ?? 10100);
export const BENCH_AZURITE_ENDPOINT = `http://127.0.0.1:${BENCH_AZURITE_PORT}/${AZURITE.accountName}`;
export const BENCH_AZURITE_CONTAINER = 'quayfleet-bench';

/** Starts the private Azurite with the benchmark's container; resolves to the function stopping it. */
export async function startBenchAzurite(workDir: string): Promise<() => Promise<void>> {
  const logFile = path.join(workDir, 'azurite.log');
  const daemon = spawnDaemon(process.execPath, [
    require.resolve('azurite/dist/src/blob/main.js'), '--blobHost', '127.0.0.1', '--blobPort', String(BENCH_AZURITE_PORT),
    '--inMemoryPersistence', '--skipApiVersionCheck', '--silent', '--disableTelemetry',
  ], logFile, workDir);
  const stop = (): Promise<void> => stopPid(daemon.pid);
  try {
    await waitForPort('benchmark azurite', BENCH_AZURITE_PORT, 30_000, () => !daemon.exited(), logFile);
    const service = new BlobServiceClient(BENCH_AZURITE_ENDPOINT, new StorageSharedKeyCredential(AZURITE.accountName, AZURITE.accountKey));
    await service.getContainerClient(BENCH_AZURITE_CONTAINER).createIfNotExists();
  } catch (error) {
    await stop();
    throw error;
  }
  return stop;
}
