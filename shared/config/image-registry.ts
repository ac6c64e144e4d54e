/**
 * The OpenShift image-registry operator's resource (`configs.imageregistry.operator.openshift.io`)
 * as an alternative storage config: a `spec:` block in config.yaml, written as the resource has it
 * (`oc get configs.imageregistry.operator.openshift.io cluster -o yaml`; apiVersion, kind, metadata
 * and status may stay beside it and are ignored). `spec.storage` maps onto the same drivers as
 * DISTRIBUTED_STORAGE_CONFIG, as one location named `default` (reference §11.2, §19.3):
 *
 * | spec.storage | driver | notes |
 * |---|---|---|
 * | s3 | S3Storage | bucket generated when absent (Managed); regionEndpoint with an explicit port; virtualHostedStyle false; encrypt/keyID; trustedCA |
 * | gcs | GoogleCloudStorage | key from REGISTRY_STORAGE_GCS_KEYFILE; projectID, region and keyID used when creating the bucket; trustedCA refused (NODE_EXTRA_CA_CERTS instead) |
 * | azure | AzureStorage | cloudName picks the blob endpoint; key from REGISTRY_STORAGE_AZURE_ACCOUNTKEY; trustedCA refused (NODE_EXTRA_CA_CERTS instead) |
 * | swift | SwiftStorage | user and password from REGISTRY_STORAGE_SWIFT_USER / _PASSWORD; trustedCA (a quayfleet extension) for Keystone and Swift |
 * | pvc, emptyDir | LocalStorage | the volume mounted at QUAYFLEET_REGISTRY_VOLUME (default /registry) |
 *
 * Credentials come from the REGISTRY_STORAGE_* variables (the operator's secret
 * `image-registry-private-configuration-user`), which override the ambient ones (STOR-MG-3).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export const MANAGEMENT_STATES = ['Managed', 'Unmanaged', 'Removed'] as const;
export type ManagementState = (typeof MANAGEMENT_STATES)[number];

/** OPS-3: the ImageRegistryRemoved alert's text, exported with the condition metric. */
export const IMAGE_REGISTRY_REMOVED_MESSAGE = 'Image Registry has been removed. ImageStreamTags, BuildConfigs and DeploymentConfigs which reference ImageStreamTags may not work as expected. Please configure storage and update the config to Managed state by editing configs.imageregistry.operator.openshift.io.';

/** The Azure clouds the operator knows (STOR-AZ-3) and their blob endpoint suffix. */
export const AZURE_CLOUDS = {
  AzurePublicCloud: 'blob.core.windows.net',
  AzureUSGovernmentCloud: 'blob.core.usgovcloudapi.net',
  AzureChinaCloud: 'blob.core.chinacloudapi.cn',
  AzureGermanCloud: 'blob.core.cloudapi.de',
} as const;

const name = z.string().min(1);
// trustedCA is a field of OpenShift's s3 only; quayfleet takes it on every backend that makes TLS
// connections, applies it where its client takes a CA (s3, swift) and refuses it, saying what to do
// instead, where it does not (gcs, azure).
const trustedCA = z.strictObject({ name: name }).optional();
const s3Spec = z.strictObject({
  bucket: name.optional(),
  region: name.optional(),
  regionEndpoint: z.string().regex(/^https?:\/\/[^/\s]+\/?$/, { error: 'expected an http:// or https:// URL of the endpoint, e.g. https://rgw.example.com:443' }).optional(),
  virtualHostedStyle: z.boolean().default(false),
  encrypt: z.boolean().default(false),
  keyID: name.optional(),
  trustedCA,
  cloudFront: z.looseObject({}).optional(),
});
const gcsSpec = z.strictObject({ bucket: name.optional(), region: name.optional(), projectID: name.optional(), keyID: name.optional(), trustedCA });
const azureSpec = z.strictObject({
  accountName: name,
  container: name.optional(),
  cloudName: z.enum(Object.keys(AZURE_CLOUDS) as [keyof typeof AZURE_CLOUDS]).default('AzurePublicCloud'),
  trustedCA,
});
const swiftSpec = z.strictObject({
  authURL: name.optional(), authVersion: name.optional(), container: name.optional(), domain: name.optional(),
  domainID: name.optional(), tenant: name.optional(), tenantID: name.optional(), regionName: name.optional(), trustedCA,
});
const BACKENDS = ['s3', 'gcs', 'azure', 'swift', 'pvc', 'emptyDir'] as const;
export type StorageBackend = (typeof BACKENDS)[number];

