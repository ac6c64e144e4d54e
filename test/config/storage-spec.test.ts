/**
 * OpenShift spec.storage variants against the real servers: Ceph RadosGW path-style and
 * virtual-hosted (a second RadosGW on the same cluster with `rgw_dns_name = localhost`, and a DNS
 * lookup resolving `*.localhost` as a wildcard alias would), RadosGW behind a self-signed TLS
 * endpoint trusted through `trustedCA`, Azurite, the Cloud Storage emulator and a filesystem volume.
 * Each builds the location exactly as a booting process does (parseConfig, createDistributedStorage,
 * provisionSpecStorage) and writes, reads, lists and deletes an object through it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import dns from 'node:dns';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionSpecStorage } from '../../bin/fleet.ts';
import { parseConfig } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/runtime/logger.ts';
import { createDistributedStorage, type DistributedStorage } from '../../shared/storage/distributed.ts';
import { AZURITE, GCS_EMULATOR, RADOSGW, RADOSGW_SWIFT } from '../servers/storage-endpoints.ts';

/** Ports of this file's servers (branch f-config's range). */
const VHOST_RGW_PORT = 22610;
const TLS_PORT = 22611;
const SWIFT_TLS_PORT = 22612;
/** A Cloud Storage emulator of this file's own, started from test/servers/gcs-emulator.cjs (with its bucket API). */
const GCS_PORT = 22650;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-spec-'));
const log = createLogger({ level: 'silent' });
const RGW_KEYS = { REGISTRY_STORAGE_S3_ACCESSKEY: RADOSGW.accessKey, REGISTRY_STORAGE_S3_SECRETKEY: RADOSGW.secretKey };
const fresh = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

/** Builds and provisions the location of `spec` as a booting process does. */
async function specStorage(spec: unknown, env: NodeJS.ProcessEnv, options: { provision?: boolean } = {}): Promise<DistributedStorage> {
  const config = parseConfig({ SERVER_HOSTNAME: 'quay.example.com', spec }, env);
  const storage = await createDistributedStorage(config.quay, { env });
  try {
    if (options.provision !== false) await provisionSpecStorage(config, storage, log);
  } catch (error) {
    await storage.close();
    throw error;
  }
  return storage;
}

/** Writes, stats, reads, lists and deletes one object through the `default` location. */
async function roundTrip(storage: DistributedStorage): Promise<void> {
  const store = storage.store('default');
  const body = randomBytes(1024);
  const key = `sha256/ab/${randomBytes(32).toString('hex')}`;
  await store.put(key, body);
  expect((await store.stat(key)).size).toBe(1024);
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key)) chunks.push(chunk as Buffer);
  expect(Buffer.concat(chunks).equals(body)).toBe(true);
  const listed: string[] = [];
  for await (const object of store.list('sha256/ab/')) listed.push(object.key);
  expect(listed).toContain(key);
  await store.delete(key);
  expect(await store.exists(key)).toBe(false);
}

