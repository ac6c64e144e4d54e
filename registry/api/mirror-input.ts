/**
 * Input and output of Quay's mirror API (endpoints/api/mirror.py): the request schemas with
 * Quay's rules and messages, and the GET view. Everything is validated before anything changes.
 */
import { z } from 'zod';
import type { Config } from '../../shared/config/index.ts';
import { DecryptionFailureError, FieldEncrypter } from '../../shared/db/encrypted-field.ts';
import { compileRule, InvalidMirrorRuleError, RULE_KINDS, ruleTypeOfKind, type RepoMirrorRuleTypeValue } from '../../shared/db/mirror-rules.ts';
import { mirrorStatusName, type MirrorConfigRow } from '../../shared/db/mirrors.ts';
import { ExternalReferenceError, mirrorProxyUrl, validateExternalReference } from '../../shared/net/registry-reference.ts';
import { checkUrl, ssrfPolicyOf, SsrfRefusedError } from '../../shared/net/ssrf.ts';
import { apiErrors } from '../errors.ts';

/** Architectures Quay's architecture filter accepts. */
export const ARCHITECTURES = ['amd64', 'arm64', 'ppc64le', 's390x'] as const;
/** Quay's minimum skopeo_timeout_interval. */
export const MIN_TIMEOUT_S = 300;
/** What GET shows for a username that does not decrypt. */
export const INVALID_USERNAME = '(invalid. please re-enter)';

const proxy = z.object({
  http_proxy: z.string().nullable().optional(),
  https_proxy: z.string().nullable().optional(),
  no_proxy: z.string().nullable().optional(),
}).strict();

const registryConfig = z.object({
  verify_tls: z.boolean({ error: 'verify_tls must be a boolean' }).optional(),
  unsigned_images: z.boolean({ error: 'unsigned_images must be a boolean' }).optional(),
  proxy: proxy.optional(),
}).strict();

const rootRule = z.object({ rule_kind: z.string(), rule_value: z.unknown() });

const fields = {
  is_enabled: z.boolean(),
  external_reference: z.string().min(1),
  external_registry_username: z.string().max(4096).nullable(),
  external_registry_password: z.string().max(4096).nullable(),
  external_registry_config: registryConfig,
  sync_interval: z.number().int().min(0, 'sync_interval must be at least 0'),
  sync_start_date: z.string(),
  robot_username: z.string().min(1),
  root_rule: rootRule,
  skopeo_timeout_interval: z.number().int().min(MIN_TIMEOUT_S, `skopeo_timeout_interval must be at least ${MIN_TIMEOUT_S}`),
  architecture_filter: z.array(z.string()),
};

/** POST body. */
export const createBody = z.object({
  ...fields,
  is_enabled: fields.is_enabled.optional(),
  external_registry_username: fields.external_registry_username.optional(),
  external_registry_password: fields.external_registry_password.optional(),
  external_registry_config: fields.external_registry_config.optional(),
  skopeo_timeout_interval: fields.skopeo_timeout_interval.optional(),
  architecture_filter: fields.architecture_filter.optional(),
});

/** PUT body: every field optional. */
export const changeBody = z.object(fields).partial();

/** Quay's strict `%Y-%m-%dT%H:%M:%SZ`; 400 with Quay's message otherwise. */
export function parseStartDate(value: string): Date {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/.exec(value);
  const date = match && new Date(Date.UTC(+match[1]!, +match[2]! - 1, +match[3]!, +match[4]!, +match[5]!, +match[6]!));
  if (!date || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 19) + 'Z' !== value) {
    throw apiErrors.badRequest('Incorrect DateTime format for sync_start_date.');
  }
  return date;
}

/** A validated rule: its stored type and value; 400 with the reason otherwise. */
export function parseRule(rule: z.output<typeof rootRule>): { type: RepoMirrorRuleTypeValue; value: string[] } {
  const type = ruleTypeOfKind(rule.rule_kind);
  if (type === undefined) throw apiErrors.badRequest(`Unsupported rule_kind ${JSON.stringify(rule.rule_kind)}: use tag_glob_csv (or regex)`);
  try {
    compileRule(type, rule.rule_value);
  } catch (error) {
    if (error instanceof InvalidMirrorRuleError) throw apiErrors.badRequest(error.message);
    throw error;
  }
  return { type, value: (rule.rule_value as string[]).map((v) => v.trim()) };
}

