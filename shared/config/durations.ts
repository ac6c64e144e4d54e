/**
 * Quay's duration strings ("0s", "1d", "2w", "30m", "4h") as seconds. Quay accepts a number
 * followed by one unit of s, m, h, d or w.
 */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Seconds in `value` ("2w" -> 1209600), or undefined when it is not a Quay duration. */
export function parseDurationSeconds(value: string): number | undefined {
  const match = /^\s*(\d+)\s*([smhdw])\s*$/.exec(value);
  if (!match) return undefined;
  return Number(match[1]) * UNIT_SECONDS[match[2]!]!;
}