describe('spec.storage.s3 on Ceph RadosGW', () => {
  it('path style (virtualHostedStyle false): the bucket is created under Managed, REGISTRY_STORAGE_S3_* override wrong ambient keys', async () => {
    const bucket = fresh('qf-spec-path');
    const storage = await specStorage({ storage: { s3: { bucket, regionEndpoint: RADOSGW.endpoint } } },
      { ...RGW_KEYS, AWS_ACCESS_KEY_ID: 'WRONG', AWS_SECRET_ACCESS_KEY: 'wrong' });
    try {
      expect(await storage.store('default').ensureBucket!()).toBe('exists');
      await roundTrip(storage);
    } finally {
      await storage.close();
    }
  });

  it('the ambient AWS_* keys (an ODF bucket claim secret) serve when REGISTRY_STORAGE_S3_* are absent', async () => {
    const storage = await specStorage({ storage: { s3: { bucket: RADOSGW.bucket, regionEndpoint: RADOSGW.endpoint } } },
      { AWS_ACCESS_KEY_ID: RADOSGW.accessKey, AWS_SECRET_ACCESS_KEY: RADOSGW.secretKey });
    try {
      await roundTrip(storage);
    } finally {
      await storage.close();
    }
  });

  it('Unmanaged never creates the bucket: a missing one fails at start, naming it', async () => {
    const bucket = fresh('qf-spec-unmanaged');
    await expect(specStorage({ storage: { managementState: 'Unmanaged', s3: { bucket, regionEndpoint: RADOSGW.endpoint } } }, RGW_KEYS))
      .rejects.toThrow(`bucket ${bucket} does not exist (storage managementState is Unmanaged: create it, or set Managed)`);
  });

  describe('virtual-hosted style on a RadosGW with rgw_dns_name', () => {
    let rgw: ChildProcess | undefined;
    const looked: string[] = [];
    const lookup = dns.lookup;
    beforeAll(async () => {
      // A wildcard alias *.localhost -> 127.0.0.1, as DNS would give a gateway's wildcard record.
      (dns as { lookup: unknown }).lookup = ((host: string, options: unknown, callback: unknown) => {
        if (host.endsWith('.localhost') || host === 'localhost') {
          looked.push(host);
          const cb = (typeof options === 'function' ? options : callback) as (...args: unknown[]) => void;
          const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
          process.nextTick(() => (all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)));
          return;
        }
        return (lookup as (...args: unknown[]) => void)(host, options, callback);
      }) as typeof dns.lookup;
      const dir = path.join(work, 'rgw');
      fs.mkdirSync(dir, { recursive: true });
      rgw = spawn('radosgw', ['-c', path.join(RADOSGW.dir, 'ceph.conf'), '-n', 'client.rgw.fconfig', '-f',
        `--rgw_frontends=beast endpoint=127.0.0.1:${VHOST_RGW_PORT}`, '--rgw_dns_name=localhost', `--rgw_data=${dir}`,
        `--log_file=${path.join(dir, 'rgw.log')}`, `--admin_socket=${path.join(dir, 'rgw.asok')}`], { stdio: 'ignore' });
      await waitForPort(VHOST_RGW_PORT, 60_000);
    });
    afterAll(() => {
      (dns as { lookup: unknown }).lookup = lookup;
      rgw?.kill('SIGTERM');
    });

    it('addresses the bucket in the host name and creates it under Managed', async () => {
      const bucket = fresh('qf-spec-vhost');
      const storage = await specStorage({ storage: { s3: { bucket, regionEndpoint: `http://localhost:${VHOST_RGW_PORT}`, virtualHostedStyle: true } } }, RGW_KEYS);
      try {
        await roundTrip(storage);
        expect(looked).toContain(`${bucket}.localhost`);
        expect(looked).not.toContain('localhost');
      } finally {
        await storage.close();
      }
    });
  });

  describe('trustedCA: RadosGW behind a self-signed TLS endpoint', () => {
    let server: tls.Server | undefined;
    let swiftServer: https.Server | undefined;
    const caDir = path.join(work, 'trusted-ca');
    beforeAll(async () => {
      const certDir = path.join(work, 'tls');
      fs.mkdirSync(certDir, { recursive: true });
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=rgw.quayfleet.test',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem')], { stdio: 'ignore' });
      fs.mkdirSync(path.join(caDir, 'image-registry-s3-bundle'), { recursive: true });
      fs.copyFileSync(path.join(certDir, 'cert.pem'), path.join(caDir, 'image-registry-s3-bundle', 'ca-bundle.crt'));
      // TLS terminated here, the bytes passed to RadosGW unchanged (the Host header is the signed one).
      server = tls.createServer({ key: fs.readFileSync(path.join(certDir, 'key.pem')), cert: fs.readFileSync(path.join(certDir, 'cert.pem')) }, (client) => {
        const upstream = net.connect(RADOSGW.port, RADOSGW.host);
        client.pipe(upstream).pipe(client);
        const close = () => { client.destroy(); upstream.destroy(); };
        client.on('error', close).on('close', close);
        upstream.on('error', close).on('close', close);
      });
      await new Promise<void>((resolve) => server!.listen(TLS_PORT, '127.0.0.1', resolve));
      // The Swift API behind TLS: a gateway configured for it (rgw_swift_url) hands out an https
      // storage URL; this terminator rewrites the one RadosGW gives to stand in for that setting.
      swiftServer = https.createServer({ key: fs.readFileSync(path.join(certDir, 'key.pem')), cert: fs.readFileSync(path.join(certDir, 'cert.pem')) }, (req, res) => {
        const upstream = http.request({ host: RADOSGW.host, port: RADOSGW.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
          const headers = { ...answer.headers };
          if (typeof headers['x-storage-url'] === 'string') headers['x-storage-url'] = headers['x-storage-url'].replace(/^http:\/\/[^/]+/, `https://127.0.0.1:${SWIFT_TLS_PORT}`);
          res.writeHead(answer.statusCode ?? 502, headers);
          answer.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      });
      swiftServer.on('tlsClientError', () => undefined);
      await new Promise<void>((resolve) => swiftServer!.listen(SWIFT_TLS_PORT, '127.0.0.1', resolve));
    });
    afterAll(async () => {
      await new Promise((resolve) => server?.close(resolve));
      await new Promise((resolve) => swiftServer?.close(resolve));
    });

    it('trusts the endpoint through the mounted bundle, and refuses it without', async () => {
      const s3 = { bucket: RADOSGW.bucket, regionEndpoint: `https://127.0.0.1:${TLS_PORT}` };
      const storage = await specStorage({ storage: { s3: { ...s3, trustedCA: { name: 'image-registry-s3-bundle' } } } }, { ...RGW_KEYS, QUAYFLEET_TRUSTED_CA_DIR: caDir });
      try {
        await roundTrip(storage);
      } finally {
        await storage.close();
      }
      await expect(specStorage({ storage: { s3 } }, RGW_KEYS)).rejects.toThrow(/self[- ]signed certificate/);
    });

    it('swift: trustedCA is applied to the Keystone/TempAuth and Swift connections too, and the endpoint is refused without it', async () => {
      const swift = { authURL: `https://127.0.0.1:${SWIFT_TLS_PORT}/auth/1.0`, authVersion: '1', container: RADOSGW_SWIFT.container };
      const env = { REGISTRY_STORAGE_SWIFT_USER: RADOSGW_SWIFT.user, REGISTRY_STORAGE_SWIFT_PASSWORD: RADOSGW_SWIFT.key, QUAYFLEET_TRUSTED_CA_DIR: caDir };
      const storage = await specStorage({ storage: { swift: { ...swift, trustedCA: { name: 'image-registry-s3-bundle' } } } }, env);
      try {
        await roundTrip(storage);
      } finally {
        await storage.close();
      }
      const untrusting = await specStorage({ storage: { swift } }, env);
      try {
        await expect(untrusting.store('default').ping()).rejects.toThrow(/self[- ]signed certificate/);
      } finally {
        await untrusting.close();
      }
    });
  });
});

