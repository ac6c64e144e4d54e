/**
 * SwiftStorage's parameters (Quay's, plus a few of quayfleet's marked †) and their translation into
 * the settings the Swift driver runs with, apart from the driver so that validating a configuration
 * never loads it. Credentials come from the parameters, else from `REGISTRY_STORAGE_SWIFT_USER` /
 * `REGISTRY_STORAGE_SWIFT_PASSWORD` (the OpenShift operator's secret keys).
 */
import { z } from 'zod';

const MiB = 1024 * 1024;

/** `3`, `"3"`, `"v3"` or `"3.0"`: Quay's configs and python-swiftclient accept all of them. */
const authVersion = z.union([z.number(), z.string()])
  .transform((v) => String(v).trim().replace(/^v/i, '').replace(/\.0$/, ''))
  .pipe(z.enum(['1', '2', '3'], { message: 'must be 1 or 3' }))
  // Keystone's v2.0 API was removed in OpenStack Queens (2018): no cloud still answers it.
  .refine((v) => v !== '2', 'Keystone v2.0 is retired; use auth_version 3 (or 1 for TempAuth/RadosGW)');

/**
 * Quay's `os_options` (python-swiftclient's names). `tenant_*` are Keystone v2 names for the
 * project; both spellings are accepted.
 */
const osOptionsSchema = z.object({
  tenant_id: z.string().min(1).optional(),
  tenant_name: z.string().min(1).optional(),
  project_id: z.string().min(1).optional(),
  project_name: z.string().min(1).optional(),
  user_id: z.string().min(1).optional(),
  user_domain_name: z.string().min(1).optional(),
  user_domain_id: z.string().min(1).optional(),
  project_domain_name: z.string().min(1).optional(),
  project_domain_id: z.string().min(1).optional(),
  region_name: z.string().min(1).optional(),
  /** Catalog service type, default `object-store`. */
  service_type: z.string().min(1).optional(),
  /** Catalog interface: `public` (default), `internal`, `admin`, or the v2 spellings `publicURL`, ... */
  endpoint_type: z.string().min(1).optional(),
  /** Skips the catalog: the storage URL to use with the token. */
  object_storage_url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).optional(),
}).passthrough();

/** Quay's SwiftStorage parameters. */
export const swiftParamsSchema = z.object({
  swift_container: z.string().min(1).refine((c) => !c.includes('/'), 'a container name has no /'),
  storage_path: z.string().optional(),
  auth_url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }),
  /** python-swiftclient's default, as in Quay: 1. */
  auth_version: authVersion.default('1'),
  swift_user: z.string().min(1).optional(),
  swift_password: z.string().min(1).optional(),
  os_options: osOptionsSchema.optional(),
  /** PEM file of the CA that signed the Swift and Keystone certificates. */
  ca_cert_path: z.string().min(1).optional(),
  /** The account's temp URL key: signed read URLs (direct download) need it; set on the account when missing. */
  temp_url_key: z.string().min(1).optional(),
  /** † Large objects: static manifests (`slo`, default) or dynamic ones (`dlo`, for clusters without SLO). */
  large_object: z.enum(['slo', 'dlo']).default('slo'),
  /** † Objects with a known length above this, and every object of unknown length, are written as segments. */
  segment_size_bytes: z.number().int().min(MiB).max(5 * 1024 * MiB).optional(),
  /** † Objects per listing request (Swift's maximum by default); tests use a small page. */
  list_page_size: z.number().int().min(1).max(10_000).optional(),
});
export type SwiftParams = z.infer<typeof swiftParamsSchema>;

/** How the driver obtains a token and a storage URL. */
export type SwiftAuthSettings =
  | { readonly version: '1'; readonly authUrl: string; readonly user: string; readonly key: string }
  | {
    readonly version: '3';
    readonly authUrl: string;
    /** A user name (with its domain) or a user id. */
    readonly user: { readonly name?: string; readonly id?: string; readonly domain?: { readonly name?: string; readonly id?: string } };
    readonly password: string;
    /** The project the token is scoped to; unscoped tokens carry no catalog, so one is required unless `storageUrl` is given. */
    readonly project?: { readonly name?: string; readonly id?: string; readonly domain?: { readonly name?: string; readonly id?: string } };
    readonly region?: string;
    readonly serviceType: string;
    readonly interface: 'public' | 'internal' | 'admin';
  };

