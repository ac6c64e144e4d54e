/**
 * The fuzz part of the reliability run: property-based requests (fast-check) of every family in
 * families.ts against the front end. Properties: never a 5xx; an error in its API's shape; forged
 * tokens refused; no crash (no uncaught exception or unhandled rejection in the process); /health
 * answers 200 after each family. Each failure is shrunk by fast-check and reported with its
 * counterexample (keep it as a regression test beside the code it concerns).
 */
import fc from 'fast-check';
import type { PartFigures, PartOptions } from '../types.ts';
import { families, type Family, type FuzzRequest } from './families.ts';
import { startFuzzTarget, violation, type FuzzTarget } from './target.ts';

/** Inputs per family in the short (CI) form. */
const SHORT_RUNS = 120;

/** One shrunk failure. */
export interface FuzzFailure {
  family: string;
  message: string;
  counterexample: FuzzRequest;
}

/** What a fuzz run found. */
export interface FuzzFigures extends PartFigures {
  inputsTried: number;
  perFamily: Record<string, number>;
  failures: FuzzFailure[];
  crashes: string[];
  healthyAfter: boolean;
}

async function send(target: FuzzTarget, request: FuzzRequest): Promise<void> {
  const response = await target.t.app.inject({
    method: request.method, url: request.url, headers: request.headers, ...(request.payload === undefined ? {} : { payload: request.payload }),
  });
  const broken = violation(request.method, request.url, response);
  if (broken) throw new Error(broken);
  if (request.mustRefuse && ![400, 401, 403, 404].includes(response.statusCode)) {
    // A credential that is not one (`Bearer ` and nothing) may count as none: then it gets
    // exactly what an anonymous caller gets, and nothing more.
    const { authorization: _dropped, ...anonymousHeaders } = request.headers;
    const anonymous = await target.t.app.inject({ method: request.method, url: request.url, headers: anonymousHeaders, ...(request.payload === undefined ? {} : { payload: request.payload }) });
    if (anonymous.statusCode !== response.statusCode || anonymous.body !== response.body) {
      throw new Error(`accepted a forged credential: ${response.statusCode} ${response.body.slice(0, 200)}`);
    }
  }
}

/** Runs one family until `runs` inputs or `timeMs` pass; on a failure, records it and goes on with a new seed. */
async function fuzzFamily(target: FuzzTarget, family: Family, budget: { runs: number; timeMs: number }, failures: FuzzFailure[]): Promise<number> {
  let tried = 0;
  const deadline = Date.now() + budget.timeMs;
  const seen = new Set<string>();
  while (tried < budget.runs && Date.now() < deadline) {
    const result = await fc.check(fc.asyncProperty(family.requests, async (request) => {
      tried++;
      await send(target, request);
    }), { numRuns: budget.runs - tried, interruptAfterTimeLimit: Math.max(1, deadline - Date.now()), markInterruptAsFailure: false });
    if (!result.failed) break;
    const message = result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
    const key = message.slice(0, 60);
    if (!seen.has(key)) {
      seen.add(key);
      failures.push({ family: family.name, message, counterexample: result.counterexample![0] as FuzzRequest });
    }
    if (seen.size > 20) break;
  }
  return tried;
}

async function healthy(target: FuzzTarget): Promise<boolean> {
  const response = await target.t.app.inject({ method: 'GET', url: '/health/instance' });
  return response.statusCode === 200;
}

/** Runs the fuzz part: `options.short` for the CI form, else `options.minutes` shared by the families. */
export async function run(options: PartOptions): Promise<FuzzFigures> {
  const crashes: string[] = [];
  const onCrash = (error: unknown) => crashes.push(String(error instanceof Error ? error.stack : error));
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  const target = await startFuzzTarget(options.short ? 'fuzzshort' : 'fuzz');
  const failures: FuzzFailure[] = [];
  const perFamily: Record<string, number> = {};
  let healthyAfter = true;
  try {
    const all = families(target);
    const budget = options.short
      ? { runs: SHORT_RUNS, timeMs: 6_000 }
      : { runs: Number.MAX_SAFE_INTEGER, timeMs: (options.minutes * 60_000) / all.length };
    for (const family of all) {
      const started = Date.now();
      perFamily[family.name] = await fuzzFamily(target, family, budget, failures);
      const ok = await healthy(target);
      healthyAfter &&= ok;
      options.log(`fuzz: ${family.name}: ${perFamily[family.name]} inputs in ${((Date.now() - started) / 1000).toFixed(1)} s, healthy ${ok}`);
    }
  } finally {
    await target.t.close();
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  }
  for (const failure of failures) options.log(`fuzz FAILURE (${failure.family}): ${failure.message}\n  counterexample: ${JSON.stringify(failure.counterexample).slice(0, 2000)}`);
  const inputsTried = Object.values(perFamily).reduce((a, b) => a + b, 0);
  return {
    ok: failures.length === 0 && crashes.length === 0 && healthyAfter, dataLost: 0,
    inputsTried, perFamily, failures, crashes, healthyAfter,
  };
}
