/**
 * fast-check generators of the inputs a registry front end meets in the wild: repository names,
 * references, digests, Range and Content-Range values, media types, manifests (valid-ish, broken,
 * huge, deep), Quay API bodies and JWTs. Each mixes well-formed values (so requests get past the
 * first check) with near misses and garbage.
 */
import fc from 'fast-check';

const HEX = '0123456789abcdef';

/** Any string a header or path segment might carry, including control and non-ASCII characters. */
export const anyText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

const lowerHex = (length: number) => fc.string({ unit: fc.constantFrom(...HEX), minLength: length, maxLength: length });

/** Digests: valid sha256, other algorithms, wrong lengths, upper case, junk. */
export const digest = fc.oneof(
  lowerHex(64).map((h) => `sha256:${h}`),
  lowerHex(128).map((h) => `sha512:${h}`),
  fc.tuple(fc.constantFrom('sha256', 'sha384', 'md5', 'SHA256', 'sha256+b64', 'a.b-c', ''), fc.integer({ min: 0, max: 140 }))
    .chain(([alg, n]) => lowerHex(n).map((h) => `${alg}:${h}`)),
  lowerHex(64).map((h) => `sha256:${h.toUpperCase()}`),
  anyText.map((s) => `sha256:${s}`),
  anyText,
);

/** Tags and references: valid tags, 128/129-char tags, dots and dashes first, digests. */
export const reference = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,20}$/),
  fc.constantFrom('latest', '.hidden', '-dash', 'a'.repeat(128), 'a'.repeat(129), '..', '%00', 'a:b', 'sha256:'),
  digest,
  anyText,
);

/** Repository path components: valid, with slashes, case, unicode, traversal, encoded bytes. */
export const repositoryName = fc.oneof(
  fc.constantFrom('acme/app', 'acme/missing', 'owner/own', 'nobody/none', 'acme/app/nested/deep'),
  fc.stringMatching(/^[a-z0-9]{1,10}\/[a-z0-9._-]{1,20}$/),
  fc.constantFrom('ACME/App', 'acme/../acme/app', 'acme/%2e%2e/x', 'acme//app', '/acme/app', 'acme/app/', 'a', '',
    'acme/' + 'x'.repeat(300), 'acme/app%00', 'ac me/app', 'acme/ä', 'acme/app;drop', 'acme/%ZZ'),
  fc.tuple(anyText, anyText).map(([a, b]) => `${encodeURIComponent(a)}/${encodeURIComponent(b)}`),
);

/** Range header values for a blob GET. */
export const rangeHeader = fc.oneof(
  fc.tuple(fc.nat(2000), fc.nat(2000)).map(([a, b]) => `bytes=${a}-${b}`),
  fc.nat(2000).map((a) => `bytes=${a}-`),
  fc.nat(2000).map((a) => `bytes=-${a}`),
  fc.constantFrom('bytes=', 'bytes=-', 'bytes=0-0,5-9', 'bytes=9-1', 'items=0-1', 'bytes=-0', 'bytes=0-99999999999999999999',
    'bytes=1e3-2', 'bytes= 0 - 1', 'bytes=0x10-20', 'bytes=-1-2'),
  anyText,
);

/** Content-Range values of a chunked upload PATCH (`<start>-<end>`, and what clients send wrong). */
export const contentRangeHeader = fc.oneof(
  fc.tuple(fc.nat(100), fc.nat(100)).map(([a, b]) => `${a}-${b}`),
  fc.tuple(fc.nat(100), fc.nat(100)).map(([a, b]) => `bytes ${a}-${b}/*`),
  fc.constantFrom('0-', '-1', '1-0', '0-18446744073709551616', 'bytes */*', '00-01', '+0-1'),
  anyText,
);

/** Media types for Content-Type and Accept. */
export const mediaType = fc.oneof(
  fc.constantFrom(
    'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/json', 'application/octet-stream',
    'text/plain', '*/*', 'application/vnd.oci.image.manifest.v1+json; charset=utf-8', 'multipart/form-data; boundary=x',
    'application/x-www-form-urlencoded', '', ';', 'application/vnd.oci.image.manifest.v1+json, text/html;q=0.5',
  ),
  anyText,
);

