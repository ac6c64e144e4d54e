import { describe, expect, it } from 'vitest';
import { OciError } from '../errors.ts';
import { artifactPolicy } from './policy.ts';
import { parseManifest, sha256Digest } from './parse.ts';
import { DOCKER_MANIFEST_LIST, DOCKER_SCHEMA2_MANIFEST, OCI_EMPTY, OCI_IMAGE_CONFIG, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST } from './media-types.ts';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const desc = (mediaType: string, c: string, size = 10, extra: Record<string, unknown> = {}) => ({ mediaType, digest: d(c), size, ...extra });
const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof OciError) return error.code;
    throw error;
  }
  return undefined;
}

const ociImage = {
  schemaVersion: 2, mediaType: OCI_IMAGE_MANIFEST, config: desc(OCI_IMAGE_CONFIG, 'a'),
  layers: [desc('application/vnd.oci.image.layer.v1.tar+gzip', 'b', 20), desc('application/vnd.oci.image.layer.v1.tar+gzip', 'c', 30)],
};

describe('parseManifest', () => {
  it('parses an OCI image manifest and keeps the bytes', () => {
    const raw = Buffer.from(JSON.stringify(ociImage, null, 3));
    const m = parseManifest(raw, OCI_IMAGE_MANIFEST);
    expect(m.mediaType).toBe(OCI_IMAGE_MANIFEST);
    expect(m.bytes).toBe(raw);
    expect(m.digest).toBe(sha256Digest(raw));
    expect(m.blobs.map((b) => b.digest)).toEqual([d('a'), d('b'), d('c')]);
    expect(m.layersCompressedSize).toBe(50);
    expect(m.artifactType).toBe(OCI_IMAGE_CONFIG);
  });

  it('infers the type when neither mediaType nor a manifest Content-Type is given', () => {
    const { mediaType: _omit, ...bare } = ociImage;
    expect(parseManifest(bytes(bare), 'application/json').mediaType).toBe(OCI_IMAGE_MANIFEST);
    expect(parseManifest(bytes({ schemaVersion: 2, manifests: [] }), undefined).mediaType).toBe(OCI_IMAGE_INDEX);
  });

  it('parses Docker schema 2 and manifest lists, skipping foreign layers', () => {
    const docker = { schemaVersion: 2, mediaType: DOCKER_SCHEMA2_MANIFEST, config: desc('application/vnd.docker.container.image.v1+json', 'a'),
      layers: [desc('application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'f', 5, { urls: ['https://example.com/x'] }), desc('application/vnd.docker.image.rootfs.diff.tar.gzip', 'b')] };
    const m = parseManifest(bytes(docker), `${DOCKER_SCHEMA2_MANIFEST}; charset=utf-8`);
    expect(m.blobs.map((b) => b.digest)).toEqual([d('a'), d('b')]);
    const list = { schemaVersion: 2, mediaType: DOCKER_MANIFEST_LIST, manifests: [desc(DOCKER_SCHEMA2_MANIFEST, 'e', 5, { platform: { os: 'linux', architecture: 'amd64' } })] };
    expect(parseManifest(bytes(list), DOCKER_MANIFEST_LIST).children.map((c) => c.digest)).toEqual([d('e')]);
  });

  it('reads subject and artifactType of an OCI 1.1 artifact', () => {
    const art = { ...ociImage, artifactType: 'application/vnd.example+json', config: desc(OCI_EMPTY, '4', 2), subject: desc(OCI_IMAGE_MANIFEST, 'e') };
    const m = parseManifest(bytes(art), OCI_IMAGE_MANIFEST);
    expect(m.subject?.digest).toBe(d('e'));
    expect(m.artifactType).toBe('application/vnd.example+json');
  });

  it.each([
    ['not JSON', Buffer.from('{nope'), OCI_IMAGE_MANIFEST, 'MANIFEST_INVALID'],
    ['a JSON array', bytes([1]), OCI_IMAGE_MANIFEST, 'MANIFEST_INVALID'],
    ['mediaType differing from Content-Type', bytes(ociImage), DOCKER_SCHEMA2_MANIFEST, 'MANIFEST_INVALID'],
    ['a missing config', bytes({ ...ociImage, config: undefined }), OCI_IMAGE_MANIFEST, 'MANIFEST_INVALID'],
    ['a bad digest', bytes({ ...ociImage, config: { ...ociImage.config, digest: 'sha256:zz' } }), OCI_IMAGE_MANIFEST, 'MANIFEST_INVALID'],
    ['a negative size', bytes({ ...ociImage, config: { ...ociImage.config, size: -1 } }), OCI_IMAGE_MANIFEST, 'MANIFEST_INVALID'],
    ['schemaVersion 3', bytes({ ...ociImage, schemaVersion: 3 }), OCI_IMAGE_MANIFEST, 'MANIFEST_INVALID'],
    ['an unknown mediaType', bytes({ ...ociImage, mediaType: 'application/x-nope' }), undefined, 'MANIFEST_INVALID'],
    ['schema 1', bytes({ schemaVersion: 1, name: 'a/b', tag: 'x', fsLayers: [] }), undefined, 'UNSUPPORTED'],
    ['signed schema 1 content type', bytes({ schemaVersion: 1 }), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'UNSUPPORTED'],
    ['an empty config without artifactType', bytes({ ...ociImage, config: desc(OCI_EMPTY, '4', 2) }), OCI_IMAGE_MANIFEST, 'MANIFEST_INVALID'],
    ['an index listing a blob', bytes({ schemaVersion: 2, mediaType: OCI_IMAGE_INDEX, manifests: [desc('application/octet-stream', 'a')] }), OCI_IMAGE_INDEX, 'MANIFEST_INVALID'],
  ])('rejects %s', (_name, raw, contentType, expected) => {
    expect(code(() => parseManifest(raw as Buffer, contentType as string | undefined))).toBe(expected);
  });
});

describe('artifactPolicy', () => {
  const policy = (overrides: Partial<Parameters<typeof artifactPolicy>[0]> = {}) =>
    artifactPolicy({ FEATURE_GENERAL_OCI_SUPPORT: true, IGNORE_UNKNOWN_MEDIATYPES: false, ...overrides });
  const helm = { schemaVersion: 2, mediaType: OCI_IMAGE_MANIFEST, config: desc('application/vnd.cncf.helm.config.v1+json', 'a'),
    layers: [desc('application/vnd.cncf.helm.chart.content.v1.tar+gzip', 'b')] };
  const sif = { ...helm, config: desc('application/vnd.sylabs.sif.config.v1+json', 'a'), layers: [desc('application/vnd.sylabs.sif.layer.v1+tar', 'b')] };

  it('accepts images always and the built-in artifact types with FEATURE_GENERAL_OCI_SUPPORT', () => {
    expect(code(() => policy().check(parseManifest(bytes(ociImage), undefined)))).toBeUndefined();
    expect(code(() => policy().check(parseManifest(bytes(helm), undefined)))).toBeUndefined();
    expect(code(() => policy({ FEATURE_GENERAL_OCI_SUPPORT: false }).check(parseManifest(bytes(ociImage), undefined)))).toBeUndefined();
    expect(code(() => policy({ FEATURE_GENERAL_OCI_SUPPORT: false }).check(parseManifest(bytes(helm), undefined)))).toBe('MANIFEST_INVALID');
  });

  it('restricts artifacts to ALLOWED_OCI_ARTIFACT_TYPES, which replaces the defaults', () => {
    const allowed = { 'application/vnd.sylabs.sif.config.v1+json': ['application/vnd.sylabs.sif.layer.v1+tar'] };
    expect(code(() => policy().check(parseManifest(bytes(sif), undefined)))).toBe('MANIFEST_INVALID');
    expect(code(() => policy({ ALLOWED_OCI_ARTIFACT_TYPES: allowed }).check(parseManifest(bytes(sif), undefined)))).toBeUndefined();
    expect(code(() => policy({ ALLOWED_OCI_ARTIFACT_TYPES: allowed }).check(parseManifest(bytes(helm), undefined)))).toBe('MANIFEST_INVALID');
    const wrongLayer = { ...sif, layers: [desc('application/x-other', 'b')] };
    expect(code(() => policy({ ALLOWED_OCI_ARTIFACT_TYPES: allowed }).check(parseManifest(bytes(wrongLayer), undefined)))).toBe('MANIFEST_INVALID');
  });

  it('accepts anything with IGNORE_UNKNOWN_MEDIATYPES', () => {
    expect(code(() => policy({ IGNORE_UNKNOWN_MEDIATYPES: true }).check(parseManifest(bytes(sif), undefined)))).toBeUndefined();
  });

  it('types an OCI 1.1 artifact by its artifactType', () => {
    const art = { ...ociImage, artifactType: 'application/vnd.example.sbom', config: desc(OCI_EMPTY, '4', 2), layers: [desc('application/json', 'b')] };
    expect(code(() => policy().check(parseManifest(bytes(art), undefined)))).toBe('MANIFEST_INVALID');
    const allowed = { 'application/vnd.example.sbom': ['application/json'] };
    expect(code(() => policy({ ALLOWED_OCI_ARTIFACT_TYPES: allowed }).check(parseManifest(bytes(art), undefined)))).toBeUndefined();
  });
});
