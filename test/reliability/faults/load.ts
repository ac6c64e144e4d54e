/**
 * The steady load a fault run keeps up: clients push images (a layer shared by every image, a
 * layer of their own, a config), pull them back, pull older images at random, and delete about
 * half of their tags (each delete is GC work). Every request is recorded with its start and end
 * time and its answer, so the run can tell afterwards which 5xx fell inside a fault window.
 *
 * "Acknowledged" means the registry answered the manifest PUT 201. An acknowledged image stays
 * pullable until the load's own DELETE of its tag is answered 202; an image whose PUT or DELETE
 * got no clear answer (503, network error) is `uncertain` and left out of the loss check, since
 * the registry may or may not have committed it.
 */
import { createHash, randomBytes } from 'node:crypto';

/** One request of the load. `status` is the HTTP status, or `network` when the request itself failed. */
export interface RequestRecord {
  readonly startedAt: number;
  readonly endedAt: number;
  readonly fleet: string;
  readonly step: Step;
  readonly status: number | 'network';
  readonly expected: number;
  /** The OCI error code of an error answer, when its body had one. */
  readonly code?: string;
  /**
   * A manifest PUT answered MANIFEST_BLOB_UNKNOWN more than the upload lease after its blobs
   * were pushed: GC rightly collected blobs nothing referenced any more (the client re-pushes).
   */
  readonly leaseExpired?: boolean;
  readonly detail?: string;
}

export type Step = 'blob' | 'manifest-put' | 'manifest-get' | 'blob-get' | 'pull-old' | 'tag-delete';

/** An image the registry acknowledged. */
export interface AckedImage {
  /** The fleet (LoadTarget name) that acknowledged it. */
  readonly fleet: string;
  readonly repository: string;
  readonly tag: string;
  readonly manifestDigest: string;
  readonly blobs: readonly { digest: string; size: number }[];
  state: 'alive' | 'deleting' | 'deleted' | 'uncertain';
}

/** Where the load sends its requests and how it gets tokens. */
export interface LoadTarget {
  /** Label of the fleet in records and figures. */
  readonly name: string;
  readonly base: string;
  readonly repositories: readonly string[];
  /** A bearer token with push, pull and delete on `repository` (called again on a 401). */
  token(repository: string): Promise<string>;
}

export const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Longer than the S3 client's three attempts of 60 s idle each, so the registry's own answer is what ends a request. */
const REQUEST_TIMEOUT_MS = 300_000;
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

/** A mismatch between what the registry acknowledged and what it later served. */
export interface Corruption {
  readonly at: number;
  readonly what: string;
}

/** The recorded traffic and the acknowledged images of one or more load runs. */
export class LoadLedger {
  readonly records: RequestRecord[] = [];
  readonly images: AckedImage[] = [];
  readonly corruptions: Corruption[] = [];
}

/**
 * Runs the load against `target` with `concurrency` clients until `stop()`; `stop` resolves when
 * the rounds in flight have ended. `sharedLayer` is pushed in every image.
 */
