/**
 * Quay's config API (CFG-11, CFG-12) on the front end:
 *
 * - `POST /api/v1/config/validate` with `{"config.yaml": {...}, "certs": {...}}` answers Quay's
 *   array of `{FieldGroup, Tags, Message}`, `[]` when the config is valid: the checks every process
 *   runs at boot (`quayfleet config validate` runs the same), with this pod's environment.
 *   `?mode=online` (Quay's config tool's online mode) also connects to the database, Redis and
 *   each storage location, trusting the bundle's `certs` entries `extra_ca_certs/*`; other
 *   `certs` entries are reported as unused warnings. `?warnings=true` answers
 *   `{"errors": [...], "warnings": [...]}` instead, both in the same shape, whatever the errors.
 * - `GET /api/v1/config` answers `{"config.yaml": {...}}`: the config this process runs with,
 *   Quay's defaults filled in and every secret redacted.
 *
 * Callers: a superuser, or Quay's config tool credentials `quayconfig:<QUAYFLEET_CONFIG_PASSWORD>`
 * (Basic), so tooling written for Quay's config tool works unchanged.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { redactConfig, toValidationErrors, validateQuayConfig, type ValidationError } from '../../shared/config/index.ts';
import { bundleCerts, validateQuayConfigOnline } from '../../shared/runtime/config-connect.ts';
import { effectiveConfig } from '../../shared/config/effective.ts';
import { storageParamIssues } from '../../shared/storage/drivers/index.ts';
import { parseBasicAuthorization } from '../auth/credentials.ts';
import { apiErrors } from '../errors.ts';
import { requireUser } from './common.ts';

/** The user name of Quay's config tool. */
export const CONFIG_TOOL_USER = 'quayconfig';

/** Registers the config routes (inside the /api/v1 scope). */
export async function registerConfigRoutes(app: FastifyInstance): Promise<void> {
  app.get('/config', async (request) => {
    await requireConfigAccess(request);
    return { 'config.yaml': redactConfig(effectiveConfig(app.deps.config)) };
  });

  app.post('/config/validate', async (request) => {
    await requireConfigAccess(request);
    const body = request.body as Record<string, unknown> | undefined;
    if (typeof body !== 'object' || body === null || Array.isArray(body) || !Object.hasOwn(body, 'config.yaml')) {
      throw apiErrors.badRequest('expected a JSON object {"config.yaml": {...}}');
    }
    const config = body['config.yaml'];
    if (config !== null && (typeof config !== 'object' || Array.isArray(config))) {
      throw apiErrors.badRequest('"config.yaml" must be a mapping of config keys to values');
    }
    const query = request.query as { mode?: string; warnings?: string };
    if (query.mode !== undefined && query.mode !== 'online' && query.mode !== 'offline') throw apiErrors.badRequest('mode is online or offline');
    const certs = bundleCerts(body.certs);
    const report = query.mode === 'online'
      ? await validateQuayConfigOnline(config ?? {}, storageParamIssues, { env: process.env, extraCaCerts: certs.extraCaCerts })
      : validateQuayConfig(config ?? {}, process.env, storageParamIssues);
    const byGroup = (a: ValidationError, b: ValidationError) => (a.FieldGroup < b.FieldGroup ? -1 : a.FieldGroup > b.FieldGroup ? 1 : 0);
    const errors = [...report.errors, ...toValidationErrors(certs.errors)].sort(byGroup);
    if (query.warnings !== 'true') return errors;
    return { errors, warnings: [...report.warnings, ...toValidationErrors(certs.warnings)].sort(byGroup) };
  });
}

/** The config tool's credentials, or a superuser: 401 without credentials, 403 for other users. */
async function requireConfigAccess(request: FastifyRequest): Promise<void> {
  const password = request.server.deps.config.configPassword;
  const basic = parseBasicAuthorization(request);
  if (basic?.username === CONFIG_TOOL_USER && password !== undefined) {
    if (sameSecret(basic.password, password)) return;
    throw apiErrors.unauthorized('Invalid credentials');
  }
  const principal = await requireUser(request);
  if (!principal.superuser) throw apiErrors.forbidden();
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