const storageSpec = z.strictObject({
  // The operator writes "" before it has decided; treat it as unset.
  managementState: z.union([z.enum(['Managed', 'Unmanaged']), z.literal('').transform(() => undefined)]).optional(),
  s3: s3Spec.optional(),
  gcs: gcsSpec.optional(),
  azure: azureSpec.optional(),
  swift: swiftSpec.optional(),
  pvc: z.strictObject({ claim: z.string().optional() }).optional(),
  emptyDir: z.strictObject({}).optional(),
});

/** The part of the resource's spec quayfleet reads; other spec fields (routes, proxy, ...) are accepted and ignored. */
export const imageRegistrySpecSchema = z.looseObject({
  managementState: z.enum(MANAGEMENT_STATES).default('Managed'),
  replicas: z.number().int().min(0).optional(),
  storage: storageSpec.optional(),
});
export type ImageRegistrySpec = z.output<typeof imageRegistrySpecSchema>;

/** What the spec decided, as the rest of the fleet needs it. */
export interface ImageRegistrySettings {
  /** spec.managementState (Managed when there is no spec). */
  readonly managementState: ManagementState;
  /** spec.storage.managementState: Managed lets the fleet create the bucket; Unmanaged means no storage operation. */
  readonly storageManagementState: 'Managed' | 'Unmanaged';
  readonly replicas: number | undefined;
  /** The backend spec.storage names, when it names one. */
  readonly backend: StorageBackend | undefined;
  /** GC-17: blobs are pruned only when Managed; Removed and Unmanaged prune metadata only. */
  readonly pruneBlobs: boolean;
}

/** A problem with one spec field (path like `spec.storage.s3.regionEndpoint`). */
export interface SpecIssue {
  readonly key: string;
  readonly message: string;
}

/** What the mapping needs besides the spec. */
export interface SpecContext {
  readonly env: NodeJS.ProcessEnv;
  /** SERVER_HOSTNAME and DATABASE_SECRET_KEY/SECRET_KEY: a generated bucket name is derived from them, so every pod derives the same. */
  readonly serverHostname: string;
  readonly secret: string | undefined;
}

/** The result of mapping spec.storage: one location, or the issues that prevented it. */
export interface MappedStorage {
  readonly location?: [string, Record<string, unknown>];
  readonly errors: SpecIssue[];
  readonly warnings: SpecIssue[];
}

/** The location name spec.storage maps to (STOR-9: `default`). */
export const SPEC_LOCATION = 'default';
export const DEFAULT_REGISTRY_VOLUME = '/registry';
export const DEFAULT_TRUSTED_CA_DIR = '/etc/quayfleet/trusted-ca';

/** Settings of a parsed spec (or of no spec: Managed, storage Managed). */
export function imageRegistrySettings(spec: ImageRegistrySpec | undefined): ImageRegistrySettings {
  const managementState = spec?.managementState ?? 'Managed';
  const storage = spec?.storage;
  return {
    managementState,
    storageManagementState: storage?.managementState ?? 'Managed',
    replicas: spec?.replicas,
    backend: storage ? BACKENDS.find((b) => storage[b] !== undefined) : undefined,
    pruneBlobs: managementState === 'Managed',
  };
}

/** Maps spec.storage onto a `[driver, params]` location; errors and warnings name the spec field. */
export function mapStorageSpec(spec: ImageRegistrySpec, ctx: SpecContext): MappedStorage {
  const storage = spec.storage;
  const errors: SpecIssue[] = [];
  const warnings: SpecIssue[] = [];
  if (!storage) return { errors, warnings };
  const named = BACKENDS.filter((b) => storage[b] !== undefined);
  if (named.length !== 1) {
    errors.push({ key: 'spec.storage', message: named.length === 0
      ? `spec.storage must configure one of ${BACKENDS.join(', ')}`
      : `spec.storage must configure only one of ${BACKENDS.join(', ')} (found ${named.join(', ')})` });
    return { errors, warnings };
  }
  const managed = (storage.managementState ?? 'Managed') === 'Managed';
  const issues = { errors, warnings, managed, ctx };
  const backend = named[0]!;
  const location = backend === 's3' ? mapS3(storage.s3!, issues)
    : backend === 'gcs' ? mapGcs(storage.gcs!, issues)
      : backend === 'azure' ? mapAzure(storage.azure!, issues)
        : backend === 'swift' ? mapSwift(storage.swift!, issues)
          : mapVolume(backend, spec, issues);
  return { location: errors.length === 0 ? location : undefined, errors, warnings };
}

