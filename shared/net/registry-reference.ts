/**
 * Mirror sources (Quay's `validate_external_registry_reference`, util/security/ssrf.py): an
 * external reference is `host[:port]/path` (no scheme, a repository path required), and every
 * address the host resolves to must pass the shared SSRF policy (ssrf.ts: public unicast unless
 * SSRF_ALLOWED_HOSTS admits the name, address or range); an allow-list entry may also be
 * `host:port`. The API checks without DNS (the literal host); the worker re-checks with DNS right
 * before it connects, as Quay does, so a name re-pointed at a private address is refused.
 */
import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { assertAddressAllowed, SsrfRefusedError } from './ssrf.ts';

/** A reference the rules refuse; `message` is what the API and the sync log show. */
export class ExternalReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExternalReferenceError';
  }
}

/** Quay's wording for a blocked location. */
export const LOCATION_NOT_ALLOWED = 'The provided registry location is not allowed';

/** A parsed `host[:port]/path`. */
export interface ExternalReference {
  /** Host name or IP literal, without brackets. */
  readonly host: string;
  readonly port: number | undefined;
  /** `host` or `host:port` as written (with brackets for IPv6), for URLs and auth scopes. */
  readonly authority: string;
  /** The repository path on the upstream, e.g. `library/busybox`. */
  readonly repository: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Parses an external reference; ExternalReferenceError when it is not `host[:port]/path`. */
export function parseExternalReference(reference: string): ExternalReference {
  const text = reference.trim();
  if (text.includes('://')) throw new ExternalReferenceError('The external reference must not include a scheme: use host[:port]/path');
  const slash = text.indexOf('/');
  if (slash <= 0 || slash === text.length - 1) throw new ExternalReferenceError('The external reference must name a repository: host[:port]/path');
  const authority = text.slice(0, slash);
  const repository = text.slice(slash + 1);
  if (!repository.split('/').every((c) => PATH_COMPONENT.test(c))) {
    throw new ExternalReferenceError(`Invalid repository path "${repository}" in the external reference`);
  }
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(authority);
  const host = match?.[1] ?? match?.[2];
  const port = match?.[3] === undefined ? undefined : Number(match[3]);
  if (!host || (match?.[1] !== undefined && !ipaddr.IPv6.isValid(host)) || (match?.[2] !== undefined && !HOST_NAME.test(host) && !ipaddr.IPv4.isValid(host))
    || (port !== undefined && (port < 1 || port > 65535))) {
    throw new ExternalReferenceError(`Invalid registry host "${authority}" in the external reference`);
  }
  return { host, port, authority, repository };
}

// Names and `host:port` entries; addresses and ranges are the shared policy's business.
function allowedByName(ref: ExternalReference, allowed: readonly string[]): boolean {
  const host = ref.host.toLowerCase();
  return allowed.some((entry) => {
    const e = entry.trim().toLowerCase();
    return e === host || e === ref.authority.toLowerCase() || (ref.port !== undefined && e === `${host}:${ref.port}`);
  });
}

/**
 * Checks `reference` against the SSRF rules; with `resolve`, every address of the host name
 * counts. Returns the parsed reference; ExternalReferenceError (LOCATION_NOT_ALLOWED) otherwise.
 */
export async function validateExternalReference(
  reference: string, options: { allowedHosts: readonly string[]; resolve: boolean },
): Promise<ExternalReference> {
  const ref = parseExternalReference(reference);
  if (allowedByName(ref, options.allowedHosts)) return ref;
  let addresses: string[];
  if (ipaddr.isValid(ref.host)) addresses = [ref.host];
  else if (ref.host.toLowerCase() === 'localhost' || ref.host.toLowerCase().endsWith('.localhost')) addresses = ['127.0.0.1'];
  else if (!options.resolve) return ref;
  else {
    try {
      addresses = (await lookup(ref.host, { all: true })).map((a) => a.address);
    } catch (error) {
      throw new ExternalReferenceError(`Cannot resolve registry host "${ref.host}": ${(error as Error).message}`);
    }
  }
  const policy = { allowedHosts: options.allowedHosts, blockedHostnames: [] };
  for (const address of addresses) {
    try {
      assertAddressAllowed(policy, ref.host.toLowerCase(), address);
    } catch (error) {
      if (error instanceof SsrfRefusedError) throw new ExternalReferenceError(LOCATION_NOT_ALLOWED);
      throw error;
    }
  }
  return ref;
}

/**
 * A mirror's proxy setting (`external_registry_config.proxy.http_proxy` / `https_proxy`) as the
 * worker connects to it: a value without a scheme is an http:// proxy. Throws (TypeError) on a
 * value that is not a URL. The API checks the same URL the worker will use.
 */
export function mirrorProxyUrl(raw: string): URL {
  return new URL(raw.includes('://') ? raw : `http://${raw}`);
}
