/**
 * Quay's `starttime`/`endtime` query parameters (`MM/DD/YYYY`, UTC) and its time span rules:
 * a missing start is 24 h before now, a missing end is now, and the end moves one day later so
 * the end date is included. Quay silently replaces a malformed date by the default; quayfleet
 * answers 400 naming the parameter, so a typo never lists or exports the wrong days.
 */
import { z } from 'zod';
import { apiErrors } from '../errors.ts';
import { parseInput } from './common.ts';

const DAY_MS = 86_400_000;

/** The query string of every /logs, /aggregatelogs and /exportlogs route. */
export const logRangeQuery = z.object({
  starttime: z.string().optional(),
  endtime: z.string().optional(),
  performer: z.string().min(1).optional(),
  next_page: z.string().optional(),
});

/** `MM/DD/YYYY` as midnight UTC, or undefined when it is not a real calendar date. */
export function parseLogDate(value: string): Date | undefined {
  const match = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(value.trim());
  if (!match) return undefined;
  const [month, day, year] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  return date;
}

/** `date` as `MM/DD/YYYY` (UTC). */
export function formatLogDate(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(date.getUTCMonth() + 1)}/${pad(date.getUTCDate())}/${date.getUTCFullYear()}`;
}

/**
 * The [start, end) instants of a request: Quay's defaults and its +1 day on the end. `wholeDays`
 * rounds the defaults to midnight (exports name whole days). 400 for a malformed date or an end
 * before the start ("Invalid time span selected").
 */
export function logTimeSpan(query: { starttime?: string; endtime?: string }, nowMs: number, options: { wholeDays?: boolean } = {}): { start: Date; end: Date } {
  const explicitStart = dateParam('starttime', query.starttime);
  const explicitEnd = dateParam('endtime', query.endtime);
  const round = (ms: number) => (options.wholeDays ? Math.floor(ms / DAY_MS) * DAY_MS : ms);
  const start = explicitStart ?? new Date(round(nowMs - DAY_MS));
  const end = new Date((explicitEnd?.getTime() ?? round(nowMs)) + DAY_MS);
  if (end.getTime() < start.getTime() || (explicitEnd && explicitStart && explicitEnd < explicitStart)) {
    throw apiErrors.badRequest('Invalid time span selected');
  }
  return { start, end };
}

function dateParam(name: string, value: string | undefined): Date | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const date = parseLogDate(value);
  if (!date) throw apiErrors.badRequest(`Invalid ${name}: expected a date as MM/DD/YYYY (UTC)`, { [name]: value });
  return date;
}

/** Parses the shared query string; 400 on anything that is not a plain parameter. */
export function parseLogQuery(raw: unknown): z.output<typeof logRangeQuery> {
  return parseInput(logRangeQuery, raw, 'query');
}
