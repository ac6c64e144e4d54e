/**
 * Verified tokens are remembered per secret and audience, and a remembered token still expires on
 * time; a tampered copy, another audience or another secret is verified afresh (and refused).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidTokenError, TOKEN_LIFETIME_S, signRegistryToken, verifyRegistryToken } from './token.ts';

describe('verified-token cache', () => {
  const principal = { kind: 'user' as const, id: 7, username: 'alice', superuser: false };
  const access = [{ type: 'repository' as const, name: 'alice/app', actions: ['pull'] }];

  it('serves a verified token again, expires it on time, and never vouches for a different one', async () => {
    const secret = randomBytes(32);
    const nowMs = Date.now();
    const settings = { secret, audience: 'registry.example', nowMs };
    const { token } = await signRegistryToken(settings, principal, access);
    const first = await verifyRegistryToken(settings, token);
    expect(await verifyRegistryToken({ ...settings, nowMs: nowMs + 1000 }, token)).toBe(first);

    const [header, payload, signature] = token.split('.');
    const flipped = `${signature!.slice(0, -2)}${signature!.at(-2) === 'A' ? 'B' : 'A'}${signature!.at(-1)}`;
    await expect(verifyRegistryToken(settings, `${header}.${payload}.${flipped}`)).rejects.toBeInstanceOf(InvalidTokenError);
    await expect(verifyRegistryToken({ ...settings, audience: 'other.example' }, token)).rejects.toBeInstanceOf(InvalidTokenError);
    await expect(verifyRegistryToken({ ...settings, secret: randomBytes(32) }, token)).rejects.toBeInstanceOf(InvalidTokenError);

    const later = { ...settings, nowMs: nowMs + (TOKEN_LIFETIME_S + 60) * 1000 };
    await expect(verifyRegistryToken(later, token)).rejects.toMatchObject({ message: 'token expired' });
    await expect(verifyRegistryToken(later, token)).rejects.toMatchObject({ message: 'token expired' });
  });
});
