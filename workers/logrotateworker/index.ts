/** The logrotateworker: archives action logs older than ACTION_LOG_ROTATION_THRESHOLD to storage, then deletes them. */
import { actionlogrotation, type ActionLogRotationPayload } from '../../queues/actionlogrotation.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { handleRotation, type RotationServices } from './handler.ts';

/** The worker declaration (listed in workers/index.ts). */
export const logrotateworker = defineWorker<ActionLogRotationPayload, RotationServices>({
  name: 'logrotateworker',
  queue: actionlogrotation,
  // One rotation at a time registry-wide (a Postgres advisory lock).
  concurrency: 1,
  schedule: (config) => [{ id: 'actionlogrotation-tick', everySeconds: config.quay.ACTION_LOG_ROTATION_FREQUENCY, payload: { v: 1 } }],
  gate: (config) => {
    const q = config.quay;
    if (!q.FEATURE_ACTION_LOG_ROTATION) return { enabled: false, reason: 'FEATURE_ACTION_LOG_ROTATION is false: action logs are kept in the database' };
    if (!q.ACTION_LOG_ARCHIVE_LOCATION || !q.ACTION_LOG_ARCHIVE_PATH) {
      return { enabled: false, reason: 'ACTION_LOG_ARCHIVE_LOCATION and ACTION_LOG_ARCHIVE_PATH must both be set for log rotation' };
    }
    if (!(q.ACTION_LOG_ARCHIVE_LOCATION in q.DISTRIBUTED_STORAGE_CONFIG)) {
      return { enabled: false, reason: `ACTION_LOG_ARCHIVE_LOCATION "${q.ACTION_LOG_ARCHIVE_LOCATION}" is not a location of DISTRIBUTED_STORAGE_CONFIG` };
    }
    if (q.LOGS_MODEL !== 'database') return { enabled: false, reason: `LOGS_MODEL is ${q.LOGS_MODEL}: Method not implemented (quayfleet rotates only the database logs model)` };
    return { enabled: true, reason: 'FEATURE_ACTION_LOG_ROTATION is true' };
  },
  handler: handleRotation,
});

export default logrotateworker;
