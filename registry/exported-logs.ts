/**
 * `GET /exportedlogs/<file>`: exported action logs kept in a LocalStorage location, which has no
 * signed URLs (Quay's endpoints/web.py route, like it without auth: the random file key in the
 * name is the secret). The file is found through its `logexport` row, so only export results are
 * served, from the location they were written to, until their retention (EXPORT_ACTION_LOGS_SECONDS,
 * as a signed URL would expire). 404 when no location is LocalStorage.
 */
import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../shared/storage/errors.ts';
import { apiErrors } from './errors.ts';

const FILE_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Registers the download route. */
export async function registerExportedLogsRoute(app: FastifyInstance): Promise<void> {
  app.get('/exportedlogs/:file', async (request, reply) => {
    const { config, db, storage } = app.deps;
    const hasLocal = Object.values(config.quay.DISTRIBUTED_STORAGE_CONFIG).some(([driver]) => driver === 'LocalStorage');
    const file = (request.params as { file: string }).file;
    if (!hasLocal || !FILE_NAME.test(file)) throw apiErrors.notFound();
    const key = `${config.quay.EXPORT_ACTION_LOGS_STORAGE_PATH}/${file}`;
    const { rows } = await db.query<{ location: string }>(
      `SELECT location FROM logexport
       WHERE result_key = $1 AND status = 'success' AND location IS NOT NULL AND removed IS NULL AND expires_at > now()`, [key]);
    const location = rows[0]?.location;
    if (location === undefined || !storage.locations.includes(location)) throw apiErrors.notFound();
    const store = storage.store(location);
    try {
      const stat = await store.stat(key);
      const stream = await store.get(key);
      return reply.status(200).header('Content-Type', 'application/json').header('Content-Length', String(stat.size)).send(stream);
    } catch (error) {
      if (error instanceof NotFoundError) throw apiErrors.notFound();
      throw error;
    }
  });
}
