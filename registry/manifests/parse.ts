/**
 * Turns the bytes of a manifest PUT into a validated, typed manifest: well-formed JSON, a media type
 * that agrees with the Content-Type, the schema of its type, and the spec's own rules. Everything
 * the registry later needs (referenced blobs, child manifests, subject, artifact type) is read here
 * once; the bytes themselves are kept unchanged because the digest is over them.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { OciError } from '../errors.ts';
import {
  DOCKER_MANIFEST_LIST, DOCKER_SCHEMA2_MANIFEST, OCI_EMPTY, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST,
  SCHEMA1_MEDIA_TYPES, isManifestMediaType, type ManifestMediaType,
} from './media-types.ts';
import {
  dockerManifestListSchema, dockerManifestSchema, ociIndexSchema, ociManifestSchema, type Descriptor,
} from './schemas.ts';

/** A manifest that passed validation. */
export interface ParsedManifest {
  readonly mediaType: ManifestMediaType;
  /** `sha256:<hex>` of `bytes`. */
  readonly digest: string;
  readonly bytes: Buffer;
  /** The config descriptor of an image manifest; undefined for indexes. */
  readonly config: Descriptor | undefined;
  readonly layers: readonly Descriptor[];
  /** Blobs the registry must hold for this manifest: config and layers, without foreign (`urls`) layers. */
  readonly blobs: readonly Descriptor[];
  /** Child manifests of an index; empty for image manifests. */
  readonly children: readonly Descriptor[];
  readonly subject: Descriptor | undefined;
  /** `artifactType` as declared, else the config media type of a non-image artifact, as the referrers API reports it. */
  readonly artifactType: string | undefined;
  readonly annotations: Readonly<Record<string, string>> | undefined;
  /** Sum of the layer sizes: Quay's estimate of the bytes a pull of this manifest transfers. */
  readonly layersCompressedSize: number;
}

/** sha256 digest string of `bytes`. */
export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The media type part of a Content-Type header (no parameters, lowercase), or undefined. */
export function baseMediaType(contentType: string | undefined): string | undefined {
  const base = contentType?.split(';')[0]?.trim().toLowerCase();
  return base ? base : undefined;
}

/**
 * Parses and validates manifest `bytes` sent with `contentType`. Throws OciError: MANIFEST_INVALID
 * (malformed, mistyped, schema errors), UNSUPPORTED (Docker schema 1).
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  const body = parseJsonObject(bytes);
  const mediaType = resolveMediaType(body, baseMediaType(contentType));
  const digest = sha256Digest(bytes);
  switch (mediaType) {
    case DOCKER_SCHEMA2_MANIFEST: {
      const m = validate(dockerManifestSchema, body);
      return imageManifest(mediaType, digest, bytes, m.config, m.layers, undefined, undefined, undefined);
    }
    case OCI_IMAGE_MANIFEST: {
      const m = validate(ociManifestSchema, body);
      if (m.config.mediaType === OCI_EMPTY && !m.artifactType) {
        throw new OciError('MANIFEST_INVALID', 'artifactType must be set when the config is the empty descriptor');
      }
      return imageManifest(mediaType, digest, bytes, m.config, m.layers, m.subject, m.artifactType, m.annotations);
    }
    case DOCKER_MANIFEST_LIST: {
      const m = validate(dockerManifestListSchema, body);
      return index(mediaType, digest, bytes, m.manifests, undefined, undefined, undefined);
    }
    case OCI_IMAGE_INDEX: {
      const m = validate(ociIndexSchema, body);
      return index(mediaType, digest, bytes, m.manifests, m.subject, m.artifactType, m.annotations);
    }
  }
}

function parseJsonObject(bytes: Buffer): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new OciError('MANIFEST_INVALID', 'manifest is not valid JSON', { reason: (error as Error).message });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new OciError('MANIFEST_INVALID', 'manifest must be a JSON object');
  return body as Record<string, unknown>;
}

/**
 * The manifest's type: its declared `mediaType`, which must agree with a manifest Content-Type when
 * both are given; otherwise the Content-Type; otherwise inferred from the shape (OCI allows an
 * image manifest or index without `mediaType`).
 */
function resolveMediaType(body: Record<string, unknown>, contentType: string | undefined): ManifestMediaType {
  const declared = typeof body.mediaType === 'string' ? body.mediaType : undefined;
  if (body.schemaVersion === 1 || [declared, contentType].some((t) => t !== undefined && SCHEMA1_MEDIA_TYPES.includes(t))) {
    throw new OciError('UNSUPPORTED', 'Docker schema 1 manifests are not supported');
  }
  if (body.mediaType !== undefined && declared === undefined) throw new OciError('MANIFEST_INVALID', 'mediaType must be a string');
  const typedContent = contentType !== undefined && isManifestMediaType(contentType) ? contentType : undefined;
  if (declared !== undefined && typedContent !== undefined && declared !== typedContent) {
    throw new OciError('MANIFEST_INVALID', 'manifest mediaType does not match the Content-Type header', { mediaType: declared, contentType });
  }
  const chosen = declared ?? typedContent ?? (Array.isArray(body.manifests) ? OCI_IMAGE_INDEX : OCI_IMAGE_MANIFEST);
  if (!isManifestMediaType(chosen)) throw new OciError('MANIFEST_INVALID', 'unknown manifest media type', { mediaType: chosen });
  return chosen;
}

function validate<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body);
  if (!result.success) {
    const issues = result.error.issues.slice(0, 20).map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
    throw new OciError('MANIFEST_INVALID', 'manifest does not match its schema', { issues });
  }
  return result.data;
}

function imageManifest(
  mediaType: ManifestMediaType, digest: string, bytes: Buffer, config: Descriptor, layers: Descriptor[],
  subject: Descriptor | undefined, artifactType: string | undefined, annotations: Record<string, string> | undefined,
): ParsedManifest {
  // Foreign layers live outside the registry (their `urls`); the registry does not hold them.
  const blobs = [config, ...layers.filter((layer) => !layer.urls?.length)];
  return {
    mediaType, digest, bytes, config, layers, blobs: dedupeByDigest(blobs), children: [], subject, annotations,
    artifactType: artifactType ?? config.mediaType,
    layersCompressedSize: layers.reduce((sum, layer) => sum + layer.size, 0),
  };
}

function index(
  mediaType: ManifestMediaType, digest: string, bytes: Buffer, manifests: Descriptor[],
  subject: Descriptor | undefined, artifactType: string | undefined, annotations: Record<string, string> | undefined,
): ParsedManifest {
  const foreign = manifests.find((child) => !isManifestMediaType(child.mediaType));
  if (foreign) throw new OciError('MANIFEST_INVALID', 'an index may only list manifests', { digest: foreign.digest, mediaType: foreign.mediaType });
  return {
    mediaType, digest, bytes, config: undefined, layers: [], blobs: [], children: dedupeByDigest(manifests),
    subject, artifactType, annotations, layersCompressedSize: 0,
  };
}

function dedupeByDigest(descriptors: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return descriptors.filter((d) => !seen.has(d.digest) && seen.add(d.digest));
}
