/**
 * The key the front end signs its bearer tokens with. Every pod must share it, so it is derived
 * from Quay's SECRET_KEY (or DATABASE_SECRET_KEY); without either, the embedded default keeps a
 * random one in the data directory, and a pod without one warns and uses a per-process key.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../shared/config/index.ts';
import type { Logger } from '../shared/runtime/logger.ts';

/** 32 bytes for HS256, derived so the raw SECRET_KEY is never used directly as a JWT key. */
export function tokenSecret(config: Config, log: Logger, options: { persistInDataDir: boolean }): Uint8Array {
  const secret = config.quay.SECRET_KEY ?? config.quay.DATABASE_SECRET_KEY;
  if (secret) return new Uint8Array(hkdfSync('sha256', secret, 'quayfleet', 'registry bearer tokens', 32));
  if (options.persistInDataDir) {
    const file = path.join(config.dataDir, 'token-secret');
    if (!fs.existsSync(file)) {
      fs.mkdirSync(config.dataDir, { recursive: true });
      fs.writeFileSync(file, randomBytes(32), { mode: 0o600 });
    }
    return new Uint8Array(fs.readFileSync(file));
  }
  log.warn('neither SECRET_KEY nor DATABASE_SECRET_KEY is set: tokens issued by this pod are not valid on others');
  return new Uint8Array(randomBytes(32));
}