/** The architecture filter, refused without FEATURE_SPARSE_INDEX or with unknown values. */
export function parseArchitectures(config: Config, values: string[]): string[] {
  if (values.length === 0) return [];
  if (!config.quay.FEATURE_SPARSE_INDEX) throw apiErrors.badRequest('Architecture filtering requires FEATURE_SPARSE_INDEX to be enabled');
  const bad = values.filter((v) => !(ARCHITECTURES as readonly string[]).includes(v));
  if (bad.length > 0) throw apiErrors.badRequest(`Invalid architecture(s) ${bad.join(', ')}: allowed are ${ARCHITECTURES.join(', ')}`);
  return [...new Set(values)];
}

/** The external reference checked as Quay's API does (syntax, then SSRF rules on the literal host). */
export async function checkReference(config: Config, reference: string): Promise<string> {
  try {
    await validateExternalReference(reference, { allowedHosts: config.quay.SSRF_ALLOWED_HOSTS, resolve: false });
  } catch (error) {
    if (error instanceof ExternalReferenceError) throw apiErrors.badRequest(error.message);
    throw error;
  }
  return reference.trim();
}

/**
 * Refuses a proxy URL the SSRF policy refuses (a loopback, link-local or private address, not in
 * SSRF_ALLOWED_HOSTS): the mirror worker connects to the proxy, so it is an outbound URL a
 * repository admin sets. Credentials are allowed (proxies take them); names are not resolved here
 * (as for external_reference); the worker's connections are checked again (transport.ts).
 */
export function checkProxies(config: Config, proxy: { http_proxy?: string | null; https_proxy?: string | null } | undefined): void {
  for (const key of ['http_proxy', 'https_proxy'] as const) {
    const raw = proxy?.[key];
    if (!raw) continue;
    let url: URL;
    try {
      url = mirrorProxyUrl(raw); // as the worker reads it
    } catch {
      continue; // Quay stores any string; one that is not a URL reaches nothing.
    }
    url.username = '';
    url.password = '';
    try {
      checkUrl(ssrfPolicyOf(config.quay), url.href);
    } catch (error) {
      if (error instanceof SsrfRefusedError) throw apiErrors.badRequest(`${key}: ${error.message}`);
      throw error;
    }
  }
}

/** The field encrypter of this registry; 400 when DATABASE_SECRET_KEY is missing and credentials are given. */
export function encrypterFor(config: Config): FieldEncrypter {
  const key = config.quay.DATABASE_SECRET_KEY;
  if (!key) throw apiErrors.badRequest('Credentials cannot be stored: DATABASE_SECRET_KEY is not configured');
  return new FieldEncrypter(key);
}

/** Quay's date format: isoformat() + "Z" (microseconds only when there are any). */
export function mirrorDate(date: Date | null): string | null {
  if (!date) return null;
  const iso = date.toISOString();
  const ms = date.getUTCMilliseconds();
  return `${iso.slice(0, 19)}${ms === 0 ? '' : `.${String(ms * 1000).padStart(6, '0')}`}Z`;
}

function decryptedUsername(config: Config, stored: string | null): string | null {
  if (stored === null) return null;
  try {
    return encrypterFor(config).decrypt(stored);
  } catch (error) {
    if (error instanceof DecryptionFailureError || (error as { status?: number }).status === 400) return INVALID_USERNAME;
    throw error;
  }
}

/** Quay's GET view (never the password). */
export function mirrorView(config: Config, mirror: MirrorConfigRow): Record<string, unknown> {
  return {
    is_enabled: mirror.is_enabled,
    mirror_type: 'PULL',
    external_reference: mirror.external_reference,
    external_registry_username: decryptedUsername(config, mirror.external_registry_username),
    external_registry_config: mirror.external_registry_config ?? {},
    sync_interval: mirror.sync_interval,
    sync_start_date: mirrorDate(mirror.sync_start_date),
    sync_expiration_date: mirrorDate(mirror.sync_expiration_date),
    sync_retries_remaining: mirror.sync_retries_remaining,
    sync_status: mirrorStatusName(mirror.sync_status),
    root_rule: { rule_kind: RULE_KINDS[(mirror.rule_type ?? 1) as RepoMirrorRuleTypeValue] ?? 'tag_glob_csv', rule_value: mirror.rule_value ?? [] },
    robot_username: mirror.robot_username,
    skopeo_timeout_interval: mirror.skopeo_timeout,
    architecture_filter: mirror.architecture_filter ?? [],
  };
}