describe('spec.storage.azure on Azurite', () => {
  const env = { REGISTRY_STORAGE_AZURE_ACCOUNTKEY: AZURITE.accountKey, REGISTRY_STORAGE_AZURE_SERVICEURL: AZURITE.endpoint };

  it('creates the container under Managed and serves it', async () => {
    const storage = await specStorage({ storage: { azure: { accountName: AZURITE.accountName, container: fresh('qf-spec') } } }, env);
    try {
      expect(await storage.store('default').ensureBucket!()).toBe('exists');
      await roundTrip(storage);
    } finally {
      await storage.close();
    }
  });

  it('requires an existing container under Unmanaged', async () => {
    const container = fresh('qf-spec-unmanaged');
    await expect(specStorage({ storage: { managementState: 'Unmanaged', azure: { accountName: AZURITE.accountName, container } } }, env))
      .rejects.toThrow(`container ${container} does not exist`);
  });
});

describe('spec.storage.gcs on the Cloud Storage emulator', () => {
  // An emulator of this file's own: the shared one may predate the buckets.get/insert routes.
  let emulator: ChildProcess | undefined;
  beforeAll(async () => {
    emulator = spawn(process.execPath, [path.resolve(import.meta.dirname, '../servers/gcs-emulator.cjs'), String(GCS_PORT)], { stdio: 'ignore' });
    await waitForPort(GCS_PORT, 60_000);
  }, 90_000);
  afterAll(() => { emulator?.kill('SIGTERM'); });

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyfile = JSON.stringify({
    type: 'service_account', project_id: GCS_EMULATOR.projectId, client_email: `quayfleet-test@${GCS_EMULATOR.projectId}.iam.gserviceaccount.com`,
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
  });
  const env = { REGISTRY_STORAGE_GCS_KEYFILE: keyfile, STORAGE_EMULATOR_HOST: `127.0.0.1:${GCS_PORT}` };

  it('generates the bucket name, creates the bucket under Managed in the spec\'s region with its keyID, and serves it with the key from REGISTRY_STORAGE_GCS_KEYFILE', async () => {
    const hostname = `${fresh('quay')}.example.com`;
    const gcs = { projectID: GCS_EMULATOR.projectId, region: 'us-east1', keyID: 'projects/p/locations/us-east1/keyRings/r/cryptoKeys/registry' };
    const config = parseConfig({ SERVER_HOSTNAME: hostname, spec: { storage: { gcs } } }, env);
    const bucket = config.quay.DISTRIBUTED_STORAGE_CONFIG.default![1].bucket_name as string;
    expect(bucket).toMatch(/^quayfleet-image-registry-us-east1-[0-9a-f]{12}$/);
    const before = await fetch(`http://127.0.0.1:${GCS_PORT}/storage/v1/b/${bucket}`);
    expect(before.status).toBe(404);
    const storage = await createDistributedStorage(config.quay, { env });
    try {
      await provisionSpecStorage(config, storage, log);
      const created = await (await fetch(`http://127.0.0.1:${GCS_PORT}/storage/v1/b/${bucket}`)).json() as { location: string; encryption?: { defaultKmsKeyName: string } };
      expect(created).toMatchObject({ location: 'US-EAST1', encryption: { defaultKmsKeyName: gcs.keyID } });
      // A second pod finds it.
      expect(await storage.store('default').ensureBucket!()).toBe('exists');
      await roundTrip(storage);
    } finally {
      await storage.close();
    }
  });

  it('never creates the bucket under Unmanaged: a missing one fails at start, naming it', async () => {
    const bucket = fresh('qf-spec-gcs-unmanaged');
    await expect(specStorage({ storage: { managementState: 'Unmanaged', gcs: { bucket, projectID: GCS_EMULATOR.projectId } } }, env))
      .rejects.toThrow(`bucket ${bucket} does not exist (storage managementState is Unmanaged: create it, or set Managed)`);
    expect((await fetch(`http://127.0.0.1:${GCS_PORT}/storage/v1/b/${bucket}`)).status).toBe(404);
  });
});

describe("spec.storage.swift on RadosGW's Swift API", () => {
  it('serves the container with TempAuth (authVersion 1) and the user and key from REGISTRY_STORAGE_SWIFT_*', async () => {
    const storage = await specStorage({ storage: { swift: { authURL: RADOSGW_SWIFT.authUrl, authVersion: '1', container: RADOSGW_SWIFT.container } } },
      { REGISTRY_STORAGE_SWIFT_USER: RADOSGW_SWIFT.user, REGISTRY_STORAGE_SWIFT_PASSWORD: RADOSGW_SWIFT.key });
    try {
      await roundTrip(storage);
    } finally {
      await storage.close();
    }
  });
});

describe('spec.storage.pvc on a filesystem volume', () => {
  it('serves the volume mounted at QUAYFLEET_REGISTRY_VOLUME', async () => {
    const volume = path.join(work, 'registry');
    const storage = await specStorage({ storage: { pvc: { claim: 'image-registry-storage' } } }, { QUAYFLEET_REGISTRY_VOLUME: volume });
    try {
      await roundTrip(storage);
      expect(fs.existsSync(volume)).toBe(true);
    } finally {
      await storage.close();
    }
  });
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing answers on port ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
