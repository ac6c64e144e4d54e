/** The securityscanningnotificationworker: fans Clair v4 notifications out as vulnerability_found events (queue `secscanv4`). */
import { secscanv4, type SecScanV4Payload } from '../../queues/secscanv4.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { handleSecScanNotification, type SecScanCheckpoint, type SecScanServices } from './handler.ts';

/** The worker declaration (listed in workers/index.ts). */
export const securityscanningnotificationworker = defineWorker<SecScanV4Payload, SecScanServices, SecScanCheckpoint>({
  name: 'securityscanningnotificationworker',
  queue: secscanv4,
  concurrency: 2,
  gate: (config) => {
    const q = config.quay;
    if (!q.FEATURE_SECURITY_SCANNER || !q.FEATURE_SECURITY_NOTIFICATIONS) {
      return { enabled: false, reason: 'FEATURE_SECURITY_SCANNER and FEATURE_SECURITY_NOTIFICATIONS must both be true' };
    }
    if (!q.SECURITY_SCANNER_V4_ENDPOINT) return { enabled: false, reason: 'SECURITY_SCANNER_V4_ENDPOINT is not set' };
    return { enabled: true, reason: 'FEATURE_SECURITY_SCANNER and FEATURE_SECURITY_NOTIFICATIONS are true' };
  },
  handler: handleSecScanNotification,
});

export default securityscanningnotificationworker;
