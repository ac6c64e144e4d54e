import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../test/helpers/registry.ts';

const PSK = randomBytes(32).toString('base64');
let t: TestRegistry;
let off: TestRegistry;

beforeAll(async () => {
  const flags = { FEATURE_SECURITY_SCANNER: true, FEATURE_SECURITY_NOTIFICATIONS: true, SECURITY_SCANNER_V4_ENDPOINT: 'http://clair.invalid:6060' };
  t = await startTestRegistry({ label: 'secscanhook', config: { ...flags, SECURITY_SCANNER_V4_PSK: PSK } });
  off = await startTestRegistry({ label: 'secscanhookoff', config: { ...flags, FEATURE_SECURITY_NOTIFICATIONS: false } });
});
afterAll(async () => {
  await t?.close();
  await off?.close();
});

const nowS = () => Math.floor(Date.now() / 1000);

async function token(claims: { iat?: number; nbf?: number; exp?: number } = {}, key = Buffer.from(PSK, 'base64')): Promise<string> {
  const jwt = new SignJWT({ ...claims }).setProtectedHeader({ alg: 'HS256' }).setIssuer('clair-notifier');
  if (!('iat' in claims)) jwt.setIssuedAt();
  if (!('nbf' in claims)) jwt.setNotBefore('0s');
  if (!('exp' in claims)) jwt.setExpirationTime('5m');
  return jwt.sign(key);
}

async function post(app: TestRegistry, body: unknown, headers: Record<string, string> = {}) {
  return app.app.inject({
    method: 'POST', url: '/secscan/notification',
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const jobs = async () => (await t.db.query<{ job_id: string; payload: unknown }>(`SELECT job_id, payload FROM outbox WHERE queue_name = 'secscanv4' ORDER BY id`)).rows;

describe('POST /secscan/notification', () => {
  it('accepts a signed notification and enqueues one secscanv4 job per id; a replay is the same job', async () => {
    const body = { notification_id: '5e4b387e-88d3-4364-86fd-063447a6fad2', callback: 'http://clair:6060/notifier/api/v1/notification/5e4b387e-88d3-4364-86fd-063447a6fad2' };
    const auth = { authorization: `Bearer ${await token()}` };
    const first = await post(t, body, auth);
    expect(first.statusCode).toBe(200);
    expect(first.body).toBe('Okay');
    expect((await post(t, body, auth)).statusCode).toBe(200);
    const rows = await jobs();
    expect(new Set(rows.map((r) => r.job_id))).toEqual(new Set(['secscanv4/with_id/5e4b387e-88d3-4364-86fd-063447a6fad2']));
    expect(rows[0]!.payload).toEqual({ v: 1, notificationId: '5e4b387e-88d3-4364-86fd-063447a6fad2' });
  });

  it('parses the body as JSON whatever its content type', async () => {
    const response = await t.app.inject({
      method: 'POST', url: '/secscan/notification', headers: { 'content-type': 'text/plain', authorization: `Bearer ${await token()}` },
      payload: JSON.stringify({ notification_id: 'plain-id', callback: 'x' }),
    });
    expect(response.statusCode).toBe(200);
  });

  it.each([
    ['no header', async () => ({})],
    ['a token signed with another key', async () => ({ authorization: `Bearer ${await token({}, randomBytes(32))}` })],
    ['an expired token', async () => ({ authorization: `Bearer ${await token({ exp: nowS() - 120, iat: nowS() - 600, nbf: nowS() - 600 })}` })],
    ['a token issued in the future', async () => ({ authorization: `Bearer ${await token({ iat: nowS() + 600, nbf: nowS() - 10 })}` })],
    ['a token not valid yet (nbf in the future)', async () => ({ authorization: `Bearer ${await token({ nbf: nowS() + 600 })}` })],
    ['a token without nbf', async () => {
      const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(Buffer.from(PSK, 'base64'));
      return { authorization: `Bearer ${jwt}` };
    }],
    ['a token with alg none', async () => ({ authorization: `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(`{"exp":${nowS() + 60}}`).toString('base64url')}.` })],
    ['a malformed header', async () => ({ authorization: 'Bearer not-a-jwt' })],
    ['Basic credentials', async () => ({ authorization: 'Basic YTpi' })],
  ])('answers 401 to %s', async (_case, headers) => {
    const response = await post(t, { notification_id: 'x1', callback: 'y' }, await headers());
    expect(response.statusCode).toBe(401);
  });

  it.each([
    ['a missing notification_id', { callback: 'x' }],
    ['a missing callback', { notification_id: 'abc' }],
    ['a JSON array', [{ notification_id: 'abc', callback: 'x' }]],
    ['JSON null', null],
    ['non-JSON', '{not json'],
    ['an empty body', ''],
    ['a notification id that cannot be a job id', { notification_id: 'a:b/c', callback: 'x' }],
    ['a numeric notification id', { notification_id: 12, callback: 'x' }],
  ])('answers 400 to %s', async (_case, body) => {
    const response = await post(t, body, { authorization: `Bearer ${await token()}` });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ status: 400, error_type: 'invalid_request' });
  });

  it('is absent (404) when security notifications are off, as its worker is', async () => {
    expect((await post(off, { notification_id: 'abc', callback: 'x' })).statusCode).toBe(404);
    expect((await off.db.query(`SELECT 1 FROM outbox WHERE queue_name = 'secscanv4'`)).rowCount).toBe(0);
  });
});
