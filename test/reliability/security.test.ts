/**
 * The security part's short form (CI): every route of the app against anonymous and a rotating
 * allowed and refused principal (of eleven), SSRF guards at configuration and delivery, token
 * expiry and replay, and no secret in any log line of the run. The long form
 * (`npm run reliability`) checks every principal.
 */
import { expect, it } from 'vitest';
import { run } from './security/index.ts';

it('every route refuses who it must, no outbound URL reaches the inside, no token outlives its grant, no secret is logged', async () => {
  const lines: string[] = [];
  const figures = await run({ minutes: 0.5, short: true, log: (line) => lines.push(line) });
  console.log(lines.join('\n'));
  expect(figures.failures).toEqual([]);
  expect(figures.secretsLeaked).toBe(0);
  expect(figures.routes).toBeGreaterThan(100);
  expect(figures.logLinesScanned).toBeGreaterThan(100);
}, 180_000);