const descriptor = fc.record({
  mediaType: fc.oneof(mediaType, fc.jsonValue()),
  digest: fc.oneof(digest, fc.jsonValue()),
  size: fc.oneof(fc.nat(10_000), fc.integer(), fc.double(), fc.constant(-1), fc.constant(2 ** 64), fc.jsonValue()),
}, { requiredKeys: [] });

/** A JSON value nested `depth` deep (parsers that recurse must not overflow). */
export const deepJson = fc.integer({ min: 100, max: 20_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth));

/** Manifest bodies: valid-ish OCI/Docker shapes with wrong parts, broken JSON, huge and deep ones. */
export const manifestBody = fc.oneof(
  fc.record({
    schemaVersion: fc.oneof(fc.constant(2), fc.constant(1), fc.jsonValue()),
    mediaType: fc.oneof(mediaType, fc.jsonValue()),
    config: fc.oneof(descriptor, fc.jsonValue()),
    layers: fc.oneof(fc.array(descriptor, { maxLength: 4 }), fc.jsonValue()),
    manifests: fc.oneof(fc.array(descriptor, { maxLength: 4 }), fc.jsonValue()),
    subject: fc.oneof(descriptor, fc.jsonValue()),
    annotations: fc.oneof(fc.dictionary(anyText, anyText, { maxKeys: 3 }), fc.jsonValue()),
    artifactType: fc.oneof(mediaType, fc.jsonValue()),
    fsLayers: fc.array(fc.record({ blobSum: digest }), { maxLength: 3 }),
    signatures: fc.jsonValue(),
  }, { requiredKeys: [] }).map((m) => JSON.stringify(m)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  anyText,
  deepJson,
  fc.constantFrom('{', '{"schemaVersion":2', '\u0000', '{"schemaVersion":2,"layers":[' + '{},'.repeat(5000) + '{}]}',
    '{"a":"' + 'x'.repeat(70_000) + '"}', '{"__proto__":{"polluted":1},"schemaVersion":2}', '\uFEFF{}', '{"schemaVersion":2}'),
);

/** Quay API bodies: objects with the keys routes read, of any type, plus non-objects. */
export const apiBody = fc.oneof(
  fc.dictionary(
    fc.constantFrom('repository', 'namespace', 'visibility', 'description', 'repo_kind', 'name', 'role', 'email', 'password',
      'tag_expiration_s', 'manifest_digest', 'expiration', 'limit_bytes', 'type', 'threshold_percent', 'event', 'method', 'config',
      'eventConfig', 'title', 'external_reference', 'external_registry_username', 'external_registry_password', 'sync_interval',
      'sync_start_date', 'root_rule', 'rule_kind', 'rule_value', 'external_registry_config', 'robot_username', 'is_enabled',
      'state', 'callback_url', 'callback_email', 'starttime', 'endtime', 'username', 'invoice_email', 'friendly_name',
      'config_yaml', 'unstructured_metadata', 'url', 'verify_tls', 'proxy', 'http_proxy', 'https_proxy', 'no_proxy',
      'skopeo_timeout_interval', 'architecture_filter', 'tags', 'is_alive'),
    fc.oneof(fc.jsonValue({ maxDepth: 3 }), anyText, fc.constantFrom('private', 'public', 'admin', 'write', 'read', 'member',
      'creator', 'repo_push', 'webhook', 'email', 'slack', 'Warning', 'Reject', 'MIRROR', 'NORMAL', 'READ_ONLY', 'http://127.0.0.1/',
      'http://169.254.169.254/latest', 'quay.io/library/busybox', '2026-01-01T00:00:00Z')),
    { maxKeys: 8 },
  ).map((o) => JSON.stringify(o)),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  anyText,
  deepJson,
);

/** Query strings for list endpoints (n, last, page, limit, starttime, ...). */
export const queryString = fc.dictionary(
  fc.constantFrom('n', 'last', 'page', 'limit', 'starttime', 'endtime', 'namespace', 'public', 'specificTag', 'onlyActiveTags',
    'filter_tag_name', 'next_page', 'scope', 'service', 'account', 'digest', 'mount', 'from', 'artifactType', 'include_quotas'),
  fc.oneof(anyText, fc.integer().map(String), fc.constantFrom('-1', '0', '1e309', 'NaN', 'true', 'like:%', 'eq:x', '01/01/2026')),
  { maxKeys: 4 },
).map((q) => new URLSearchParams(q).toString());
