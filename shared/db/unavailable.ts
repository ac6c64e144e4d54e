/**
 * Whether an error means "Postgres cannot be reached right now" (connection lost, server
 * restarting or shutting down, backend terminated) rather than "this statement is wrong". The
 * front end answers such errors 503 and workers retry the job later without spending an attempt;
 * both recover on their own once the server answers again.
 */

/**
 * SQLSTATEs of a lost or refused connection: class 08 (connection exception), 57P01–57P03
 * (admin_shutdown: pg_terminate_backend or a fast shutdown; crash_shutdown; cannot_connect_now:
 * starting up or shutting down), 53300 (too_many_connections).
 */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;

/** Socket errors of a server that is down, restarting or unreachable. */
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/** What `pg` and `pg-pool` throw when the connection goes away under them (they carry no code). */
const UNAVAILABLE_MESSAGE = new RegExp([
  '^Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'timeout exceeded when trying to connect',
  'Client was closed and is not queryable',
].join('|'));

/** True when `error` (or an error in its `cause` chain or an AggregateError's list) is a lost or refused Postgres connection. */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (depth > 5 || typeof error !== 'object' || error === null) return false;
  const { code, message, cause, errors } = error as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))) return true;
  if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true;
  if (Array.isArray(errors) && errors.some((inner) => isDatabaseUnavailable(inner, depth + 1))) return true;
  return cause !== undefined && isDatabaseUnavailable(cause, depth + 1);
}
