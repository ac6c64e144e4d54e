/**
 * The kill part's short form (CI): the front end and three worker types SIGKILLed at random points
 * and restarted while clients push and pull; afterwards nothing is lost, nothing leaks, every queue
 * drains and no lock is left. The long form (every type, >= 20 kills each):
 * `npm run reliability -- --parts kill --minutes N`.
 */
import { describe, expect, it } from 'vitest';
import { run } from './kill/index.ts';

describe('reliability: kill (short form)', () => {
  it('survives SIGKILLs of the front end and workers with nothing lost or leaked', async () => {
    const lines: string[] = [];
    const figures = await run({ minutes: 0.5, short: true, log: (line) => lines.push(line) });
    const summary = JSON.stringify(figures, null, 1) + '\n' + lines.join('\n');
    expect(figures.dataLost, summary).toBe(0);
    expect(figures.internalErrors, summary).toBe(0);
    expect(figures.problems, summary).toEqual([]);
    expect(figures.jobLocksLeft, summary).toBe(0);
    expect(figures.minKillsPerType as number, summary).toBeGreaterThanOrEqual(1);
    expect(figures.ok, summary).toBe(true);
  }, 600_000);
});
