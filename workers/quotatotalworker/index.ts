/**
 * The quota workers (Quay's quotatotalworker and quotaregistrysizeworker): namespace backfills and
 * the periodic quota check on `quotatotal`, the on-demand registry total on `quotaregistrysize`.
 * Both are listed in workers/index.ts; see README.md.
 */
import { quotaregistrysize, type QuotaRegistrySizePayload } from '../../queues/quotaregistrysize.ts';
import { quotatotal, type QuotaTotalPayload } from '../../queues/quotatotal.ts';
import { quotaSettings } from '../../shared/db/quota/settings.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { BACKFILL_SCHEDULE, handleQuotaTotal, NOTIFICATION_SCHEDULE, type QuotaServices } from './handlers.ts';
import { handleRegistrySize, REGISTRY_SIZE_SCHEDULE } from './registry-size.ts';

/** Backfill and quota checks (gate: FEATURE_QUOTA_MANAGEMENT and QUOTA_BACKFILL, as Quay's worker). */
export const quotatotalworker = defineWorker<QuotaTotalPayload, QuotaServices>({
  name: 'quotatotalworker',
  queue: quotatotal,
  // Namespaces serialize on their own quota lock; different namespaces run side by side.
  concurrency: 4,
  schedule: (config) => {
    const settings = quotaSettings(config);
    return [
      { id: BACKFILL_SCHEDULE, everySeconds: settings.backfillPollS, payload: { v: 1 } },
      { id: NOTIFICATION_SCHEDULE, everySeconds: settings.notificationPollS, payload: { v: 1 } },
    ];
  },
  gate: (config) => {
    const settings = quotaSettings(config);
    if (!settings.enabled) return { enabled: false, reason: 'FEATURE_QUOTA_MANAGEMENT is false: no quota totals are kept' };
    if (!settings.backfill) return { enabled: false, reason: 'QUOTA_BACKFILL is false: namespaces without totals stay "Backfill Queued"' };
    return { enabled: true, reason: 'FEATURE_QUOTA_MANAGEMENT and QUOTA_BACKFILL are true' };
  },
  handler: handleQuotaTotal,
});

/** The registry total on request (gate: FEATURE_QUOTA_MANAGEMENT). */
export const quotaregistrysizeworker = defineWorker<QuotaRegistrySizePayload, QuotaServices>({
  name: 'quotaregistrysizeworker',
  queue: quotaregistrysize,
  // One computation at a time registry-wide (an advisory lock); one job at a time per process.
  concurrency: 1,
  // The poll picks up a request whose job was lost (Redis flushed) or refused as busy.
  schedule: (config) => [{ id: REGISTRY_SIZE_SCHEDULE, everySeconds: quotaSettings(config).registrySizePollS, payload: { v: 1 } }],
  gate: (config) => (quotaSettings(config).enabled
    ? { enabled: true, reason: 'FEATURE_QUOTA_MANAGEMENT is true' }
    : { enabled: false, reason: 'FEATURE_QUOTA_MANAGEMENT is false: the registry total is not computed' }),
  handler: handleRegistrySize,
});

export default quotatotalworker;
