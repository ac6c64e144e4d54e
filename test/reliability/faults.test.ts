/**
 * The short form of the fault part of the reliability run (test/reliability/faults/): every fault
 * once, for 2 s, under load; the fleets recover by themselves and nothing acknowledged is lost.
 */
import { describe, expect, it } from 'vitest';
import { run } from './faults/index.ts';

describe('reliability: faults (short form)', () => {
  it('survives Redis, Postgres, storage and disk faults under load without losing acknowledged data', { timeout: 300_000 }, async () => {
    const lines: string[] = [];
    const figures = await run({ short: true, minutes: 0.5, log: (line) => { lines.push(line); console.log(line); } });
    console.log(JSON.stringify(figures));
    expect(figures.dataLost, lines.join('\n')).toBe(0);
    expect(figures.ok, `${lines.join('\n')}\n${JSON.stringify(figures, null, 2)}`).toBe(true);
  });
});
