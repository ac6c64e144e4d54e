/**
 * `npm start` runs the fleet as npm's child. npm forwards SIGTERM and SIGINT, but a SIGHUP (a
 * closed terminal) or a SIGKILL ends npm alone and leaves the fleet orphaned with its embedded
 * Postgres and Redis. Under npm, the fleet therefore watches its parent and shuts down in order
 * (as on SIGTERM) when it goes.
 */

const POLL_MS = 500;

/** True when npm (a `npm start` or `npm run`) launched this process. */
export function launchedByNpm(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.npm_lifecycle_event);
}

/** Sends this process SIGTERM once its parent has exited (it is re-parented). Returns a stop function. */
export function shutDownWithParent(): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
