/**
 * The soak's short form (CI): a few clients for about half a minute against the fleet in separate
 * processes; every invariant must hold. The long form: `npm run reliability -- --parts soak --minutes N`.
 * Most of the wall time is the fleet's start-up (seven processes on two loaded cores; CI runs the
 * compiled build, which .ci/run builds before the tests).
 */
import { describe, expect, it } from 'vitest';
import { run } from './soak/index.ts';

describe('reliability: soak (short form)', () => {
  it('keeps every acknowledged push pullable, answers no 5xx, and settles clean', async () => {
    const lines: string[] = [];
    const figures = await run({ minutes: 0.5, short: true, log: (line) => lines.push(line) });
    const summary = JSON.stringify(figures, null, 1) + '\n' + lines.join('\n');
    expect(figures.dataLost, summary).toBe(0);
    expect(figures.serverErrors, summary).toBe(0);
    expect(figures.blobUnknownWithinLease, summary).toBe(0);
    expect(figures.problems, summary).toEqual([]);
    expect(figures.pushes as number, summary).toBeGreaterThan(0);
    expect(figures.ok, summary).toBe(true);
  }, 420_000);
});
