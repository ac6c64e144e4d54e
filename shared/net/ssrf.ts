/**
 * Server-side request forgery checks for URLs users configure (webhook and Slack targets, Clair
 * callbacks, mirror sources): only http(s), no embedded credentials, never a host named in
 * `WEBHOOK_HOSTNAME_BLACKLIST`, and only public unicast addresses, unless `SSRF_ALLOWED_HOSTS`
 * names the host, the address or a CIDR range holding it. Quay refuses only `localhost`,
 * `127.0.0.1` and its blacklist; quayfleet also refuses loopback, link-local (cloud metadata),
 * private, CGNAT, unique-local, multicast and reserved ranges, by name or by address.
 *
 * A URL is checked twice: when it is configured (`checkUrlTarget`, resolving its name), and on
 * every connection (`guardedLookup`, the resolver handed to http.request), so a name that later
 * resolves to a private address (DNS rebinding) is refused at delivery too.
 */
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/** What may be reached: Quay's `SSRF_ALLOWED_HOSTS` and `WEBHOOK_HOSTNAME_BLACKLIST`. */
export interface SsrfPolicy {
  /** Hostnames, addresses or CIDR ranges that may be private (e.g. `127.0.0.1`, `10.0.0.0/8`). */
  readonly allowedHosts: readonly string[];
  /** Hostnames never reached, whatever they resolve to. */
  readonly blockedHostnames: readonly string[];
}

/** The policy of a Quay config. */
export function ssrfPolicyOf(quay: { SSRF_ALLOWED_HOSTS: readonly string[]; WEBHOOK_HOSTNAME_BLACKLIST: readonly string[] }): SsrfPolicy {
  return { allowedHosts: quay.SSRF_ALLOWED_HOSTS, blockedHostnames: quay.WEBHOOK_HOSTNAME_BLACKLIST };
}

/** A URL or address the policy refuses; `message` says why, for the API's 400 and the logs. */
export class SsrfRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SsrfRefusedError';
  }
}

type Address = ipaddr.IPv4 | ipaddr.IPv6;

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

function normalized(address: Address): Address {
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() ? (address as ipaddr.IPv6).toIPv4Address() : address;
}

function allowListed(policy: SsrfPolicy, hostname: string, address: Address | undefined): boolean {
  for (const entry of policy.allowedHosts) {
    const wanted = entry.trim().toLowerCase();
    if (wanted === hostname) return true;
    if (!address) continue;
    try {
      if (ipaddr.isValidCIDR(wanted)) {
        const [range, bits] = ipaddr.parseCIDR(wanted);
        const candidate = normalized(address);
        const base = normalized(range);
        if (candidate.kind() === base.kind() && candidate.match(base, base.kind() === range.kind() ? bits : bits - 96)) return true;
      } else if (ipaddr.isValid(wanted) && normalized(ipaddr.parse(wanted)).toNormalizedString() === normalized(address).toNormalizedString()) {
        return true;
      }
    } catch {
      // An entry that is neither a name, an address nor a range matches nothing.
    }
  }
  return false;
}

/** Throws SsrfRefusedError unless `address`, reached as `hostname`, is public or allow-listed. */
export function assertAddressAllowed(policy: SsrfPolicy, hostname: string, address: string): void {
  let parsed: Address;
  try {
    parsed = normalized(ipaddr.parse(address.replace(/%.*$/, '')));
  } catch {
    throw new SsrfRefusedError(`${address} is not an IP address`);
  }
  if (parsed.range() === 'unicast' || allowListed(policy, hostname, parsed)) return;
  throw new SsrfRefusedError(`${hostname} resolves to ${parsed.toString()}, a ${parsed.range()} address, which is not allowed (see SSRF_ALLOWED_HOSTS)`);
}

/**
 * Checks what can be checked without DNS: scheme http(s), no credentials, host not blacklisted,
 * and an address literal public or allow-listed. Returns the parsed URL.
 */
export function checkUrl(policy: SsrfPolicy, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SsrfRefusedError('Invalid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SsrfRefusedError('URL must be http or https');
  if (url.username || url.password) throw new SsrfRefusedError('URL must not contain credentials');
  const hostname = hostOf(url);
  if (hostname === '' ) throw new SsrfRefusedError('URL must have a host');
  if (policy.blockedHostnames.some((h) => h.toLowerCase() === hostname)) throw new SsrfRefusedError(`Host ${hostname} is not allowed`);
  if (ipaddr.isValid(hostname)) assertAddressAllowed(policy, hostname, hostname);
  else if ((hostname === 'localhost' || hostname.endsWith('.localhost')) && !allowListed(policy, hostname, undefined)) {
    throw new SsrfRefusedError(`Host ${hostname} is not allowed (see SSRF_ALLOWED_HOSTS)`);
  }
  return url;
}

/** A DNS resolver: every address of a name. */
export type Resolve = (hostname: string) => Promise<readonly string[]>;

const systemResolve: Resolve = async (hostname) => (await dns.promises.lookup(hostname, { all: true })).map((a) => a.address);

/**
 * checkUrl, then resolves a hostname and checks every address it has (any refused address refuses
 * the URL). For configuration time; `guardedLookup` repeats the address check per connection.
 */
export async function checkUrlTarget(policy: SsrfPolicy, raw: string, resolve: Resolve = systemResolve): Promise<URL> {
  const url = checkUrl(policy, raw);
  const hostname = hostOf(url);
  if (ipaddr.isValid(hostname) || allowListed(policy, hostname, undefined)) return url;
  let addresses: readonly string[];
  try {
    addresses = await resolve(hostname);
  } catch {
    throw new SsrfRefusedError(`Host ${hostname} could not be resolved`);
  }
  for (const address of addresses) assertAddressAllowed(policy, hostname, address);
  return url;
}

/**
 * A `lookup` for http.request that refuses, at connection time, any address the policy refuses.
 * (Address literals skip lookup in Node: check them with checkUrl first.)
 */
export function guardedLookup(policy: SsrfPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      try {
        if (!allowListed(policy, hostname.toLowerCase(), undefined)) {
          for (const entry of addresses) assertAddressAllowed(policy, hostname.toLowerCase(), entry.address);
        }
      } catch (refused) {
        return callback(refused as NodeJS.ErrnoException, '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      callback(null, first.address, first.family);
    });
  };
}
