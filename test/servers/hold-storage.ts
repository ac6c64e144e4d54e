/**
 * Starts the storage test servers (as the suite's global setup would) and keeps them until SIGTERM
 * or SIGINT. `.ci/run` starts it in the background right after the npm packages, so Ceph's cold
 * start (17 s to a minute) overlaps typecheck, lint and build instead of delaying the first test
 * file; the global setup then finds the servers answering (the start lock makes it wait while this
 * is still starting them). It counts as one user: the last user to leave stops them.
 *   node --import tsx test/servers/hold-storage.ts
 */
import { startStorageServers } from './storage.ts';

const stop = await startStorageServers();
console.log('storage test servers ready');
let stopping = false;
const leave = (): void => {
  if (stopping) return;
  stopping = true;
  void stop().finally(() => process.exit(0));
};
process.on('SIGTERM', leave);
process.on('SIGINT', leave);
setInterval(() => {}, 1 << 30);
