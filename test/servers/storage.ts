/**
 * Starts the storage servers the conformance suite needs (Ceph RadosGW, Azurite, the GCS emulator)
 * when their fixed ports do not already answer, creates the test bucket and containers (and RadosGW's
 * Swift user), and returns a function that stops the servers test runs started, by PID. A server that cannot be started
 * fails the run with the reason and the package to install; nothing is skipped.
 *
 * Several test runs may share this machine (engineers, CI), so starting and stopping happen under
 * a machine-wide lock, and the stop function only stops servers when no other run is using them.
 * Servers someone started by hand are reused and never stopped.
 */
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { prepareRadosgwSwift } from './radosgw-swift.ts';
import { AZURITE, GCS_EMULATOR, RADOSGW } from './storage-endpoints.ts';
import {
  isAlive, portAnswers, recordOwned, registerUser, releaseUser, runToCompletion, spawnDaemon, stopOwned, stopPid, waitForPort,
  withStartLock, type OwnedServer,
} from './storage-processes.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const WORK_DIR = '/tmp/quayfleet-storage-servers';
const LOG_DIR = path.join(WORK_DIR, 'logs');
const CEPH_PACKAGES = 'apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common';

/** Makes RadosGW, Azurite and the GCS emulator answer; returns the function that stops what test runs started. */
export async function startStorageServers(): Promise<() => Promise<void>> {
  const stop = (): Promise<void> => withStartLock(async () => {
    if (releaseUser() === 0) await stopOwned();
  });
  try {
    await withStartLock(async () => {
      registerUser();
      const results = await Promise.allSettled([startRadosgw(), startAzurite(), startGcsEmulator()]);
      for (const result of results) if (result.status === 'fulfilled' && result.value) recordOwned(result.value);
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
      if (failures.length > 0) throw new Error(`storage test servers unavailable:\n  ${failures.join('\n  ')}`);
    });
    await Promise.all([createRadosgwBucket(), createAzuriteContainer()]);
    // Under the lock: two runs must not race radosgw-admin on the same user.
    await withStartLock(() => prepareRadosgwSwift(LOG_DIR));
  } catch (error) {
    await stop();
    throw error;
  }
  return stop;
}

/**
 * Starts the single-node Ceph cluster and RadosGW unless RadosGW already answers. A fresh machine's
 * first cluster has once taken longer than the script's 60 s step limit (seen on a new CI machine
 * straight after the Debian packages were installed), so a failed start is retried once on a
 * clean directory; the failed attempt's Ceph logs are kept under the logs directory.
 */
async function startRadosgw(): Promise<OwnedServer | undefined> {
  if (await portAnswers(RADOSGW.port)) return undefined;
  const attempts = 2;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startRadosgwOnce(attempt);
    } catch (error) {
      if (attempt >= attempts || (error as { notInstalled?: boolean }).notInstalled) throw error;
    }
  }
}

async function startRadosgwOnce(attempt: number): Promise<OwnedServer> {
  const logFile = path.join(LOG_DIR, `radosgw-up-${attempt}.log`);
  const env = { ...process.env, CEPH_DIR: RADOSGW.dir, RGW_PORT: String(RADOSGW.port), RGW_ACCESS_KEY: RADOSGW.accessKey, RGW_SECRET_KEY: RADOSGW.secretKey };
  const code = await runToCompletion('bash', [path.join(here, 'radosgw-up.sh')], logFile, env, 180_000);
  const pids = ['rgw', 'osd', 'mon'].flatMap((name) => {
    try {
      return [Number(readFileSync(path.join(RADOSGW.dir, `${name}.pid`), 'utf8'))];
    } catch {
      return [];
    }
  });
  const server: OwnedServer = { name: 'radosgw', pids, dir: RADOSGW.dir };
  if (code === 3) throw Object.assign(new Error(`radosgw is not installed (${CEPH_PACKAGES})`), { notInstalled: true });
  if (code !== 0) {
    for (const pid of pids) await stopPid(pid);
    const keptLogs = path.join(LOG_DIR, `ceph-failed-${attempt}`);
    rmSync(keptLogs, { recursive: true, force: true });
    try {
      cpSync(path.join(RADOSGW.dir, 'log'), keptLogs, { recursive: true });
    } catch {
      // the script failed before it made the log directory
    }
    rmSync(RADOSGW.dir, { recursive: true, force: true });
    throw new Error(`radosgw-up.sh failed with exit code ${code} (attempt ${attempt}); see ${logFile} and ${keptLogs}`);
  }
  return server;
}

/** Starts Azurite's blob service in memory unless its port answers. */
async function startAzurite(): Promise<OwnedServer | undefined> {
  if (await portAnswers(AZURITE.port)) return undefined;
  const main = require.resolve('azurite/dist/src/blob/main.js');
  const logFile = path.join(LOG_DIR, 'azurite.log');
  // --skipApiVersionCheck: the SDK speaks a newer API version than the newest Azurite for Node 20.
  // Its own working directory keeps any file it writes out of the project tree.
  const daemon = spawnDaemon(process.execPath, [
    main, '--blobHost', AZURITE.host, '--blobPort', String(AZURITE.port), '--inMemoryPersistence',
    '--skipApiVersionCheck', '--silent', '--disableTelemetry',
  ], logFile, path.join(WORK_DIR, 'azurite'));
  await stopOnFailure(daemon.pid, waitForPort('azurite', AZURITE.port, 30_000, () => !daemon.exited(), logFile));
  return { name: 'azurite', pids: [daemon.pid] };
}

/** Starts the firebase-tools Cloud Storage emulator (gcs-emulator.cjs) unless its port answers. */
async function startGcsEmulator(): Promise<OwnedServer | undefined> {
  if (await portAnswers(GCS_EMULATOR.port)) return undefined;
  const logFile = path.join(LOG_DIR, 'gcs-emulator.log');
  const daemon = spawnDaemon(process.execPath, [path.join(here, 'gcs-emulator.cjs'), String(GCS_EMULATOR.port)], logFile, path.join(WORK_DIR, 'gcs'));
  await stopOnFailure(daemon.pid, waitForPort('gcs emulator', GCS_EMULATOR.port, 60_000, () => !daemon.exited(), logFile));
  return { name: 'gcs emulator', pids: [daemon.pid] };
}

async function stopOnFailure(pid: number, ready: Promise<void>): Promise<void> {
  try {
    await ready;
  } catch (error) {
    if (isAlive(pid)) await stopPid(pid);
    throw error;
  }
}

/** Creates the test bucket on RadosGW (idempotent). The first bucket takes ~2 s while pools are made. */
async function createRadosgwBucket(): Promise<void> {
  const s3 = new S3Client({
    endpoint: RADOSGW.endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: RADOSGW.accessKey, secretAccessKey: RADOSGW.secretKey },
  });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: RADOSGW.bucket }));
  } catch (error) {
    if ((error as Error).name !== 'BucketAlreadyOwnedByYou' && (error as Error).name !== 'BucketAlreadyExists') throw error;
  } finally {
    s3.destroy();
  }
}

/** Creates the test container on Azurite (idempotent). */
async function createAzuriteContainer(): Promise<void> {
  const service = new BlobServiceClient(AZURITE.endpoint, new StorageSharedKeyCredential(AZURITE.accountName, AZURITE.accountKey));
  await service.getContainerClient(AZURITE.container).createIfNotExists();
}
