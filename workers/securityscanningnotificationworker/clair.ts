/**
 * Clair v4's notifier API, as Quay calls it (reference §3.3): GET a notification page, DELETE a
 * handled notification. Every request carries Quay's PSK token (HS256, `iss: "quay"`, five
 * minutes) when `SECURITY_SCANNER_V4_PSK` is set; responses are validated, and a response that
 * does not match is a retryable failure, as in Quay.
 */
import { SignJWT } from 'jose';
import { z } from 'zod';

/** Clair's page size; Quay sends none and gets Clair's default, 500. */
export const CLAIR_PAGE_SIZE = 500;
/** Quay's timeout for matcher and notifier calls. */
export const CLAIR_TIMEOUT_MS = 30_000;

const vulnerability = z.looseObject({
  name: z.string(),
  description: z.string().nullish(),
  links: z.string().nullish(),
  fixed_in_version: z.string().nullish(),
  normalized_severity: z.string().nullish(),
  package: z.looseObject({ name: z.string().nullish() }).nullish(),
});

const notificationEntry = z.looseObject({
  id: z.string(),
  manifest: z.string(),
  reason: z.string(),
  vulnerability,
});

/** One entry of a Clair notification page. */
export type ClairNotification = z.output<typeof notificationEntry>;

const pageSchema = z.looseObject({
  page: z.looseObject({ size: z.number().int().nonnegative(), next: z.string().nullish() }),
  notifications: z.array(notificationEntry),
});

/** A page: its entries, and the cursor of the next page (absent on the last one). */
export interface ClairPage {
  readonly notifications: readonly ClairNotification[];
  readonly next: string | undefined;
}

/** A Clair call that failed in a way a retry may fix (connection, non-2xx, bad body). */
export class ClairRequestError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClairRequestError';
  }
}

/** How to reach Clair: `SECURITY_SCANNER_V4_ENDPOINT` and `SECURITY_SCANNER_V4_PSK` (base64). */
export interface ClairEndpoint {
  readonly endpoint: string;
  readonly psk: string | undefined;
}

async function authorization(psk: string | undefined): Promise<Record<string, string>> {
  if (!psk) return {};
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuer('quay')
    .setIssuedAt().setNotBefore('0s').setExpirationTime('5m').sign(Buffer.from(psk, 'base64'));
  return { Authorization: `Bearer ${token}` };
}

function notificationUrl(clair: ClairEndpoint, id: string): URL {
  return new URL(`notifier/api/v1/notification/${encodeURIComponent(id)}`, clair.endpoint.endsWith('/') ? clair.endpoint : `${clair.endpoint}/`);
}

async function call(clair: ClairEndpoint, method: 'GET' | 'DELETE', url: URL, signal?: AbortSignal): Promise<Response> {
  const timeout = AbortSignal.timeout(CLAIR_TIMEOUT_MS);
  try {
    return await fetch(url, { method, headers: await authorization(clair.psk), signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  } catch (error) {
    throw new ClairRequestError(`${method} ${url.pathname}: ${(error as Error).message}`, { cause: error });
  }
}

/** One page of notification `id` from cursor `next`; undefined when Clair does not know the id (404). */
export async function fetchNotificationPage(clair: ClairEndpoint, id: string, next: string | undefined, signal?: AbortSignal): Promise<ClairPage | undefined> {
  const url = notificationUrl(clair, id);
  url.searchParams.set('page_size', String(CLAIR_PAGE_SIZE));
  if (next) url.searchParams.set('next', next);
  const response = await call(clair, 'GET', url, signal);
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new ClairRequestError(`GET ${url.pathname}: Clair answered ${response.status}`);
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch (error) {
    throw new ClairRequestError(`GET ${url.pathname}: body is not JSON`, { cause: error });
  }
  const parsed = pageSchema.safeParse(body);
  if (!parsed.success) throw new ClairRequestError(`GET ${url.pathname}: unexpected page shape: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  return { notifications: parsed.data.notifications, next: parsed.data.page.next ?? undefined };
}

/** Marks notification `id` handled (a 404 counts as done); throws ClairRequestError otherwise. */
export async function deleteNotification(clair: ClairEndpoint, id: string, signal?: AbortSignal): Promise<void> {
  const response = await call(clair, 'DELETE', notificationUrl(clair, id), signal);
  await response.body?.cancel();
  if (!response.ok && response.status !== 404) throw new ClairRequestError(`DELETE notification ${id}: Clair answered ${response.status}`);
}
