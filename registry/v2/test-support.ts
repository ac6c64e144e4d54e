/**
 * Test helpers for the /v2 routes (not a test file): a tiny OCI client over `app.inject()` that
 * uploads blobs in the ways real clients do and builds image manifests.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { OCI_IMAGE_CONFIG, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST } from '../manifests/media-types.ts';

/** `sha256:<hex>` of `bytes`. */
export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A manifest as bytes with its digest. */
export interface BuiltManifest {
  readonly bytes: Buffer;
  readonly digest: string;
  readonly mediaType: string;
}

/** An OCI image manifest over `config` and `layers` (plus optional extra fields such as subject). */
export function imageManifest(config: Buffer, layers: Buffer[], extra: Record<string, unknown> = {}): BuiltManifest {
  const body = {
    schemaVersion: 2, mediaType: OCI_IMAGE_MANIFEST,
    config: { mediaType: OCI_IMAGE_CONFIG, digest: sha256(config), size: config.length },
    layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length })),
    ...extra,
  };
  const bytes = Buffer.from(JSON.stringify(body));
  return { bytes, digest: sha256(bytes), mediaType: OCI_IMAGE_MANIFEST };
}

/** An OCI index over `children`. */
export function imageIndex(children: BuiltManifest[]): BuiltManifest {
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_IMAGE_INDEX,
    manifests: children.map((c, i) => ({ mediaType: c.mediaType, digest: c.digest, size: c.bytes.length, platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' } })),
  }));
  return { bytes, digest: sha256(bytes), mediaType: OCI_IMAGE_INDEX };
}

type InjectMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/** An OCI client speaking to one app with one bearer token. */
export class V2Client {
  constructor(readonly app: FastifyInstance, readonly token?: string) {}

  /** A raw request; `headers` are added to the Authorization header. */
  request(method: InjectMethod, url: string, options: { headers?: Record<string, string>; payload?: Buffer | string } = {}): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...options.headers };
    return this.app.inject({ method, url, headers, ...(options.payload === undefined ? {} : { payload: options.payload }) });
  }

  /** Starts a session; returns its Location. */
  async startUpload(name: string): Promise<string> {
    const response = await this.request('POST', `/v2/${name}/blobs/uploads/`);
    if (response.statusCode !== 202) throw new Error(`POST uploads answered ${response.statusCode}: ${response.body}`);
    return response.headers.location as string;
  }

  /** Uploads `bytes` as blob: `monolithic` (POST ?digest), `patch` (one PATCH + PUT) or `chunks` of `chunkBytes`. */
  async uploadBlob(name: string, bytes: Buffer, mode: 'monolithic' | 'patch' | 'chunks' = 'patch', chunkBytes = 1024): Promise<string> {
    const digest = sha256(bytes);
    const octet = { 'content-type': 'application/octet-stream' };
    if (mode === 'monolithic') {
      const response = await this.request('POST', `/v2/${name}/blobs/uploads/?digest=${digest}`, { headers: octet, payload: bytes });
      expectStatus(response, 201);
      return digest;
    }
    const location = await this.startUpload(name);
    const pieces = mode === 'patch' ? [bytes] : chunk(bytes, chunkBytes);
    let offset = 0;
    for (const piece of pieces) {
      const range = { 'content-range': `${offset}-${offset + piece.length - 1}` };
      expectStatus(await this.request('PATCH', location, { headers: { ...octet, ...(mode === 'chunks' ? range : {}) }, payload: piece }), 202);
      offset += piece.length;
    }
    expectStatus(await this.request('PUT', `${location}?digest=${digest}`), 201);
    return digest;
  }

  /** PUTs manifest `m` under `reference` (a tag, or its digest by default). */
  putManifest(name: string, m: BuiltManifest, reference: string = m.digest): Promise<LightMyRequestResponse> {
    return this.request('PUT', `/v2/${name}/manifests/${reference}`, { headers: { 'content-type': m.mediaType }, payload: m.bytes });
  }

  /** Uploads config and layers and PUTs the image manifest under `reference`. */
  async pushImage(name: string, reference: string, config: Buffer, layers: Buffer[], extra: Record<string, unknown> = {}): Promise<BuiltManifest> {
    await this.uploadBlob(name, config, 'monolithic');
    for (const layer of layers) await this.uploadBlob(name, layer, 'patch');
    const manifest = imageManifest(config, layers, extra);
    expectStatus(await this.putManifest(name, manifest, reference), 201);
    return manifest;
  }
}

/** Throws with the body when the response status is not `status`. */
export function expectStatus(response: LightMyRequestResponse, status: number): LightMyRequestResponse {
  if (response.statusCode !== status) throw new Error(`expected ${status}, got ${response.statusCode}: ${response.body}`);
  return response;
}

/** The OCI error code of a response; undefined for a response without body (HEAD). */
export function errorCode(response: LightMyRequestResponse): string | undefined {
  // A HEAD answer has no body on the wire (Node's http drops it); light-my-request 6.6, which
  // the lock pins for Node 20, still hands the error document to inject().
  if (response.body === '' || response.raw.req.method === 'HEAD') return undefined;
  return (response.json() as { errors?: { code: string }[] }).errors?.[0]?.code;
}

function chunk(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out.length > 0 ? out : [Buffer.alloc(0)];
}
