/**
 * The effective config as `GET /api/v1/config` shows it: every secret replaced, at any depth (a
 * storage location's keys, a Redis password, the password inside DB_URI), so the answer can be
 * pasted into a ticket. Quay's config tool returns secrets in clear; quayfleet does not.
 */
export const REDACTED = '<redacted>';

/** Keys whose value is a secret wherever they appear (Quay's and the drivers' names). */
const SECRET_KEY = /(secret|password|passwd|_psk$|^psk$|access_key$|accesskey$|account_key$|accountkey$|keyfile$|key_file$|private_key$|sas_token$|token$|credentials?$)/i;
/** Names that look secret but are not (a key id names a KMS key, a storage path is a path). */
const NOT_SECRET = /^(sse_kms_key_id|keyID|kms_key_name|DATABASE_SECRET_KEY_ROTATION)$/;

/** A deep copy of `value` with secret values replaced by `<redacted>`. */
export function redactConfig<T>(value: T): T {
  return redact(value, undefined) as T;
}

function redact(value: unknown, key: string | undefined): unknown {
  if (key !== undefined && SECRET_KEY.test(key) && !NOT_SECRET.test(key) && value !== null && value !== undefined && value !== '') {
    return typeof value === 'boolean' || typeof value === 'number' ? value : REDACTED;
  }
  if (typeof value === 'string' && /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(value)) {
    // user:password@ in a URL (DB_URI, a Redis URL).
    return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*):[^/@\s]*@/i, `$1:${REDACTED}@`);
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, undefined));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  }
  return value;
}
