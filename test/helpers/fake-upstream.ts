/**
 * A scriptable registry on loopback for the failure cases a real one will not produce on demand:
 * a blob whose bytes do not match its digest, a request held until the test lets it go, a 503 with
 * Retry-After (or 429), a redirect to another place, a tag list in pages of a chosen size (`Link: <...>;
 * rel="next"`, as distribution pages past `n`). Serves `/v2/<repo>/tags/list`, manifests by tag or
 * digest, blobs by digest.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

export interface FakeImage {
  readonly digest: string;
  readonly bytes: Buffer;
  readonly blobs: Map<string, Buffer>;
}

/** An image of `layerCount` random layers; `corrupt` serves other bytes (same size) for the first layer. */
export function fakeImage(seed: string, options: { corrupt?: boolean } = {}): FakeImage {
  const layer = Buffer.from(`layer of ${seed} `.repeat(200));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
  }));
  const served = options.corrupt ? Buffer.from(layer.toString().replace(/l/g, 'L')) : layer;
  return { digest: sha256(manifest), bytes: manifest, blobs: new Map([[sha256(config), config], [sha256(layer), served]]) };
}

export interface FakeUpstream {
  /** `127.0.0.1:<port>` */
  readonly authority: string;
  /** tag -> image; edit freely between syncs. */
  readonly tags: Map<string, FakeImage>;
  /** Requests seen, as `METHOD path`. */
  readonly requests: string[];
  /** path fragment -> Location: such requests answer 307 there (e.g. a blob redirected to storage). */
  readonly redirects: Map<string, string>;
  /** Holds the next request whose path includes `fragment` until the returned function is called. */
  holdNext(fragment: string): { reached: Promise<void>; release: () => void };
  /** Answers the next `count` requests with `status` (503 unless given) and `Retry-After: <seconds>`. */
  unavailable(count: number, retryAfterS: number, status?: 429 | 503): void;
  /** Tags per page of the tag list (default: all in one page, whatever `n` asks). */
  pageSize: number | undefined;
  stop(): Promise<void>;
}

/** Starts the fake on an ephemeral loopback port, serving repository `repo`. */
export async function startFakeUpstream(repo: string): Promise<FakeUpstream> {
  const tags = new Map<string, FakeImage>();
  const requests: string[] = [];
  const redirects = new Map<string, string>();
  const holds: { fragment: string; reached: () => void; released: Promise<void> }[] = [];
  let unavailable = { count: 0, retryAfterS: 0, status: 503 };
  const paging: { size: number | undefined } = { size: undefined };
  const server = http.createServer(async (request, response) => {
    const path = request.url ?? '/';
    requests.push(`${request.method} ${path}`);
    const hold = holds.findIndex((h) => path.includes(h.fragment));
    if (hold >= 0) {
      const [h] = holds.splice(hold, 1);
      h!.reached();
      await h!.released;
    }
    if (unavailable.count > 0) {
      unavailable.count -= 1;
      return response.writeHead(unavailable.status, { 'retry-after': String(unavailable.retryAfterS) }).end();
    }
    const redirect = [...redirects].find(([fragment]) => path.includes(fragment));
    if (redirect) return response.writeHead(307, { location: redirect[1] }).end();
    if (path === '/v2/') return response.writeHead(200).end('{}');
    const prefix = `/v2/${repo}/`;
    if (!path.startsWith(prefix)) return response.writeHead(404).end();
    const rest = path.slice(prefix.length);
    if (rest.startsWith('tags/list')) {
      const all = [...tags.keys()].sort();
      const last = new URL(path, 'http://fake').searchParams.get('last');
      const from = last === null ? 0 : all.findIndex((t) => t > last);
      const page = paging.size === undefined ? all : all.slice(from < 0 ? all.length : from, (from < 0 ? all.length : from) + paging.size);
      const more = paging.size !== undefined && page.length > 0 && all.indexOf(page.at(-1)!) < all.length - 1;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (more) headers.link = `</v2/${repo}/tags/list?n=${paging.size}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`;
      return response.writeHead(200, headers).end(JSON.stringify({ name: repo, tags: page }));
    }
    const images = [...tags.values()];
    const manifest = /^manifests\/(.+)$/.exec(rest)?.[1];
    if (manifest) {
      const image = tags.get(manifest) ?? images.find((i) => i.digest === manifest);
      if (!image) return response.writeHead(404).end();
      return response.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': image.digest }).end(image.bytes);
    }
    const blob = /^blobs\/(.+)$/.exec(rest)?.[1];
    const bytes = blob && images.map((i) => i.blobs.get(blob)).find(Boolean);
    if (!bytes) return response.writeHead(404).end();
    return response.writeHead(200, { 'content-length': bytes.length }).end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    authority: `127.0.0.1:${port}`, tags, requests, redirects,
    holdNext(fragment) {
      let release!: () => void;
      let reached!: () => void;
      const released = new Promise<void>((resolve) => { release = resolve; });
      const reachedPromise = new Promise<void>((resolve) => { reached = resolve; });
      holds.push({ fragment, reached, released });
      return { reached: reachedPromise, release };
    },
    unavailable(count, retryAfterS, status = 503) {
      unavailable = { count, retryAfterS, status };
    },
    get pageSize() { return paging.size; },
    set pageSize(size) { paging.size = size; },
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
