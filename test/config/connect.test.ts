/**
 * Config validation in online mode (`quayfleet config validate --connect`, `?mode=online`):
 * connections to the real Postgres, Redis and storage servers with the config's credentials, one
 * `{FieldGroup, Tags, Message}` per failure and every failure in one run; a spec.storage bucket
 * the fleet may create is created; extra CA certificates trusted for a self-signed S3 endpoint.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateQuayConfig } from '../../shared/config/index.ts';
import { bundleCerts, validateQuayConfigOnline } from '../../shared/runtime/config-connect.ts';
import { storageParamIssues } from '../../shared/storage/drivers/index.ts';
import { RADOSGW } from '../servers/storage-endpoints.ts';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../servers/ports.ts';
import { startTlsProxy, type TlsProxy } from './tls-proxy.ts';

/** This file's ports (branch f-config's range): nothing listens on CLOSED; the TLS proxy on TLS_PORT. */
const CLOSED = 22630;
const TLS_PORT = 22631;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-connect-'));
const redisParts = new URL(TEST_REDIS_URL);
const RGW = { access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey, bucket_name: RADOSGW.bucket, hostname: RADOSGW.host, port: RADOSGW.port, is_secure: false, storage_path: '/qf-connect' };
const VALID = {
  SERVER_HOSTNAME: 'quay.example.com',
  DB_URI: TEST_POSTGRES_URL,
  BUILDLOGS_REDIS: { host: redisParts.hostname, port: Number(redisParts.port || 6379) },
  DISTRIBUTED_STORAGE_CONFIG: { default: ['RadosGWStorage', RGW], local: ['LocalStorage', { storage_path: path.join(work, 'local') }] },
  DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
};
const online = (raw: unknown, env: NodeJS.ProcessEnv = {}, extraCaCerts?: Record<string, string>) =>
  validateQuayConfigOnline(raw, storageParamIssues, { env, extraCaCerts, timeoutMs: 5000 });