/** Everything the Swift driver needs. */
export interface SwiftSettings {
  readonly container: string;
  readonly storagePath?: string;
  readonly auth: SwiftAuthSettings;
  /** A storage URL that overrides the one the auth service returns. */
  readonly storageUrl?: string;
  readonly caCertPath?: string;
  readonly tempUrlKey?: string;
  readonly largeObject: 'slo' | 'dlo';
  readonly segmentBytes: number;
  readonly listPageSize: number;
}

/** Quay's largest Swift segment (`_MAXIMUM_SEGMENT_SIZE` in storage/swift.py). */
export const DEFAULT_SEGMENT_BYTES = 200_000_000;

function domainOf(name: string | undefined, id: string | undefined): { name?: string; id?: string } | undefined {
  if (id) return { id };
  if (name) return { name };
  return undefined;
}

function interfaceOf(endpointType: string | undefined): 'public' | 'internal' | 'admin' {
  const value = (endpointType ?? 'public').replace(/URL$/, '');
  if (value === 'public' || value === 'internal' || value === 'admin') return value;
  throw new Error(`os_options.endpoint_type must be public, internal or admin (or publicURL, internalURL, adminURL)`);
}

/** Settings of a `SwiftStorage` location; throws (with the parameter's name) when credentials are missing. */
export function swiftSettings(params: SwiftParams, env: NodeJS.ProcessEnv): SwiftSettings {
  const user = params.swift_user ?? env.REGISTRY_STORAGE_SWIFT_USER;
  const password = params.swift_password ?? env.REGISTRY_STORAGE_SWIFT_PASSWORD;
  const os = params.os_options ?? {};
  if (!password) throw new Error('needs swift_password (or REGISTRY_STORAGE_SWIFT_PASSWORD)');
  if (!user && !(params.auth_version === '3' && os.user_id)) throw new Error('needs swift_user (or REGISTRY_STORAGE_SWIFT_USER)');
  const base = {
    container: params.swift_container,
    storagePath: params.storage_path,
    storageUrl: os.object_storage_url,
    caCertPath: params.ca_cert_path,
    tempUrlKey: params.temp_url_key,
    largeObject: params.large_object,
    segmentBytes: params.segment_size_bytes ?? DEFAULT_SEGMENT_BYTES,
    listPageSize: params.list_page_size ?? 10_000,
  };
  if (params.auth_version === '1') {
    return { ...base, auth: { version: '1', authUrl: params.auth_url, user: user!, key: password } };
  }
  const projectId = os.project_id ?? os.tenant_id;
  const projectName = os.project_name ?? os.tenant_name;
  if (!projectId && !projectName && !os.object_storage_url) {
    throw new Error('Keystone v3 needs os_options.project_name or project_id (tenant_name/tenant_id): an unscoped token has no service catalog');
  }
  const userDomain = domainOf(os.user_domain_name, os.user_domain_id);
  return {
    ...base,
    auth: {
      version: '3',
      authUrl: params.auth_url,
      user: os.user_id ? { id: os.user_id } : { name: user, domain: userDomain ?? { id: 'default' } },
      password,
      project: projectId || projectName ? {
        ...(projectId ? { id: projectId } : { name: projectName }),
        // A project named (not id'd) needs its domain: the project's, else the user's, else Keystone's default.
        ...(projectId ? {} : { domain: domainOf(os.project_domain_name, os.project_domain_id) ?? userDomain ?? { id: 'default' } }),
      } : undefined,
      region: os.region_name,
      serviceType: os.service_type ?? 'object-store',
      interface: interfaceOf(os.endpoint_type),
    },
  };
}