interface Issues {
  readonly errors: SpecIssue[];
  readonly warnings: SpecIssue[];
  readonly managed: boolean;
  readonly ctx: SpecContext;
}

const AWS_HOST = /(^|\.)amazonaws\.com(\.cn)?$/i;

function mapS3(s3: z.output<typeof s3Spec>, issues: Issues): [string, Record<string, unknown>] {
  const { env } = issues.ctx;
  const region = s3.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const params: Record<string, unknown> = { s3_bucket: bucketOf(s3.bucket, 's3', region, issues), s3_region: region, storage_path: '/docker/registry/v2' };
  if (s3.regionEndpoint) {
    const endpoint = s3.regionEndpoint.replace(/\/$/, '');
    const authority = endpoint.replace(/^https?:\/\//, '');
    // STOR-S3-3: a Rados Gateway signs with the port it serves on; an endpoint without one fails
    // with SignatureDoesNotMatch on some gateways. The URL as written is checked (URL parsing drops
    // a default port). AWS endpoints are exempt.
    if (!/:\d+$/.test(authority) && !AWS_HOST.test(authority)) {
      issues.errors.push({ key: 'spec.storage.s3.regionEndpoint', message: `spec.storage.s3.regionEndpoint ${endpoint} has no port: a Rados Gateway or other S3-compatible endpoint must give it explicitly, e.g. ${endpoint}:${endpoint.startsWith('https:') ? 443 : 80}` });
    }
    params.endpoint_url = endpoint;
  }
  if (s3.virtualHostedStyle) params.virtual_hosted_style = true;
  if (s3.encrypt) {
    params.server_side_encryption = s3.keyID ? 'aws:kms' : 'AES256';
    if (s3.keyID) params.sse_kms_key_id = s3.keyID;
  } else if (s3.keyID) {
    issues.warnings.push({ key: 'spec.storage.s3.keyID', message: 'spec.storage.s3.keyID is ignored because spec.storage.s3.encrypt is false' });
  }
  if (s3.trustedCA) params.ca_bundle_file = mountedTrustedCa('s3', s3.trustedCA.name, issues);
  if (s3.cloudFront) {
    issues.warnings.push({ key: 'spec.storage.s3.cloudFront', message: 'spec.storage.s3.cloudFront is not supported by quayfleet and is ignored: blobs are served from the bucket' });
  }
  // Only explicit REGISTRY_STORAGE_* keys are written into the location; without them the driver
  // falls back to AWS_ACCESS_KEY_ID (an ODF bucket claim's secret) and then the SDK's chain.
  if (env.REGISTRY_STORAGE_S3_ACCESSKEY && env.REGISTRY_STORAGE_S3_SECRETKEY) {
    params.s3_access_key = env.REGISTRY_STORAGE_S3_ACCESSKEY;
    params.s3_secret_key = env.REGISTRY_STORAGE_S3_SECRETKEY;
  }
  if (issues.managed) params.create_bucket = true;
  return ['S3Storage', params];
}

function mapGcs(gcs: z.output<typeof gcsSpec>, issues: Issues): [string, Record<string, unknown>] {
  const { env } = issues.ctx;
  const region = gcs.region ?? 'us';
  const params: Record<string, unknown> = { bucket_name: bucketOf(gcs.bucket, 'gcs', region, issues), storage_path: '/docker/registry/v2' };
  // STOR-GCS-5: the secret's key holds the credentials file's contents; it overrides the ambient
  // GOOGLE_APPLICATION_CREDENTIALS file.
  const keyfile = env.REGISTRY_STORAGE_GCS_KEYFILE ?? env.GOOGLE_APPLICATION_CREDENTIALS;
  if (!keyfile) {
    issues.errors.push({ key: 'spec.storage.gcs', message: 'spec.storage.gcs needs credentials: set REGISTRY_STORAGE_GCS_KEYFILE to the contents of a service-account key (or GOOGLE_APPLICATION_CREDENTIALS to its file)' });
  } else {
    params.keyfile = keyfile;
  }
  // The standard variable of Google's clients for an emulator (tests, air-gapped mirrors).
  if (env.STORAGE_EMULATOR_HOST) params.api_endpoint = /^https?:/.test(env.STORAGE_EMULATOR_HOST) ? env.STORAGE_EMULATOR_HOST : `http://${env.STORAGE_EMULATOR_HOST}`;
  if (gcs.projectID) params.project_id = gcs.projectID;
  if (gcs.trustedCA) unsupportedTrustedCa('gcs', gcs.trustedCA.name, issues);
  if (issues.managed) {
    params.create_bucket = true;
    params.location = region;
    if (gcs.keyID) params.kms_key_name = gcs.keyID;
  } else if (gcs.keyID) {
    issues.warnings.push({ key: 'spec.storage.gcs.keyID', message: 'spec.storage.gcs.keyID applies when quayfleet creates the bucket (storage managementState Managed); with Unmanaged set the key on the bucket itself' });
  }
  return ['GoogleCloudStorage', params];
}

function mapAzure(azure: z.output<typeof azureSpec>, issues: Issues): [string, Record<string, unknown>] {
  const { env } = issues.ctx;
  const container = azure.container ?? (issues.managed ? generatedName('image-registry', undefined, issues.ctx) : undefined);
  if (!container) issues.errors.push({ key: 'spec.storage.azure.container', message: 'spec.storage.azure.container is required when spec.storage.managementState is Unmanaged' });
  const params: Record<string, unknown> = {
    azure_account_name: azure.accountName,
    azure_container: container,
    // STOR-AZ-3: cloudName picks the endpoints; REGISTRY_STORAGE_AZURE_SERVICEURL (distribution's
    // `serviceurl`) points at a private endpoint or an emulator instead.
    endpoint_url: env.REGISTRY_STORAGE_AZURE_SERVICEURL ?? `https://${azure.accountName}.${AZURE_CLOUDS[azure.cloudName]}`,
    storage_path: '/docker/registry/v2',
  };
  const key = env.REGISTRY_STORAGE_AZURE_ACCOUNTKEY ?? env.AZURE_STORAGE_KEY;
  if (!key) issues.errors.push({ key: 'spec.storage.azure', message: 'spec.storage.azure needs the account key: set REGISTRY_STORAGE_AZURE_ACCOUNTKEY' });
  else params.azure_account_key = key;
  if (issues.managed) params.create_container = true;
  if (azure.trustedCA) unsupportedTrustedCa('azure', azure.trustedCA.name, issues);
  return ['AzureStorage', params];
}

function mapSwift(swift: z.output<typeof swiftSpec>, issues: Issues): [string, Record<string, unknown>] {
  const { env } = issues.ctx;
  for (const [field, value] of [['authURL', swift.authURL], ['container', swift.container]] as const) {
    if (!value) issues.errors.push({ key: `spec.storage.swift.${field}`, message: `spec.storage.swift.${field} is required` });
  }
  if (!env.REGISTRY_STORAGE_SWIFT_USER || !env.REGISTRY_STORAGE_SWIFT_PASSWORD) {
    issues.errors.push({ key: 'spec.storage.swift', message: 'spec.storage.swift needs REGISTRY_STORAGE_SWIFT_USER and REGISTRY_STORAGE_SWIFT_PASSWORD' });
  }
  // Quay's SwiftStorage parameters; os_options carries the Keystone v3 scope: the tenant is the
  // project, and the domain is both the user's and the project's (as the operator passes them).
  const osOptions = Object.fromEntries(Object.entries({
    project_name: swift.tenant, project_id: swift.tenantID,
    user_domain_name: swift.domain, project_domain_name: swift.domain, user_domain_id: swift.domainID, project_domain_id: swift.domainID,
    region_name: swift.regionName,
  }).filter(([, v]) => v !== undefined));
  return ['SwiftStorage', {
    // Keystone v3 unless the spec says otherwise (1: TempAuth, as RadosGW's Swift API speaks it).
    auth_url: swift.authURL, auth_version: swift.authVersion ?? '3', swift_container: swift.container,
    swift_user: env.REGISTRY_STORAGE_SWIFT_USER, swift_password: env.REGISTRY_STORAGE_SWIFT_PASSWORD,
    storage_path: '/docker/registry/v2', ...(Object.keys(osOptions).length > 0 ? { os_options: osOptions } : {}),
    // The Swift client trusts it for Keystone and for the object store alike.
    ...(swift.trustedCA ? { ca_cert_path: mountedTrustedCa('swift', swift.trustedCA.name, issues) } : {}),
  }];
}

function mapVolume(backend: 'pvc' | 'emptyDir', spec: ImageRegistrySpec, issues: Issues): [string, Record<string, unknown>] {
  const volume = issues.ctx.env.QUAYFLEET_REGISTRY_VOLUME || DEFAULT_REGISTRY_VOLUME;
  if (backend === 'emptyDir') {
    // STOR-ED-2: every pod has its own emptyDir, so a second replica would serve other blobs.
    if ((spec.replicas ?? 1) > 1) issues.errors.push({ key: 'spec.replicas', message: `spec.storage.emptyDir cannot be used with more than one replica (spec.replicas is ${spec.replicas}): images would be spread over pods and lost on restart; use pvc (ReadWriteMany) or object storage` });
    issues.warnings.push({ key: 'spec.storage.emptyDir', message: 'spec.storage.emptyDir is for non-production use only: all images are lost when the registry restarts' });
  } else if ((spec.replicas ?? 1) > 1) {
    issues.warnings.push({ key: 'spec.storage.pvc', message: `spec.storage.pvc.claim ${spec.storage?.pvc?.claim || 'image-registry-storage'} must be ReadWriteMany with ${spec.replicas} replicas (ReadWriteOnce supports one replica only)` });
  }
  return ['LocalStorage', { storage_path: volume }];
}

/** The mounted bundle of spec.storage.<backend>.trustedCA; an error when it is not mounted. */
function mountedTrustedCa(backend: 's3' | 'swift', configMap: string, issues: Issues): string {
  const file = trustedCaFile(configMap, issues.ctx.env);
  if (!fs.existsSync(file)) {
    issues.errors.push({ key: `spec.storage.${backend}.trustedCA.name`, message: `spec.storage.${backend}.trustedCA: the config map ${configMap} is not mounted: ${file} does not exist (mount its ca-bundle.crt under QUAYFLEET_TRUSTED_CA_DIR/${configMap}/)` });
  }
  return file;
}

/** trustedCA on a backend whose client takes no CA bundle of its own: refused, with what works instead. */
function unsupportedTrustedCa(backend: 'gcs' | 'azure', configMap: string, issues: Issues): void {
  const sdk = backend === 'gcs' ? 'the Google Cloud Storage client' : 'the Azure Blob client';
  issues.errors.push({
    key: `spec.storage.${backend}.trustedCA`,
    message: `spec.storage.${backend}.trustedCA cannot be applied: ${sdk} takes no CA bundle of its own (OpenShift's API has trustedCA for s3 only). `
      + `Trust the endpoint process-wide instead: mount the config map and set NODE_EXTRA_CA_CERTS=${trustedCaFile(configMap, issues.ctx.env)} in the pods, and remove trustedCA`,
  });
}

/** The bucket as given, or (Managed only) one generated the same way by every pod. */
function bucketOf(bucket: string | undefined, backend: 's3' | 'gcs', region: string, issues: Issues): string | undefined {
  if (bucket) return bucket;
  if (!issues.managed) {
    issues.errors.push({ key: `spec.storage.${backend}.bucket`, message: `spec.storage.${backend}.bucket is required when spec.storage.managementState is Unmanaged` });
    return undefined;
  }
  return generatedName('image-registry', region, issues.ctx);
}

/**
 * The operator generates `<infra>-image-registry-<region>-<random>` and writes it back into the
 * resource; quayfleet cannot write its config, so the suffix is a hash of SERVER_HOSTNAME and the
 * secret key: stable across pods and restarts, distinct between registries. Logged at boot and
 * shown by GET /api/v1/config; writing it into the spec pins it.
 */
function generatedName(base: string, region: string | undefined, ctx: SpecContext): string {
  const hash = createHash('sha256').update(`${ctx.serverHostname}\0${ctx.secret ?? ''}`).digest('hex').slice(0, 12);
  const cleanRegion = region?.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  return ['quayfleet', base, cleanRegion, hash].filter(Boolean).join('-').slice(0, 63);
}

/** trustedCA names a config map with key ca-bundle.crt; pods mount it under QUAYFLEET_TRUSTED_CA_DIR/<name>/. */
export function trustedCaFile(name: string, env: NodeJS.ProcessEnv): string {
  return path.join(env.QUAYFLEET_TRUSTED_CA_DIR || DEFAULT_TRUSTED_CA_DIR, name, 'ca-bundle.crt');
}
