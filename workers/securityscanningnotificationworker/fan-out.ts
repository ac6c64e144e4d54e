/**
 * One Clair notification page turned into `vulnerability_found` events (Quay's
 * process_notification_page, reference §3.4), in two indexed queries whatever the page holds:
 * the manifests with the page's digests in repositories that have an enabled `vulnerability_found`
 * notification (with their alive tags, at most 100, and the notifications' event configs), then
 * the outbox rows, once per (notification, repository, manifest, vulnerability) for each
 * notification whose minimum severity the vulnerability meets. Quay's N² fan-out
 * (the manifest joined once per notification, each row spawning to all of them) does not exist.
 */
import { enqueueRepositoryEvents, eventIdFor, type RepositoryEventOccurrence, type SiteUrls } from '../../shared/db/notifications.ts';
import { NOTIFICATION_FAILURE_LIMIT } from '../../shared/db/notifications.ts';
import type { Queryable } from '../../shared/db/pool.ts';
import { RepositoryState } from '../../shared/db/repositories.ts';
import { meetsThreshold, severityIndex, SEVERITIES, thresholdOf } from '../../shared/notifications/severity.ts';
import type { ClairNotification } from './clair.ts';

/** Tags named per event at most (Quay's limit). */
export const MAX_TAGS = 100;

interface AffectedRow {
  repository_id: number;
  digest: string;
  tags: string[];
  configs: Record<string, unknown>[];
}

/** The manifests with `digests` that some repository's enabled vulnerability_found notification watches. */
async function affectedManifests(db: Queryable, digests: readonly string[], nowMs: number): Promise<AffectedRow[]> {
  const { rows } = await db.query<AffectedRow>(
    `SELECT m.repository_id, m.digest,
            ARRAY(SELECT t.name FROM tag t
                  WHERE t.manifest_id = m.id AND NOT t.hidden AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > $2)
                  ORDER BY t.name LIMIT ${MAX_TAGS}) AS tags,
            n.configs
     FROM manifest m
     JOIN repository r ON r.id = m.repository_id AND r.state <> ${RepositoryState.MARKED_FOR_DELETION}
     CROSS JOIN LATERAL (
       SELECT array_agg(rn.event_config_json) AS configs FROM repositorynotification rn
       WHERE rn.repository_id = m.repository_id AND rn.event = 'vulnerability_found' AND rn.number_of_failures < $3) n
     WHERE m.digest = ANY($1::text[]) AND n.configs IS NOT NULL`,
    [digests, nowMs, NOTIFICATION_FAILURE_LIMIT]);
  return rows;
}

/** Quay's event_data `vulnerability` of a Clair entry. */
export function vulnerabilityData(entry: ClairNotification): Record<string, unknown> {
  const v = entry.vulnerability;
  return {
    id: v.name,
    description: v.description ?? '',
    link: v.links ?? '',
    priority: SEVERITIES[severityIndex(v.normalized_severity)],
    has_fix: Boolean(v.fixed_in_version),
    ...(v.fixed_in_version ? { fixed_by: v.fixed_in_version } : {}),
    ...(v.package?.name ? { package: v.package.name } : {}),
  };
}

// The repository's most permissive minimum across its notifications (no minimum: everything).
function repositoryThreshold(configs: readonly Record<string, unknown>[]): number {
  return Math.max(...configs.map((config) => thresholdOf(config ?? {}) ?? SEVERITIES.length - 1));
}

/** What one page produced. */
export interface PageOutcome {
  /** Entries with reason `added`. */
  readonly added: number;
  /** (repository, manifest, vulnerability) triples that met a threshold and had tags. */
  readonly events: number;
  /** Notification jobs written to the outbox. */
  readonly jobs: number;
}

/**
 * Writes the events of one page in `tx`. Event ids derive from (Clair notification, repository,
 * manifest, vulnerability), so a page processed twice (a retry, a worker killed before its
 * checkpoint) produces the same jobs, which the outbox and the delivery record make no-ops.
 */
export async function fanOutPage(
  tx: Queryable, notificationId: string, entries: readonly ClairNotification[], options: { site: SiteUrls; nowMs: number },
): Promise<PageOutcome> {
  const added = entries.filter((entry) => entry.reason === 'added');
  if (added.length === 0) return { added: 0, events: 0, jobs: 0 };
  const byDigest = new Map<string, ClairNotification[]>();
  for (const entry of added) {
    const list = byDigest.get(entry.manifest);
    if (list) list.push(entry);
    else byDigest.set(entry.manifest, [entry]);
  }
  const rows = await affectedManifests(tx, [...byDigest.keys()], options.nowMs);
  const seen = new Set<string>();
  const occurrences: RepositoryEventOccurrence[] = [];
  for (const row of rows) {
    // Untagged manifests are not notified (Quay).
    if (row.tags.length === 0) continue;
    const threshold = repositoryThreshold(row.configs);
    for (const entry of byDigest.get(row.digest) ?? []) {
      if (severityIndex(entry.vulnerability.normalized_severity) > threshold) continue;
      const key = `${row.repository_id}\u0000${row.digest}\u0000${entry.vulnerability.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      occurrences.push({
        repositoryId: row.repository_id,
        eventId: eventIdFor('secscanv4', notificationId, row.repository_id, row.digest, entry.vulnerability.name),
        eventData: { tags: row.tags, vulnerability: vulnerabilityData(entry) },
      });
    }
  }
  // Each notification gets only the vulnerabilities its own minimum lets through (the delivery
  // checks again, against the config as it is then).
  const jobs = await enqueueRepositoryEvents(tx, 'vulnerability_found', occurrences, {
    site: options.site,
    accepts: (eventConfig, occurrence) => meetsThreshold((occurrence.eventData.vulnerability as { priority: string }).priority, eventConfig),
  });
  return { added: added.length, events: occurrences.length, jobs: jobs.length };
}
