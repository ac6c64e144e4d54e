/**
 * Forged and damaged JWTs: a generated recipe (algorithm, key, claims, damage) and the token it
 * makes. Only the recipe `{ key: 'right', alg: 'HS256' }` with valid claims may be accepted.
 */
import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { anyText } from './arbitraries.ts';

/** How to build one token. */
export interface JwtRecipe {
  alg: string;
  key: 'right' | 'wrong' | 'empty';
  claims: Record<string, unknown>;
  damage: 'none' | 'flip-signature' | 'drop-signature' | 'swap-payload' | 'extra-segment' | 'garbage';
  garbage: string;
}

const nowS = () => Math.floor(Date.now() / 1000);

/** Claim sets: right ones with one thing wrong, and random ones. */
function claims(audience: string): fc.Arbitrary<Record<string, unknown>> {
  const time = fc.oneof(
    fc.constantFrom('past', 'now', 'future', 'far-future', 'missing', 'string', 'float', 'huge'),
  );
  return fc.record({
    iss: fc.oneof(fc.constant('quay'), fc.constant('clair'), anyText, fc.jsonValue()),
    aud: fc.oneof(fc.constant(audience), fc.constant([audience, 'other']), fc.constant('evil.example'), fc.jsonValue()),
    sub: fc.oneof(fc.constantFrom('owner', 'root', 'acme+bot', '(anonymous)'), anyText),
    exp: time, iat: time, nbf: time,
    access: fc.oneof(
      fc.constant([{ type: 'repository', name: 'acme/app', actions: ['*'] }]),
      fc.array(fc.record({ type: fc.oneof(fc.constant('repository'), anyText), name: fc.oneof(fc.constant('acme/app'), anyText), actions: fc.jsonValue() }), { maxLength: 2 }),
      fc.jsonValue(),
    ),
    context: fc.oneof(
      fc.constant({ version: 2, kind: 'user', entity_reference: 1, user: 'root' }),
      fc.record({ version: fc.jsonValue(), kind: fc.oneof(fc.constantFrom('user', 'robot', 'apptoken', 'anonymous', 'superuser'), anyText), entity_reference: fc.jsonValue(), user: fc.jsonValue() }),
      fc.jsonValue(),
    ),
    notification_id: fc.oneof(fc.uuid(), anyText),
  }, { requiredKeys: [] }).map((c) => {
    const out: Record<string, unknown> = { ...c };
    for (const name of ['exp', 'iat', 'nbf'] as const) out[name] = timeValue(c[name] as string | undefined, name);
    for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
    return out;
  });
}

function timeValue(kind: string | undefined, claim: string): unknown {
  const now = nowS();
  switch (kind) {
    case 'past': return now - 7200;
    case 'now': return claim === 'exp' ? now + 600 : now;
    case 'future': return now + 600;
    case 'far-future': return now + 10 * 365 * 86400;
    case 'string': return String(now);
    case 'float': return now + 0.5;
    case 'huge': return 1e300;
    default: return undefined;
  }
}

/** Recipes for tokens presented to a service whose audience is `audience`. */
export function jwtRecipe(audience: string): fc.Arbitrary<JwtRecipe> {
  return fc.record({
    alg: fc.constantFrom('HS256', 'HS256', 'none', 'None', 'HS384', 'HS512', 'RS256', 'ES256', ''),
    key: fc.constantFrom('right', 'right', 'wrong', 'empty'),
    claims: claims(audience),
    damage: fc.constantFrom('none', 'none', 'none', 'flip-signature', 'drop-signature', 'swap-payload', 'extra-segment', 'garbage'),
    garbage: anyText,
  });
}

const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** The token of `recipe`, signed (HMAC algorithms) with `secret` when the recipe says the right key. */
export function buildJwt(recipe: JwtRecipe, secret: Uint8Array): string {
  if (recipe.damage === 'garbage') return recipe.garbage;
  const header = b64url({ alg: recipe.alg, typ: 'JWT' });
  const payload = b64url(recipe.claims);
  const key = recipe.key === 'right' ? secret : recipe.key === 'wrong' ? randomBytes(32) : Buffer.alloc(0);
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[recipe.alg];
  const signature = hash ? createHmac(hash, key).update(`${header}.${payload}`).digest('base64url') : recipe.alg === '' || /none/i.test(recipe.alg) ? '' : randomBytes(64).toString('base64url');
  switch (recipe.damage) {
    case 'flip-signature': return `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    case 'drop-signature': return `${header}.${payload}.`;
    case 'swap-payload': return `${header}.${b64url({ ...recipe.claims, sub: 'root', access: [{ type: 'repository', name: 'acme/app', actions: ['*'] }] })}.${signature}`;
    case 'extra-segment': return `${header}.${payload}.${signature}.${payload}`;
    default: return `${header}.${payload}.${signature}`;
  }
}

/** Whether a server that checks everything must accept the token (HS256, right key, valid claims, intact). */
export function mustBeRefused(recipe: JwtRecipe): boolean {
  return recipe.damage !== 'none' || recipe.alg !== 'HS256' || recipe.key !== 'right';
}
