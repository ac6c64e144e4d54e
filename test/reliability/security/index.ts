/**
 * The security part of the reliability run, over one front end whose log lines are all captured:
 * the authorization matrix (every route x every principal), SSRF guards at configuration and at
 * delivery, token expiry and replay, then a scan of every log line of the whole run for the
 * secrets configured or created (passwords, robot and app tokens, the DB_URI password, the
 * database secret key, Clair's PSK, mirror upstream credentials).
 * The short form checks every route with a rotating subset of principals; the long form checks all.
 */
import type { PartFigures, PartOptions } from '../types.ts';
import { checkMatrix } from './check-matrix.ts';
import { PRINCIPALS, startSecurityFixture } from './fixture.ts';
import { checkSsrf } from './ssrf.ts';
import { checkTokens } from './tokens.ts';

/** The security figures. */
export interface SecurityFigures extends PartFigures {
  routes: number;
  principals: number;
  routesTimesPrincipalsChecked: number;
  ssrfChecked: number;
  tokenChecks: number;
  logLinesScanned: number;
  secretsChecked: number;
  secretsLeaked: number;
  failures: string[];
}

/** Log lines that hold `value` (also base64-encoded, as in a Basic header). */
function leaks(lines: readonly string[], name: string, value: string): string[] {
  const forms = [value, Buffer.from(value).toString('base64'), encodeURIComponent(value)];
  return lines.filter((line) => forms.some((form) => line.includes(form))).map((line) => `${name} in: ${line.slice(0, 200)}`);
}

/** Runs the security part. */
export async function run(options: PartOptions): Promise<SecurityFigures> {
  const fx = await startSecurityFixture(options.short ? 'securityshort' : 'security');
  const failures: string[] = [];
  let figures: Pick<SecurityFigures, 'routes' | 'principals' | 'routesTimesPrincipalsChecked' | 'ssrfChecked' | 'tokenChecks'> | undefined;
  try {
    const started = Date.now();
    const matrix = await checkMatrix(fx, { short: options.short });
    options.log(`security: matrix ${matrix.routes} routes, ${matrix.checked} (route case, principal) pairs in ${((Date.now() - started) / 1000).toFixed(1)} s, ${matrix.mismatches.length} mismatches`);
    failures.push(...matrix.missingRows.map((k) => `route without a matrix row: ${k}`), ...matrix.staleRows.map((k) => `matrix row for a route the app no longer has: ${k}`), ...matrix.mismatches);
    const ssrf = await checkSsrf(fx, { short: options.short });
    options.log(`security: SSRF ${ssrf.configChecked} configuration attempts, ${ssrf.deliveryChecked} delivery attempts, ${ssrf.failures.length} failures`);
    failures.push(...ssrf.failures);
    const tokens = await checkTokens(fx);
    options.log(`security: tokens ${tokens.checked} checks, ${tokens.failures.length} failures`);
    failures.push(...tokens.failures);
    figures = {
      routes: matrix.routes, principals: PRINCIPALS.length, routesTimesPrincipalsChecked: matrix.checked,
      ssrfChecked: ssrf.configChecked + ssrf.deliveryChecked, tokenChecks: tokens.checked,
    };
  } finally {
    await fx.t.close();
  }
  const leaked = [...fx.secrets].flatMap(([name, value]) => leaks(fx.logLines, name, value));
  options.log(`security: ${fx.logLines.length} log lines scanned for ${fx.secrets.size} secrets, ${leaked.length} leaks`);
  failures.push(...leaked);
  for (const failure of failures) options.log(`security FAILURE: ${failure}`);
  return {
    ok: failures.length === 0, dataLost: 0, ...figures!,
    logLinesScanned: fx.logLines.length, secretsChecked: fx.secrets.size, secretsLeaked: leaked.length, failures,
  };
}
