/**
 * The manifest, config and layer media types the registry knows, and Quay's built-in OCI artifact
 * types (seed FE-9). One source for every media type string the front end compares against.
 */

export const DOCKER_SCHEMA1_MANIFEST = 'application/vnd.docker.distribution.manifest.v1+json';
export const DOCKER_SCHEMA1_SIGNED_MANIFEST = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
export const DOCKER_SCHEMA2_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const OCI_IMAGE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_IMAGE_INDEX = 'application/vnd.oci.image.index.v1+json';

/** Manifest media types the registry stores and serves. */
export const MANIFEST_MEDIA_TYPES = [DOCKER_SCHEMA2_MANIFEST, DOCKER_MANIFEST_LIST, OCI_IMAGE_MANIFEST, OCI_IMAGE_INDEX] as const;
export type ManifestMediaType = (typeof MANIFEST_MEDIA_TYPES)[number];

/** Whether `mediaType` is a list of manifests (Docker manifest list, OCI index). */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === DOCKER_MANIFEST_LIST || mediaType === OCI_IMAGE_INDEX;
}

/** Whether `mediaType` is one of the stored manifest types. */
export function isManifestMediaType(mediaType: string): mediaType is ManifestMediaType {
  return (MANIFEST_MEDIA_TYPES as readonly string[]).includes(mediaType);
}

/** Schema 1 types: refused with UNSUPPORTED (Quay 3.9 still takes signed v1; quayfleet does not). */
export const SCHEMA1_MEDIA_TYPES: readonly string[] = [DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED_MANIFEST];

export const DOCKER_IMAGE_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const OCI_IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** OCI 1.1's empty descriptor (`{}`), the config of artifacts that carry their type in `artifactType`. */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';

/** Config types of runnable images. */
export const IMAGE_CONFIG_TYPES: readonly string[] = [DOCKER_IMAGE_CONFIG, OCI_IMAGE_CONFIG];

/** Layer types of runnable images (Docker and OCI, compressed or not, distributable or not). */
export const IMAGE_LAYER_TYPES: readonly string[] = [
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
];

/**
 * Quay's artifact types enabled by FEATURE_GENERAL_OCI_SUPPORT (config media type -> allowed layer
 * media types). ALLOWED_OCI_ARTIFACT_TYPES replaces this map when set, as in Quay.
 */
export const DEFAULT_ARTIFACT_TYPES: Readonly<Record<string, readonly string[]>> = {
  'application/vnd.cncf.helm.config.v1+json': ['application/tar+gzip', 'application/vnd.cncf.helm.chart.content.v1.tar+gzip'],
  [OCI_IMAGE_CONFIG]: [
    'application/vnd.dev.cosign.simplesigning.v1+json', 'application/vnd.dsse.envelope.v1+json',
    'text/spdx', 'text/spdx+xml', 'text/spdx+json', 'application/vnd.syft+json',
    'application/vnd.cyclonedx', 'application/vnd.cyclonedx+xml', 'application/vnd.cyclonedx+json',
    'application/vnd.in-toto+json',
  ],
  'application/vnd.cncf.openpolicyagent.config.v1+json': [
    'application/vnd.cncf.openpolicyagent.policy.layer.v1+rego', 'application/vnd.cncf.openpolicyagent.data.layer.v1+json',
  ],
};
