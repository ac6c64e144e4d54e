/**
 * Which image and artifact types the registry accepts (Quay's FEATURE_GENERAL_OCI_SUPPORT,
 * ALLOWED_OCI_ARTIFACT_TYPES and IGNORE_UNKNOWN_MEDIATYPES, seed FE-9/FE-10). Runnable images are
 * always accepted; anything else is an artifact whose type (its `artifactType`, else its config
 * media type) must be allowed, with only the layer types allowed for it.
 */
import { OciError } from '../errors.ts';
import { DEFAULT_ARTIFACT_TYPES, IMAGE_CONFIG_TYPES, IMAGE_LAYER_TYPES, OCI_EMPTY } from './media-types.ts';
import type { ParsedManifest } from './parse.ts';

/** The three config keys that decide the policy. */
export interface ArtifactPolicyConfig {
  readonly FEATURE_GENERAL_OCI_SUPPORT: boolean;
  readonly ALLOWED_OCI_ARTIFACT_TYPES?: Record<string, string[]> | undefined;
  readonly IGNORE_UNKNOWN_MEDIATYPES: boolean;
}

/** A compiled policy: call `check` on every manifest before storing it. */
export interface ArtifactPolicy {
  /** Throws OciError MANIFEST_INVALID when the manifest's config or layer types are not allowed. */
  check(manifest: ParsedManifest): void;
}

/** Builds the policy once from the config (at app start). */
export function artifactPolicy(config: ArtifactPolicyConfig): ArtifactPolicy {
  const artifacts = config.FEATURE_GENERAL_OCI_SUPPORT ? (config.ALLOWED_OCI_ARTIFACT_TYPES ?? DEFAULT_ARTIFACT_TYPES) : {};
  const allowedLayers = new Map(Object.entries(artifacts).map(([type, layers]) => [type, new Set(layers)]));
  const imageLayers = new Set(IMAGE_LAYER_TYPES);
  return {
    check(manifest) {
      if (config.IGNORE_UNKNOWN_MEDIATYPES || !manifest.config) return;
      const configType = manifest.config.mediaType;
      const declared = manifest.artifactType !== configType ? manifest.artifactType : undefined;
      if (IMAGE_CONFIG_TYPES.includes(configType) && declared === undefined) {
        // An image, or an artifact riding on an image config (cosign): image layers, or that config's artifact layers.
        const extra = allowedLayers.get(configType);
        requireLayers(manifest, (type) => imageLayers.has(type) || (extra?.has(type) ?? false), configType);
        return;
      }
      const type = declared ?? configType;
      const layers = allowedLayers.get(type);
      if (!layers) {
        throw new OciError('MANIFEST_INVALID', config.FEATURE_GENERAL_OCI_SUPPORT
          ? `artifact type ${type} is not allowed (ALLOWED_OCI_ARTIFACT_TYPES)`
          : 'OCI artifacts are not enabled (FEATURE_GENERAL_OCI_SUPPORT)', { artifactType: type });
      }
      requireLayers(manifest, (t) => layers.has(t) || t === OCI_EMPTY, type);
    },
  };
}

function requireLayers(manifest: ParsedManifest, allowed: (mediaType: string) => boolean, type: string): void {
  const bad = manifest.layers.find((layer) => !allowed(layer.mediaType));
  if (bad) throw new OciError('MANIFEST_INVALID', `layer media type ${bad.mediaType} is not allowed for ${type}`, { digest: bad.digest, mediaType: bad.mediaType });
}