export function runLoad(target: LoadTarget, ledger: LoadLedger, concurrency: number, sharedLayer: Buffer, leaseMs: number): { stop(): Promise<void> } {
  let running = true;
  const tokens = new Map<string, Promise<string>>();
  const tokenFor = (repository: string, refresh = false): Promise<string> => {
    if (refresh || !tokens.has(repository)) tokens.set(repository, target.token(repository));
    return tokens.get(repository)!;
  };
  const client = new LoadClient(target, ledger, tokenFor, sharedLayer, leaseMs);
  const loops = Array.from({ length: concurrency }, async (_, index) => {
    for (let round = 0; running; round++) {
      const repository = target.repositories[(index + round) % target.repositories.length]!;
      const ok = await client.round(repository).catch(() => false);
      if (!ok) await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });
  return { async stop() { running = false; await Promise.all(loops); } };
}

/** Sends the load's requests and records them. */
export class LoadClient {
  /** The last request of this client that did not get its expected answer. */
  lastFailure: RequestRecord | undefined;

  constructor(
    private readonly target: LoadTarget,
    private readonly ledger: LoadLedger,
    private readonly tokenFor: (repository: string, refresh?: boolean) => Promise<string>,
    private readonly sharedLayer: Buffer,
    /** The fleet's upload lease (PUSH_TEMP_TAG_EXPIRATION_SEC), in ms. */
    private readonly leaseMs: number,
  ) {}

  /** One request, recorded; retries once with a fresh token on a 401. */
  async send(
    step: Step, repository: string, path: string, init: RequestInit, expected: number, blobsPushedAt?: number,
  ): Promise<{ status: number | 'network'; body: Buffer; headers?: Headers }> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.tokenFor(repository, attempt > 0);
      const startedAt = Date.now();
      let status: number | 'network';
      let body = Buffer.alloc(0);
      let headers: Headers | undefined;
      let detail: string | undefined;
      try {
        const response = await fetch(`${this.target.base}${path}`, {
          ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        status = response.status;
        headers = response.headers;
        body = Buffer.from(await response.arrayBuffer());
      } catch (error) {
        status = 'network';
        detail = (error as Error).message;
      }
      if (status === 401 && attempt === 0) continue;
      const code = typeof status === 'number' && status >= 400 ? errorCode(body) : undefined;
      if (typeof status === 'number' && status !== expected) detail = body.toString('utf8').slice(0, 300);
      const leaseExpired = code === 'MANIFEST_BLOB_UNKNOWN' && blobsPushedAt !== undefined && startedAt - blobsPushedAt > this.leaseMs;
      const record: RequestRecord = { startedAt, endedAt: Date.now(), fleet: this.target.name, step, status, expected, code, detail, ...(leaseExpired ? { leaseExpired } : {}) };
      this.ledger.records.push(record);
      if (status !== expected) this.lastFailure = record;
      return { status, body, headers };
    }
  }

  /**
   * Push an image, pull it back, pull an older one, and delete the new tag half of the time.
   * Stops at the first answer that is not the expected success; returns whether all succeeded.
   */
  async round(repository: string): Promise<boolean> {
    const image = await this.push(repository);
    if (!image) return false;
    if (!(await this.pull(image, 'manifest-get'))) return false;
    if (!(await this.pullBlob(image, image.blobs[1]!))) return false;
    const older = this.pickAlive();
    if (older && !(await this.pull(older, 'pull-old'))) return false;
    if (Math.random() < 0.5) return this.deleteTag(image);
    return true;
  }

  /** Pushes config, shared layer and own layer, then the manifest under a new tag. */
  async push(repository: string): Promise<AckedImage | undefined> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
    const layer = randomBytes(8192);
    const blobsPushedAt = Date.now();
    for (const blob of [config, this.sharedLayer, layer]) {
      const sent = await this.send('blob', repository, `/v2/${repository}/blobs/uploads/?digest=${sha256(blob)}`, {
        method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: blob,
      }, 201);
      if (sent.status !== 201) return undefined;
    }
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MANIFEST_TYPE,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [this.sharedLayer, layer].map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l), size: l.length })),
    }));
    const tag = `t${randomBytes(5).toString('hex')}`;
    const image: AckedImage = {
      fleet: this.target.name, repository, tag, manifestDigest: sha256(manifest), state: 'uncertain',
      blobs: [config, this.sharedLayer, layer].map((b) => ({ digest: sha256(b), size: b.length })),
    };
    const put = await this.send('manifest-put', repository, `/v2/${repository}/manifests/${tag}`, {
      method: 'PUT', headers: { 'content-type': MANIFEST_TYPE }, body: manifest,
    }, 201, blobsPushedAt);
    if (put.status === 201) {
      image.state = 'alive';
      this.ledger.images.push(image);
      return image;
    }
    // No clear answer: the manifest may have been committed. Remembered as uncertain, not checked.
    if (put.status === 'network' || put.status >= 500) this.ledger.images.push(image);
    return undefined;
  }

  /** GETs the image's manifest by tag and checks its digest. */
  async pull(image: AckedImage, step: 'manifest-get' | 'pull-old'): Promise<boolean> {
    const got = await this.send(step, image.repository, `/v2/${image.repository}/manifests/${image.tag}`, { headers: { accept: MANIFEST_TYPE } }, 200);
    if (got.status !== 200) return false;
    if (sha256(got.body) !== image.manifestDigest) {
      this.ledger.corruptions.push({ at: Date.now(), what: `${image.repository}:${image.tag} served manifest ${sha256(got.body)}, acknowledged ${image.manifestDigest}` });
      return false;
    }
    return true;
  }

  /** GETs one blob of the image and checks its digest. */
  async pullBlob(image: AckedImage, blob: { digest: string }): Promise<boolean> {
    const got = await this.send('blob-get', image.repository, `/v2/${image.repository}/blobs/${blob.digest}`, {}, 200);
    if (got.status !== 200) return false;
    if (sha256(got.body) !== blob.digest) {
      this.ledger.corruptions.push({ at: Date.now(), what: `${image.repository} blob ${blob.digest} served ${got.body.length} bytes hashing to ${sha256(got.body)}` });
      return false;
    }
    return true;
  }

  /** DELETEs the image's tag; only a 202 makes it deleted, anything unclear makes it uncertain. */
  async deleteTag(image: AckedImage): Promise<boolean> {
    image.state = 'deleting';
    const sent = await this.send('tag-delete', image.repository, `/v2/${image.repository}/manifests/${image.tag}`, { method: 'DELETE' }, 202);
    image.state = sent.status === 202 ? 'deleted' : sent.status === 'network' || sent.status >= 500 ? 'uncertain' : 'alive';
    return sent.status === 202;
  }

  private pickAlive(): AckedImage | undefined {
    const alive = this.ledger.images.filter((i) => i.state === 'alive' && i.fleet === this.target.name);
    return alive.length === 0 ? undefined : alive[Math.floor(Math.random() * alive.length)];
  }
}

function errorCode(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: { code?: string }[]; error_type?: string };
    return parsed.errors?.[0]?.code ?? parsed.error_type;
  } catch {
    return undefined;
  }
}
