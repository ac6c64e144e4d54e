/**
 * The fuzz part's short form (CI): every family against the front end, a fixed number of inputs
 * each. The long form is `npm run reliability -- --minutes N`.
 */
import { expect, it } from 'vitest';
import { run } from './fuzz/index.ts';

it('bad names, references, digests, ranges, headers, manifests, API bodies and JWTs never make a 5xx or a crash', async () => {
  const lines: string[] = [];
  const figures = await run({ minutes: 0.5, short: true, log: (line) => lines.push(line) });
  console.log(lines.join('\n'));
  console.log(JSON.stringify({ inputsTried: figures.inputsTried, failures: figures.failures.length }));
  expect(figures.failures.map((f) => `${f.family}: ${f.message}`)).toEqual([]);
  expect(figures.crashes).toEqual([]);
  expect(figures.healthyAfter).toBe(true);
  expect(figures.inputsTried).toBeGreaterThan(500);
}, 120_000);
