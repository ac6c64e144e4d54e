/**
 * The front end the fuzz runs against: the real app (buildRegistryApp through the test registry
 * helper, real Postgres, LocalStorage) with every optional route on, an organization, users, a
 * robot, a pushed image (so blob ranges and manifest references hit real content), an open upload
 * session, and the check every response must pass.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { OCI_ERRORS } from '../../../registry/errors.ts';
import { sha256, V2Client } from '../../../registry/v2/test-support.ts';
import { startTestRegistry, type TestRegistry } from '../../helpers/registry.ts';

export const PASSWORD = 'fuzz password 0123456789';
/** Clair's pre-shared key (base64), so the webhook verifies JWTs. */
export const CLAIR_PSK = randomBytes(32).toString('base64');

/** A started target with its fixture. */
export interface FuzzTarget {
  readonly t: TestRegistry;
  /** Bearer token of `owner` granting everything on acme/app and owner/own. */
  readonly ownerToken: string;
  /** A pushed blob of acme/app (1 KiB) and the manifest's digest. */
  readonly blobDigest: string;
  readonly manifestDigest: string;
  /** Location of an open upload session on acme/app. */
  readonly uploadLocation: string;
  readonly audience: string;
}

/** Starts the target: every feature with a route on, fixture pushed. */
export async function startFuzzTarget(label: string): Promise<FuzzTarget> {
  const t = await startTestRegistry({
    label,
    config: {
      FEATURE_QUOTA_MANAGEMENT: true, FEATURE_REPO_MIRROR: true, FEATURE_SECURITY_SCANNER: true,
      FEATURE_SECURITY_NOTIFICATIONS: true, SECURITY_SCANNER_V4_ENDPOINT: 'http://clair.invalid:6060',
      SECURITY_SCANNER_V4_PSK: CLAIR_PSK, FEATURE_MAILING: false, FEATURE_LOG_EXPORT: true,
      MAXIMUM_MANIFEST_SIZE_BYTES: 64 * 1024,
    },
  });
  await t.createUser('owner', PASSWORD);
  await t.createUser('root', PASSWORD, { superuser: true });
  await t.createUser('outsider', PASSWORD);
  await t.createOrganization('acme', 'owner');
  await t.createRobot('acme', 'bot');
  await t.createRepository('acme/app');
  const ownerToken = await t.tokenFor('owner', PASSWORD, ['repository:acme/app:pull,push,delete', 'repository:owner/own:pull,push,delete']);
  const client = new V2Client(t.app, ownerToken);
  const layer = randomBytes(1024);
  const manifest = await client.pushImage('acme/app', 'latest', Buffer.from('{"fuzz":true}'), [layer]);
  const uploadLocation = await client.startUpload('acme/app');
  return {
    t, ownerToken, blobDigest: sha256(layer), manifestDigest: manifest.digest,
    uploadLocation, audience: t.deps.config.quay.SERVER_HOSTNAME,
  };
}

const OCI_CODES = new Set(Object.keys(OCI_ERRORS));

/**
 * Why `response` to `method url` breaks the property (undefined when it holds): never a 5xx, and
 * an error answers in its API's shape (OCI `errors[]` under /v2, Quay's error object elsewhere).
 */
export function violation(method: string, url: string, response: LightMyRequestResponse): string | undefined {
  const status = response.statusCode;
  if (status >= 500) return `${status}: ${response.body.slice(0, 300)}`;
  if (status < 400 || method === 'HEAD' || response.body === '') return undefined;
  let body: unknown;
  try {
    body = response.json();
  } catch {
    return `${status} with a body that is not JSON: ${response.body.slice(0, 200)}`;
  }
  if (url.startsWith('/v2/') && !url.startsWith('/v2/auth')) {
    const code = (body as { errors?: { code?: unknown }[] }).errors?.[0]?.code;
    if (typeof code !== 'string' || !OCI_CODES.has(code)) return `${status} without an OCI error code: ${response.body.slice(0, 200)}`;
    return undefined;
  }
  if (url.startsWith('/v2/auth')) {
    const ok = (body as { errors?: unknown[] }).errors !== undefined || (body as { detail?: unknown }).detail !== undefined;
    return ok ? undefined : `${status} without an error body: ${response.body.slice(0, 200)}`;
  }
  const quay = body as { error_type?: unknown; error_message?: unknown; detail?: unknown };
  if (typeof quay.error_type !== 'string' && typeof quay.detail !== 'string' && typeof quay.error_message !== 'string') {
    return `${status} without Quay's error shape: ${response.body.slice(0, 200)}`;
  }
  return undefined;
}
