/**
 * The one registry of error codes the front end answers with. OCI distribution errors render as
 * `{"errors":[{"code","message","detail"}]}`; Quay API errors render in Quay's API shape
 * (`{"error_message","error_type","detail","status","title","type"}`). Routes throw these; the
 * error handler in app.ts renders them. Anything else becomes a logged 500 (a bug to fix).
 */

/** OCI distribution spec error codes and their HTTP statuses. */
export const OCI_ERRORS = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 404, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 415, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  UNKNOWN: { status: 500, message: 'unknown error' },
} as const;

export type OciErrorCode = keyof typeof OCI_ERRORS;

/** An OCI distribution error. `status` overrides the code's default where the spec allows (e.g. 416). */
export class OciError extends Error {
  readonly status: number;
  constructor(
    readonly code: OciErrorCode,
    message?: string,
    readonly detail?: unknown,
    options: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(message ?? OCI_ERRORS[code].message);
    this.name = 'OciError';
    this.status = options.status ?? OCI_ERRORS[code].status;
    this.headers = options.headers ?? {};
  }
  readonly headers: Record<string, string>;
}

/** A Quay API (/api/v1) error in Quay's JSON shape. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorType: string,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Quay's API error helpers with its titles and types. */
export const apiErrors = {
  badRequest: (message: string, detail?: unknown) => new ApiError(400, 'invalid_request', message, detail),
  unauthorized: (message = 'Unauthorized') => new ApiError(401, 'invalid_token', message),
  forbidden: (message = 'Unauthorized') => new ApiError(403, 'insufficient_scope', message),
  notFound: (message = 'Not Found') => new ApiError(404, 'not_found', message),
  conflict: (message: string) => new ApiError(409, 'conflict', message),
  /** Quay's answer when the configured logs model cannot serve a lookup or export (Splunk: LOG-5). */
  notImplemented: (message = 'Method not implemented') => new ApiError(501, 'not_implemented', message),
  readOnly: () => new ApiError(503, 'read_only', 'System is currently read-only. Pulls will succeed but all write operations are currently suspended.'),
};
