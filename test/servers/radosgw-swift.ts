/**
 * Makes RadosGW's Swift API usable by the tests: a user with a Swift subuser and key (radosgw-admin)
 * and the test container. Idempotent and safe on a RadosGW someone else started: when v1 auth with
 * the test key already works nothing is created, and radosgw-admin's "already exists" is success.
 */
import path from 'node:path';
import { RADOSGW, RADOSGW_SWIFT } from './storage-endpoints.ts';
import { runToCompletion } from './storage-processes.ts';

/** v1 auth with the test key: the token and storage URL, or undefined when RadosGW refuses it. */
async function swiftAuth(): Promise<{ token: string; storageUrl: string } | undefined> {
  const response = await fetch(RADOSGW_SWIFT.authUrl, { headers: { 'X-Auth-User': RADOSGW_SWIFT.user, 'X-Auth-Key': RADOSGW_SWIFT.key } });
  await response.arrayBuffer();
  const token = response.headers.get('x-auth-token');
  const storageUrl = response.headers.get('x-storage-url');
  return response.ok && token && storageUrl ? { token, storageUrl } : undefined;
}

async function radosgwAdmin(args: string[], logDir: string, allowExists = false): Promise<void> {
  const conf = path.join(RADOSGW.dir, 'ceph.conf');
  const logFile = path.join(logDir, `radosgw-admin-${args[0]}-${args[1]}.log`);
  const code = await runToCompletion('radosgw-admin', ['-c', conf, ...args], logFile, process.env, 60_000);
  // 17 (EEXIST): `user create` of a user that exists.
  if (code !== 0 && !(allowExists && code === 17)) throw new Error(`radosgw-admin ${args.slice(0, 2).join(' ')} failed with exit code ${code}; see ${logFile}`);
}

/** Creates the Swift user, subuser, key and test container unless they already work. */
export async function prepareRadosgwSwift(logDir: string): Promise<void> {
  let session = await swiftAuth();
  if (!session) {
    await radosgwAdmin(['user', 'create', `--uid=${RADOSGW_SWIFT.uid}`, `--display-name=${RADOSGW_SWIFT.uid}`], logDir, true);
    await radosgwAdmin(['subuser', 'create', `--uid=${RADOSGW_SWIFT.uid}`, `--subuser=${RADOSGW_SWIFT.user}`, '--access=full'], logDir);
    await radosgwAdmin(['key', 'create', `--subuser=${RADOSGW_SWIFT.user}`, '--key-type=swift', `--secret=${RADOSGW_SWIFT.key}`], logDir);
    session = await swiftAuth();
    if (!session) throw new Error(`RadosGW refuses v1 auth for ${RADOSGW_SWIFT.user} after creating its key`);
  }
  const response = await fetch(`${session.storageUrl}/${RADOSGW_SWIFT.container}`, { method: 'PUT', headers: { 'X-Auth-Token': session.token } });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`creating the Swift container ${RADOSGW_SWIFT.container} answered HTTP ${response.status}`);
}
