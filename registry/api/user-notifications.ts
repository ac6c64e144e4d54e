/**
 * The signed-in user's in-app notifications (Quay's endpoints/api/user.py UserNotificationList):
 * rows the quay_notification method stored for the user, or for an organization the user
 * administers. `GET /user/notifications?page=&limit=` answers `{notifications, additional}`;
 * `GET|PUT /user/notifications/{uuid}` reads or dismisses one.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Queryable } from '../../shared/db/pool.ts';
import { apiErrors } from '../errors.ts';
import { parseInput, requireUser } from './common.ts';
import { formatDate } from './views.ts';

interface NotificationRow {
  uuid: string; kind: string; created: Date; metadata_json: Record<string, unknown>; dismissed: boolean; organization: string | null;
}

// The user's own rows, and those of organizations where the user is on an admin team.
const VISIBLE = `SELECT n.uuid::text AS uuid, n.kind, n.created, n.metadata_json, n.dismissed,
    CASE WHEN t.organization THEN t.username END AS organization
  FROM notification n JOIN namespace t ON t.id = n.target_id
  WHERE (n.target_id = $1 OR EXISTS (SELECT 1 FROM team tm JOIN teammember m ON m.team_id = tm.id
                                      WHERE tm.organization_id = n.target_id AND tm.role = 'admin' AND m.user_id = $1))`;

function view(row: NotificationRow): Record<string, unknown> {
  return { id: row.uuid, organization: row.organization, kind: row.kind, created: formatDate(row.created.getTime()), metadata: row.metadata_json, dismissed: row.dismissed };
}

async function findVisible(db: Queryable, userId: number, uuid: string): Promise<NotificationRow | undefined> {
  if (!z.uuid().safeParse(uuid).success) return undefined;
  const { rows: [row] } = await db.query<NotificationRow>(`${VISIBLE} AND n.uuid = $2`, [userId, uuid]);
  return row;
}

const listQuery = z.object({
  page: z.coerce.number().int().min(0).default(1).transform((p) => Math.max(p, 1)),
  limit: z.coerce.number().int().min(1).max(100).default(5),
});

/** Registers the user notification routes. */
export async function registerUserNotificationRoutes(app: FastifyInstance): Promise<void> {
  app.get('/user/notifications', async (request) => {
    const user = await requireUser(request);
    const { page, limit } = parseInput(listQuery, request.query, 'query');
    const { rows } = await app.deps.db.query<NotificationRow>(
      `${VISIBLE} ORDER BY n.created DESC, n.id DESC OFFSET $2 LIMIT $3`, [user.id, (page - 1) * limit, limit + 1]);
    return { notifications: rows.slice(0, limit).map(view), additional: rows.length > limit };
  });

  app.get('/user/notifications/:uuid', async (request) => {
    const user = await requireUser(request);
    const { uuid } = parseInput(z.object({ uuid: z.string() }), request.params);
    const row = await findVisible(app.deps.db, user.id, uuid);
    if (!row) throw apiErrors.notFound();
    return view(row);
  });

  app.put('/user/notifications/:uuid', async (request) => {
    const user = await requireUser(request);
    const { uuid } = parseInput(z.object({ uuid: z.string() }), request.params);
    const { dismissed } = parseInput(z.object({ dismissed: z.boolean() }), request.body, 'notification');
    const row = await findVisible(app.deps.db, user.id, uuid);
    if (!row) throw apiErrors.notFound();
    await app.deps.db.query(`UPDATE notification SET dismissed = $2 WHERE uuid = $1`, [uuid, dismissed]);
    return view({ ...row, dismissed });
  });
}
