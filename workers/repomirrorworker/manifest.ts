/**
 * What the copy needs from an upstream manifest: the blobs it references (config and layers,
 * without foreign layers), the child manifests of an index with their platforms, the subject and
 * artifact type. Only the four manifest media types of the OCI and Docker schema 2 specs are
 * mirrored; anything else fails its tag with a clear error.
 */
import { UpstreamError, type UpstreamManifest } from './upstream.ts';

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly platform?: { readonly architecture?: string; readonly os?: string };
}

/** A manifest as the copy and the database see it. */
export interface MirrorManifest extends UpstreamManifest {
  readonly isIndex: boolean;
  readonly config: Descriptor | undefined;
  /** Blobs the registry must hold: config and non-foreign layers, deduplicated. */
  readonly blobs: readonly Descriptor[];
  readonly children: readonly Descriptor[];
  readonly subject: string | null;
  readonly artifactType: string | null;
  readonly layersCompressedSize: number;
}

const IMAGE_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const DIGEST = /^sha256:[a-f0-9]{64}$/;

function descriptor(value: unknown, where: string): Descriptor {
  const d = value as Descriptor | undefined;
  if (!d || typeof d.digest !== 'string' || !DIGEST.test(d.digest) || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new UpstreamError(`manifest has an invalid descriptor in ${where} (only sha256 digests are mirrored)`);
  }
  return d;
}

/** Reads a fetched manifest; UpstreamError for an unsupported type or a malformed body. */
export function readManifest(manifest: UpstreamManifest): MirrorManifest {
  const json = JSON.parse(manifest.bytes.toString('utf8')) as Record<string, unknown>;
  const subject = json.subject ? descriptor(json.subject, 'subject').digest : null;
  const artifactType = typeof json.artifactType === 'string' ? json.artifactType : null;
  if (INDEX_TYPES.has(manifest.mediaType)) {
    const children = (Array.isArray(json.manifests) ? json.manifests : []).map((m, i) => descriptor(m, `manifests[${i}]`));
    return { ...manifest, isIndex: true, config: undefined, blobs: [], children, subject, artifactType, layersCompressedSize: 0 };
  }
  if (!IMAGE_TYPES.has(manifest.mediaType)) {
    throw new UpstreamError(`manifest media type ${JSON.stringify(manifest.mediaType)} is not mirrored (Docker schema 2 and OCI only)`);
  }
  const config = descriptor(json.config, 'config');
  const layers = (Array.isArray(json.layers) ? json.layers : []).map((l, i) => descriptor(l, `layers[${i}]`));
  const seen = new Set<string>();
  const blobs = [config, ...layers.filter((l) => !l.urls?.length)].filter((b) => !seen.has(b.digest) && seen.add(b.digest));
  return {
    ...manifest, isIndex: false, config, blobs, children: [], subject, artifactType,
    layersCompressedSize: layers.reduce((sum, l) => sum + l.size, 0),
  };
}
