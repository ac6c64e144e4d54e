/**
 * What Quay's notification events say (notifications/notificationevent.py): whether a
 * notification's event config lets an event through, the one-line summary (Slack text, e-mail
 * subject), the level (Slack colour) and a short HTML message.
 */
import { meetsThreshold, thresholdOf } from '../../shared/notifications/severity.ts';

/**
 * Quay's should_perform. `vulnerability_found`: fires for new-index reports, and otherwise when
 * the priority meets the notification's minimum severity (`level` or `vulnerability.priority`,
 * shared/notifications/severity.ts). Build events never fire here (quayfleet runs no builds).
 */
export function shouldPerform(event: string, eventData: Record<string, unknown>, eventConfig: Record<string, unknown>): boolean {
  if (event !== 'vulnerability_found') return true;
  if (eventData.vulnerable_index_report_created !== undefined) return true;
  if (thresholdOf(eventConfig) === undefined) return true;
  const vulnerability = eventData.vulnerability as Record<string, unknown> | undefined;
  if (!vulnerability) return false;
  return meetsThreshold(vulnerability.priority, eventConfig);
}

/** Quay's event levels, which pick the Slack colour. */
export type EventLevel = 'info' | 'primary' | 'success' | 'warning' | 'error';

const str = (value: unknown, fallback = ''): string => (typeof value === 'string' ? value : value === undefined ? fallback : JSON.stringify(value));

/** The level of an event. */
export function levelOf(event: string, eventData: Record<string, unknown>): EventLevel {
  switch (event) {
    case 'repo_push': return 'primary';
    case 'repo_mirror_sync_success': case 'build_success': return 'success';
    case 'repo_mirror_sync_failed': case 'build_failure': case 'quota_error': return 'error';
    case 'quota_warning': return 'warning';
    case 'vulnerability_found': {
      const priority = str((eventData.vulnerability as Record<string, unknown> | undefined)?.priority);
      return priority === 'Critical' ? 'error' : priority === 'High' || priority === 'Medium' ? 'warning' : 'info';
    }
    default: return 'info';
  }
}

/** Quay's one-line summary of an event. */
export function summaryOf(event: string, eventData: Record<string, unknown>): string {
  const repository = str(eventData.repository);
  switch (event) {
    case 'repo_push': return `Repository ${repository} updated`;
    case 'repo_mirror_sync_started': return `Repository Mirror Started for ${repository}`;
    case 'repo_mirror_sync_success': return `Repository Mirror Completed for ${repository}`;
    case 'repo_mirror_sync_failed': return `Repository Mirror Unsuccessful for ${repository}`;
    case 'vulnerability_found': {
      const vulnerability = (eventData.vulnerability ?? {}) as Record<string, unknown>;
      const tags = Array.isArray(eventData.tags) ? eventData.tags.length : 0;
      return `${str(vulnerability.priority, 'Unknown')} vulnerability detected in repository ${repository} in ${tags} tags`;
    }
    case 'repo_image_expiry': return `Repository ${repository} image(s) expiring`;
    case 'quota_warning': return `Quota warning for namespace ${str(eventData.namespace)}`;
    case 'quota_error': return `Quota limit reached for namespace ${str(eventData.namespace)}`;
    case 'build_queued': return `Build queued for repository ${repository}`;
    case 'build_start': return `Build started for repository ${repository}`;
    case 'build_success': return `Build succeeded for repository ${repository}`;
    case 'build_failure': return `Build failure for repository ${repository}`;
    case 'build_cancelled': return `Build cancelled for repository ${repository}`;
    default: return `${event} in ${repository}`;
  }
}

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A short HTML message (the e-mail body, converted for Slack); values are escaped. */
export function htmlMessageOf(event: string, eventData: Record<string, unknown>): string {
  const link = `<a href="${escape(str(eventData.homepage))}">${escape(str(eventData.repository, str(eventData.namespace)))}</a>`;
  switch (event) {
    case 'repo_push': {
      const tags = Array.isArray(eventData.updated_tags) ? eventData.updated_tags.map((t) => escape(str(t))).join(', ') : '';
      return `Repository ${link} has been pushed with the following tags updated: ${tags}`;
    }
    case 'vulnerability_found': {
      const v = (eventData.vulnerability ?? {}) as Record<string, unknown>;
      const tags = Array.isArray(eventData.tags) ? eventData.tags.map((t) => escape(str(t))).join(', ') : '';
      return `A <b>${escape(str(v.priority, 'Unknown'))}</b> vulnerability (${escape(str(v.id))}) was detected in tags ${tags} of repository ${link}.<br>${escape(str(v.description))}`;
    }
    case 'repo_mirror_sync_started': case 'repo_mirror_sync_success': case 'repo_mirror_sync_failed':
      return `${escape(summaryOf(event, eventData))}: ${link}<br>${escape(str(eventData.message))}`;
    case 'quota_warning': case 'quota_error':
      return `Namespace <b>${escape(str(eventData.namespace))}</b> reached ${escape(str(eventData.usage_percent))}% of its quota (threshold ${escape(str(eventData.threshold_percent))}%).`;
    default:
      return `${escape(summaryOf(event, eventData))}: ${link}`;
  }
}

/** Quay's Slack conversion of the HTML message to mrkdwn: bold with spaces, <br> as newline, links. */
export function slackMarkdownOf(html: string): string {
  return html
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<b>(.*?)<\/b>/gi, ' *$1* ')
    .replace(/<(?!a\s|\/a>)[^>]+>/gi, '')
    .replace(/<a href="([^"]*)">(.*?)<\/a>/gi, '<$1|$2>')
    .replace(/&#(\d+);/g, (_m, code: string) => String.fromCharCode(Number(code)));
}
