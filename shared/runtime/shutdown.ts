/**
 * Process signal wiring for worker processes. Kubernetes sends SIGTERM and, after the grace
 * period, SIGKILL; the first SIGTERM (or Ctrl-C) starts the orderly shutdown, a second one exits
 * at once with status 1, as Quay's workers do.
 */
import type http from 'node:http';
import type { Logger } from './logger.ts';

/** How long after a finished shutdown the process may linger on stray handles before it exits. */
const EXIT_GRACE_MS = 1000;

/**
 * Runs `shutdown` on the first SIGTERM or SIGINT. When it resolves the process exits (status 0,
 * or 1 if it threw) as soon as the event loop is empty, and at the latest after a second. With
 * `hardDeadlineMs`, the process exits (status 1) that long after the signal whatever `shutdown`
 * still waits for, so a stuck step can never outlast the pod's grace period.
 * Returns a function that removes the handlers.
 */
export function onShutdownSignal(shutdown: (signal: NodeJS.Signals) => Promise<void>, log: Logger, options: { hardDeadlineMs?: number } = {}): () => void {
  let started = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (started) {
      log.warn({ signal }, 'second signal; exiting now');
      process.exit(1);
    }
    started = true;
    log.info({ signal }, 'shutting down');
    if (options.hardDeadlineMs !== undefined) {
      setTimeout(() => {
        log.error({ hardDeadlineMs: options.hardDeadlineMs }, 'shutdown still unfinished at its hard deadline; exiting now');
        process.exit(1);
      }, options.hardDeadlineMs).unref();
    }
    shutdown(signal).then(
      () => { process.exitCode ??= 0; },
      (error: unknown) => { log.error({ err: error }, 'shutdown failed'); process.exitCode = 1; },
    ).finally(() => {
      setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
    });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

/**
 * Closes an HTTP server within `deadlineMs`: `close` stops accepting connections and waits for the
 * requests in flight; whatever is still open at the deadline (a slow client reading a pull, an
 * upload that never ends) is destroyed, so `close` resolves. Without this a 400 KB/s pull held
 * SIGTERM for as long as the client took.
 */
export async function closeHttpWithin(close: () => Promise<unknown>, server: http.Server, deadlineMs: number, log: Logger): Promise<void> {
  const timer = setTimeout(() => {
    log.warn({ deadlineMs }, 'shutdown deadline reached; closing the HTTP connections still open');
    server.closeAllConnections();
  }, deadlineMs);
  try {
    await close();
  } finally {
    clearTimeout(timer);
  }
}
