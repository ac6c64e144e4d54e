/**
 * The registry keeps serving pushes while quayfleet collects: the front end (in this process, on
 * the benchmark's database and storage) takes a stream of small image pushes (config blob, layer
 * blob, manifest, tag) into its own repository for as long as GC runs. Afterwards every pushed tag
 * must still pull whole: GC never takes what a concurrent push relies on.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildRegistryApp } from '../../registry/app.ts';
import { parseConfig } from '../../shared/config/index.ts';
import { createUserAccount } from '../../shared/db/accounts.ts';
import { withTransaction, type Pool } from '../../shared/db/pool.ts';
import { createLogger } from '../../shared/runtime/logger.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';

/** The front end's port (BENCH_GC_PORT, default 21730): move it off a port another run holds. */
const PORT = Number(process.env.BENCH_GC_PORT ?? 21730);
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** A running pusher: `stop()` ends the stream and checks every pushed tag pulls whole. */
export interface Pusher {
  stop(): Promise<{ pushes: number; verified: number }>;
}

const digestOf = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Starts the front end on `PORT` and pushes images into `<user>/live` until stopped. */
export async function startPusher(pool: Pool, storage: DistributedStorage): Promise<Pusher> {
  const user = `pusher${randomBytes(3).toString('hex')}`;
  await withTransaction(pool, (tx) => createUserAccount(tx, { username: user, password: 'pusherpassword' }));
  const config = parseConfig({ SERVER_HOSTNAME: `127.0.0.1:${PORT}` });
  const app: FastifyInstance = await buildRegistryApp({ config, db: pool, storage, log: createLogger({ level: 'error' }), tokenSecret: randomBytes(32) });
  await app.listen({ host: '127.0.0.1', port: PORT });
  const base = `http://127.0.0.1:${PORT}`;
  const response = await fetch(`${base}/v2/auth?service=127.0.0.1:${PORT}&scope=repository:${user}/live:push,pull`, {
    headers: { authorization: `Basic ${Buffer.from(`${user}:pusherpassword`).toString('base64')}` },
  });
  const auth = { authorization: `Bearer ${((await response.json()) as { token: string }).token}` };
  const repo = `${base}/v2/${user}/live`;
  const pushed: string[] = [];
  let stopping = false;

  const pushBlob = async (bytes: Buffer): Promise<string> => {
    const digest = digestOf(bytes);
    const res = await fetch(`${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: bytes });
    if (res.status !== 201) throw new Error(`blob push answered ${res.status}: ${await res.text()}`);
    return digest;
  };
  const loop = (async () => {
    for (let i = 0; !stopping; i++) {
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n: i, r: randomBytes(8).toString('hex') }));
      const layer = randomBytes(4096);
      const [configDigest, layerDigest] = [await pushBlob(config), await pushBlob(layer)];
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
      }));
      const res = await fetch(`${repo}/manifests/t${i}`, { method: 'PUT', headers: { ...auth, 'content-type': OCI_MANIFEST }, body: manifest });
      if (res.status !== 201) throw new Error(`manifest push answered ${res.status}: ${await res.text()}`);
      pushed.push(`t${i}`);
    }
  })();

  return {
    async stop() {
      stopping = true;
      await loop;
      let verified = 0;
      for (const tag of pushed) {
        const res = await fetch(`${repo}/manifests/${tag}`, { headers: { ...auth, accept: OCI_MANIFEST } });
        if (res.status !== 200) throw new Error(`pushed tag ${tag} answered ${res.status} after GC`);
        const manifest = (await res.json()) as { config: { digest: string }; layers: { digest: string }[] };
        for (const digest of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
          const blob = await fetch(`${repo}/blobs/${digest}`, { headers: auth });
          const bytes = Buffer.from(await blob.arrayBuffer());
          if (blob.status !== 200 || digestOf(bytes) !== digest) throw new Error(`blob ${digest} of pushed tag ${tag} is gone or damaged after GC (${blob.status})`);
        }
        verified++;
      }
      await app.close();
      return { pushes: pushed.length, verified };
    },
  };
}
