/**
 * Zod schemas of the manifest formats the registry accepts: Docker schema 2 manifests and manifest
 * lists, OCI image manifests and indexes (image-spec 1.1, with `artifactType` and `subject`).
 * Objects are loose: unknown fields are allowed and kept in the stored bytes, as the specs require.
 */
import { z } from 'zod';
import { DOCKER_MANIFEST_LIST, DOCKER_SCHEMA2_MANIFEST, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST } from './media-types.ts';

/** RFC 6838 media type, as the image spec restricts it. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
/** The image spec's digest grammar, with the registered algorithms' exact lengths. */
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** A digest string: the spec's grammar, and sha256/sha512 encodings of the right length in lowercase hex. */
export const digestSchema = z.string().regex(DIGEST, 'not a digest').refine((digest) => {
  const [algorithm, encoded] = digest.split(':') as [string, string];
  if (algorithm === 'sha256') return /^[a-f0-9]{64}$/.test(encoded);
  if (algorithm === 'sha512') return /^[a-f0-9]{128}$/.test(encoded);
  return true;
}, 'digest encoding does not fit its algorithm');

export const mediaTypeSchema = z.string().regex(MEDIA_TYPE, 'not a media type');

const platformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});

const annotationsSchema = z.record(z.string(), z.string());

/** A content descriptor. */
export const descriptorSchema = z.looseObject({
  mediaType: mediaTypeSchema,
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: annotationsSchema.optional(),
  data: z.string().optional(),
  artifactType: mediaTypeSchema.optional(),
  platform: platformSchema.optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

export const dockerManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.literal(DOCKER_SCHEMA2_MANIFEST),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});

export const dockerManifestListSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.literal(DOCKER_MANIFEST_LIST),
  manifests: z.array(descriptorSchema.extend({ platform: platformSchema })),
});

export const ociManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.literal(OCI_IMAGE_MANIFEST).optional(),
  artifactType: mediaTypeSchema.optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});

export const ociIndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.literal(OCI_IMAGE_INDEX).optional(),
  artifactType: mediaTypeSchema.optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});