let proxy: TlsProxy;
beforeAll(async () => { proxy = await startTlsProxy(path.join(work, 'tls'), TLS_PORT, RADOSGW.port); });
afterAll(async () => {
  await proxy?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('config validation in online mode', () => {
  it('answers [] when the database, Redis and every storage location answer with the given credentials', async () => {
    const report = await online(VALID);
    expect(report.errors).toEqual([]);
    expect(report.config).toBeDefined();
  });

  it('lists every connection that fails, in one run, grouped as Quay groups them; the static mode does not connect', async () => {
    const broken = {
      ...VALID,
      DB_URI: `postgresql://quay:wrong@127.0.0.1:${CLOSED}/quay`,
      BUILDLOGS_REDIS: { host: '127.0.0.1', port: CLOSED },
      DISTRIBUTED_STORAGE_CONFIG: { ...VALID.DISTRIBUTED_STORAGE_CONFIG, default: ['RadosGWStorage', { ...RGW, secret_key: 'not-the-key' }] },
    };
    expect(validateQuayConfig(broken, {}, storageParamIssues).errors).toEqual([]);
    const { errors } = await online(broken);
    expect(errors).toEqual([
      { FieldGroup: 'Database', Tags: ['DB_URI'], Message: expect.stringMatching(/^Could not connect to database\. Error: .*ECONNREFUSED/) },
      { FieldGroup: 'DistributedStorage', Tags: ['DISTRIBUTED_STORAGE_CONFIG.default'], Message: expect.stringMatching(/^Could not connect to storage default\. Error: .*SignatureDoesNotMatch|^Could not connect to storage default\. Error: .*(denied|signature)/i) },
      { FieldGroup: 'Redis', Tags: ['BUILDLOGS_REDIS'], Message: expect.stringMatching(/^Could not connect to Redis with values provided in BUILDLOGS_REDIS \(redis:\/\/127\.0\.0\.1:22630\)\. Error: .*ECONNREFUSED/) },
    ]);
    expect(JSON.stringify(errors)).not.toContain('not-the-key');
  });

  it('reports wrong database credentials and a missing bucket a Quay location may not create', async () => {
    const url = new URL(TEST_POSTGRES_URL);
    url.username = 'no_such_role_qf';
    const { errors } = await online({
      ...VALID, DB_URI: url.toString(),
      DISTRIBUTED_STORAGE_CONFIG: { default: ['RadosGWStorage', { ...RGW, bucket_name: `qf-missing-${randomBytes(4).toString('hex')}` }] },
    });
    expect(errors.map((e) => e.Tags[0])).toEqual(['DB_URI', 'DISTRIBUTED_STORAGE_CONFIG.default']);
    expect(errors[0]!.Message).toMatch(/^Could not connect to database\. Error: .*no_such_role_qf/);
    expect(errors[1]!.Message).toMatch(/^Could not connect to storage default\. Error: /);
  });

  it('creates the bucket of a spec.storage location under storage managementState Managed, as the fleet would at start', async () => {
    const bucket = `qf-connect-${randomBytes(4).toString('hex')}`;
    const { DISTRIBUTED_STORAGE_CONFIG: _, DISTRIBUTED_STORAGE_PREFERENCE: __, ...rest } = VALID;
    const env = { REGISTRY_STORAGE_S3_ACCESSKEY: RADOSGW.accessKey, REGISTRY_STORAGE_S3_SECRETKEY: RADOSGW.secretKey };
    const unmanaged = await online({ ...rest, spec: { storage: { managementState: 'Unmanaged', s3: { bucket, regionEndpoint: RADOSGW.endpoint } } } }, env);
    expect(unmanaged.errors).toEqual([{ FieldGroup: 'DistributedStorage', Tags: ['DISTRIBUTED_STORAGE_CONFIG.default'], Message: expect.stringMatching(/^Could not connect to storage default\. Error: /) }]);
    const managed = await online({ ...rest, spec: { storage: { s3: { bucket, regionEndpoint: RADOSGW.endpoint } } } }, env);
    expect(managed.errors).toEqual([]);
    expect((await online({ ...rest, spec: { storage: { managementState: 'Unmanaged', s3: { bucket, regionEndpoint: RADOSGW.endpoint } } } }, env)).errors).toEqual([]);
  });

  it("trusts extra_ca_certs for a self-signed S3 endpoint, and says which connections they cannot reach", async () => {
    const behindTls = { ...VALID, DISTRIBUTED_STORAGE_CONFIG: { default: ['RadosGWStorage', { ...RGW, hostname: '127.0.0.1', port: TLS_PORT, is_secure: true }] } };
    const untrusted = await online(behindTls);
    expect(untrusted.errors).toEqual([{ FieldGroup: 'DistributedStorage', Tags: ['DISTRIBUTED_STORAGE_CONFIG.default'], Message: expect.stringMatching(/self[- ]signed certificate/) }]);
    const certs = bundleCerts({ 'extra_ca_certs/rgw.crt': Buffer.from(proxy.certPem).toString('base64'), 'ssl.cert': 'x' });
    expect(certs.errors).toEqual([]);
    expect(certs.warnings).toEqual([{ key: 'certs', message: expect.stringMatching(/^certs: ssl\.cert is not used by quayfleet/) }]);
    const trusted = await online(behindTls, {}, certs.extraCaCerts);
    expect(trusted.errors).toEqual([]);
    expect(trusted.warnings).toEqual([{ FieldGroup: 'Other', Tags: ['extra_ca_certs'], Message: expect.stringMatching(/not for the database/) }]);
    expect(bundleCerts({ 'extra_ca_certs/empty.crt': 'bm90IGEgY2VydA==' }).errors).toEqual([{ key: 'certs', message: expect.stringMatching(/holds no PEM certificate/) }]);
  });

  it('`quayfleet config validate --connect` runs the same checks with extra_ca_certs/ beside the file; without it nothing is contacted', async () => {
    const dir = path.join(work, 'cli');
    fs.mkdirSync(path.join(dir, 'extra_ca_certs'), { recursive: true });
    fs.copyFileSync(proxy.certFile, path.join(dir, 'extra_ca_certs', 'rgw.crt'));
    const file = path.join(dir, 'config.yaml');
    fs.writeFileSync(file, JSON.stringify({
      ...VALID, BUILDLOGS_REDIS: { host: '127.0.0.1', port: CLOSED },
      DISTRIBUTED_STORAGE_CONFIG: { default: ['RadosGWStorage', { ...RGW, hostname: '127.0.0.1', port: TLS_PORT, is_secure: true }] },
    }));
    const cli = path.resolve(import.meta.dirname, '../../bin/quayfleet.js');
    // Asynchronously: the TLS endpoint runs in this process and must keep answering meanwhile.
    const run = (...args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [cli, 'config', 'validate', ...args, file], { env: { PATH: process.env.PATH! }, encoding: 'utf8', timeout: 120_000 },
        (error, stdout, stderr) => resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }));
    });
    expect((await run()).status).toBe(0);
    for (const flags of [['--connect'], ['--mode', 'online']]) {
      const result = await run('--json', ...flags);
      expect(result.status, result.stderr).toBe(1);
      // The storage behind the self-signed endpoint passes (its CA is in extra_ca_certs/); Redis does not answer.
      expect(JSON.parse(result.stdout)).toEqual([{ FieldGroup: 'Redis', Tags: ['BUILDLOGS_REDIS'], Message: expect.stringMatching(/^Could not connect to Redis/) }]);
      expect(result.stderr).toMatch(/^warning: Other: extra_ca_certs \(extra_ca_certs\/rgw\.crt\)/m);
    }
  }, 240_000);
});
