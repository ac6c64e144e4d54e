/**
 * Vulnerability severities as Quay orders them (PRIORITY_LEVELS): the index is the old UI's
 * numeric `event_config.level`; the new shape is `event_config.vulnerability.priority` (a name).
 * Both are honoured: the most permissive of the two is a notification's minimum severity.
 */

/** Quay's severities, most severe first. */
export const SEVERITIES = ['Critical', 'High', 'Medium', 'Low', 'Negligible', 'Unknown'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The index of a severity name (case-insensitive); Unknown's for anything else. */
export function severityIndex(name: unknown): number {
  const i = SEVERITIES.findIndex((s) => typeof name === 'string' && s.toLowerCase() === name.toLowerCase());
  return i < 0 ? SEVERITIES.length - 1 : i;
}

/** Whether `name` is one of Quay's severities. */
export function isSeverity(name: unknown): boolean {
  return typeof name === 'string' && SEVERITIES.some((s) => s.toLowerCase() === name.toLowerCase());
}

/**
 * The least severe index an event config lets through, or undefined when it sets no minimum
 * (every vulnerability fires, as in Quay's should_perform without `level`).
 */
export function thresholdOf(eventConfig: Record<string, unknown>): number | undefined {
  const thresholds: number[] = [];
  const level = eventConfig.level;
  if (level !== undefined && level !== null && level !== '' && Number.isFinite(Number(level))) thresholds.push(Number(level));
  const priority = (eventConfig.vulnerability as Record<string, unknown> | undefined)?.priority;
  if (typeof priority === 'string') thresholds.push(severityIndex(priority));
  return thresholds.length === 0 ? undefined : Math.max(...thresholds);
}

/** Whether a vulnerability of severity `priority` meets `eventConfig`'s minimum. */
export function meetsThreshold(priority: unknown, eventConfig: Record<string, unknown>): boolean {
  const threshold = thresholdOf(eventConfig);
  return threshold === undefined || severityIndex(priority) <= threshold;
}
