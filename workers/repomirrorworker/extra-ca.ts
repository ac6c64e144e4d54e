/**
 * Extra CA certificates for upstream registries, from Quay's `extra_ca_certs` directory beside
 * config.yaml (`/conf/stack/extra_ca_certs` in Quay's image; on Kubernetes, the config secret's
 * `extra_ca_cert_*` entries mounted there):
 * - PEM files directly in it (`*.crt`, `*.pem`, `*.cert`) are trusted for every upstream, as
 *   Quay installs them into the system trust store skopeo reads;
 * - PEM files in a sub-directory named `host:port` or `host` are trusted for that upstream only,
 *   as skopeo's `/etc/containers/certs.d/<host:port>/ca.crt`.
 * Read when a sync opens its first connection to a host, so a certificate added to a mounted
 * secret is used by the next sync without a restart.
 */
import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../shared/config/index.ts';

const PEM_FILE = /\.(crt|pem|cert)$/i;
const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Quay's extra CA directory of `config`: `extra_ca_certs` beside config.yaml; undefined without a config file. */
export function extraCaDirOf(config: Pick<Config, 'source'>): string | undefined {
  return path.isAbsolute(config.source) ? path.join(path.dirname(config.source), 'extra_ca_certs') : undefined;
}

async function certificatesIn(dir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return []; // no such directory: nothing extra to trust
  }
  const files = entries.filter((e) => (e.isFile() || e.isSymbolicLink()) && PEM_FILE.test(e.name)).map((e) => e.name).sort();
  const texts = await Promise.all(files.map((name) => fs.readFile(path.join(dir, name), 'utf8').catch(() => '')));
  return texts.flatMap((text) => text.match(CERTIFICATE) ?? []);
}

/** The extra CA certificates (PEM) trusted for `url`'s host from `dir`. */
export async function extraCaFor(dir: string | undefined, url: URL): Promise<string[]> {
  if (!dir) return [];
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  // A name from a redirect could be `..`: only plain host names and addresses pick a sub-directory.
  const plain = /^[A-Za-z0-9:][A-Za-z0-9.:-]*$/.test(host);
  const [common, byAuthority, byHost] = await Promise.all([
    certificatesIn(dir),
    plain ? certificatesIn(path.join(dir, `${host}:${port}`)) : [],
    plain ? certificatesIn(path.join(dir, host)) : [],
  ]);
  return [...common, ...byAuthority, ...byHost];
}
