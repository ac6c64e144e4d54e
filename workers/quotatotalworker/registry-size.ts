/**
 * The `quotaregistrysize` job: run the queued registry-total computation, if any. A superuser's
 * request enqueues one job (dedupe id `quotaregistrysize`); the poll schedule runs the same
 * handler, which finds nothing queued and returns, or picks up a request whose job was lost.
 */
import type { QuotaRegistrySizePayload } from '../../queues/quotaregistrysize.ts';
import { bindQuotaGauges } from '../../shared/db/quota/metrics.ts';
import { computeRegistrySize } from '../../shared/db/quota/registry-size.ts';
import { quotaSettings } from '../../shared/db/quota/settings.ts';
import { DeferError } from '../../shared/runtime/outcomes.ts';
import type { JobContext } from '../../shared/runtime/worker.ts';
import type { QuotaServices } from './handlers.ts';

/** The poll's schedule id. */
export const REGISTRY_SIZE_SCHEDULE = 'quota-registry-size-poll';

/** How long a request job waits when another computation is running. */
export const BUSY_DELAY_MS = 10_000;

/** Handles one `quotaregistrysize` job. */
export async function handleRegistrySize(_payload: QuotaRegistrySizePayload, ctx: JobContext<QuotaServices>): Promise<void> {
  bindQuotaGauges(ctx.db, quotaSettings(ctx.config));
  const result = await computeRegistrySize(ctx.db);
  // A request job that met a running computation waits for it (the request may have come after
  // that computation read the blobs); a poll tick just lets the next tick look again.
  if (result.outcome === 'busy' && ctx.job.scheduleId === undefined) throw new DeferError(BUSY_DELAY_MS, 'another registry size computation is running');
  if (result.outcome === 'computed') ctx.log.info({ sizeBytes: result.sizeBytes }, 'registry size computed');
}
