/**
 * The one pino logger. Every line is JSON; secrets are redacted by path wherever they appear.
 * Components take a child logger with their bindings (worker, jobId, repository, ...).
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths pino redacts in every log line (credentials in configs, headers and errors). */
export const REDACT_PATHS = [
  'password', '*.password', '*.*.password',
  'secret', '*.secret', '*.secret_key', '*.*.secret_key', '*.s3_secret_key', '*.*.s3_secret_key',
  '*.access_key', '*.*.access_key', '*.s3_access_key', '*.*.s3_access_key', '*.account_key', '*.*.account_key',
  'token', '*.token', 'authorization', '*.authorization', 'req.headers.authorization', 'req.headers.cookie',
  'DATABASE_SECRET_KEY', '*.DATABASE_SECRET_KEY', 'DB_URI', '*.DB_URI',
];

/** Creates the root logger of a process. `level` follows pino's names (info by default). */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid, ...(options.name ? { process_name: options.name } : {}) },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
