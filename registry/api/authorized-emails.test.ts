/**
 * E-mail authorization for repository notifications (Quay's repoemail.py and /authrepoemail),
 * against a real SMTP server on loopback (smtp-server): the mail with its link, confirmation,
 * the e-mail notification refused until then, bad input, a mail server that is down, and the
 * routes gone without FEATURE_MAILING.
 */
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const PASSWORD = 'a long enough password';
const SMTP_PORT = 21301;
const UNUSED_PORT = 21302;
const alice: [string, string] = ['alice', PASSWORD];
const bob: [string, string] = ['bob', PASSWORD];
const path = (email: string) => `/repository/acme/app/authorizedemail/${encodeURIComponent(email)}`;
const emailNotification = (email: string) => ({ event: 'repo_push', method: 'email', config: { email }, eventConfig: {} });

let t: TestRegistry;
let smtp: SMTPServer;
const mails: { to: string[]; data: string }[] = [];

async function registry(label: string, config: Record<string, unknown>): Promise<TestRegistry> {
  const r = await startTestRegistry({ label, config: { SERVER_HOSTNAME: 'quay.example', MAIL_SERVER: '127.0.0.1', MAIL_USE_TLS: false, MAIL_DEFAULT_SENDER: 'quay@example.com', ...config } });
  await r.createUser('alice', PASSWORD);
  await r.createUser('bob', PASSWORD);
  await r.createOrganization('acme', 'alice');
  await r.createRepository('acme/app');
  await r.grant('acme/app', { user: 'bob' }, 'write');
  return r;
}

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks).toString() });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(SMTP_PORT, '127.0.0.1', resolve));
  t = await registry('authemail', { MAIL_PORT: SMTP_PORT });
});
afterAll(async () => {
  await t?.close();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
});

function expectQuayError(response: { statusCode: number; json(): Record<string, unknown> }, status: number, message?: string | RegExp): void {
  expect(response.statusCode).toBe(status);
  const body = response.json();
  expect(body).toMatchObject({ status, error_type: expect.any(String), error_message: expect.any(String) });
  if (message) expect(body.error_message).toMatch(message);
}

/** The confirmation code of the last mail to `to` (the link is quoted-printable in the HTML part). */
function codeMailedTo(to: string): string {
  const mail = mails.filter((m) => m.to.includes(to)).at(-1)!;
  const text = mail.data.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return /http:\/\/quay\.example\/authrepoemail\?code=([A-Za-z0-9_-]+)/.exec(text)![1]!;
}

describe('repository e-mail authorization', () => {
  it('mails a link whose code confirms the address; only then may an e-mail notification be created', async () => {
    const base = '/repository/acme/app/notification/';
    expectQuayError(await t.api('POST', base, { as: alice, body: emailNotification('ops@example.com') }), 400,
      'The specified e-mail address is not authorized to receive notifications for this repository');
    expectQuayError(await t.api('GET', path('ops@example.com'), { as: alice }), 404);

    const asked = await t.api('POST', path('ops@example.com'), { as: alice });
    expect(asked.statusCode).toBe(200);
    // Never the code: the admin could confirm an address they do not own.
    expect(asked.json()).toEqual({ email: 'ops@example.com', repository: 'app', namespace: 'acme', confirmed: false });
    expect(mails.at(-1)!.data).toContain('Subject: Please verify your e-mail address for repository acme/app');
    const code = codeMailedTo('ops@example.com');
    expect((await t.api('GET', path('ops@example.com'), { as: alice })).json().confirmed).toBe(false);
    expectQuayError(await t.api('POST', base, { as: alice, body: emailNotification('ops@example.com') }), 400, /not authorized/);

    const wrong = await t.app.inject({ method: 'GET', url: '/authrepoemail?code=not-the-code' });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toContain('Invalid confirmation code.');
    expect((await t.app.inject({ method: 'GET', url: '/authrepoemail' })).statusCode).toBe(400);
    const confirmed = await t.app.inject({ method: 'GET', url: `/authrepoemail?code=${code}` });
    expect(confirmed.statusCode).toBe(200);
    expect(confirmed.headers['content-type']).toMatch(/text\/html/);
    expect(confirmed.body).toContain('Your E-mail address has been authorized to receive notifications for repository <a href="http://quay.example/repository/acme/app">acme/app</a>.');

    expect((await t.api('GET', path('ops@example.com'), { as: alice })).json()).toEqual({ email: 'ops@example.com', repository: 'app', namespace: 'acme', confirmed: true });
    const sent = mails.length;
    expect((await t.api('POST', path('ops@example.com'), { as: alice })).json().confirmed).toBe(true);
    expect(mails).toHaveLength(sent);
    expect((await t.api('POST', base, { as: alice, body: emailNotification('ops@example.com') })).statusCode).toBe(201);
    // Confirmed for this repository only.
    await t.createRepository('acme/other');
    expectQuayError(await t.api('POST', '/repository/acme/other/notification/', { as: alice, body: emailNotification('ops@example.com') }), 400, /not authorized/);
  });

  it('asking again mails a new code and the old one no longer confirms', async () => {
    await t.api('POST', path('dev@example.com'), { as: alice });
    const first = codeMailedTo('dev@example.com');
    await t.api('POST', path('dev@example.com'), { as: alice });
    const second = codeMailedTo('dev@example.com');
    expect(second).not.toBe(first);
    expect((await t.app.inject({ method: 'GET', url: `/authrepoemail?code=${first}` })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: `/authrepoemail?code=${second}` })).statusCode).toBe(200);
  });

  it('refuses bad input and callers who are not repository admins', async () => {
    expectQuayError(await t.api('POST', path('not-an-address'), { as: alice }), 400, 'Invalid e-mail address');
    expectQuayError(await t.api('GET', path('not-an-address'), { as: alice }), 400, 'Invalid e-mail address');
    expectQuayError(await t.api('POST', path('x@example.com')), 401);
    expectQuayError(await t.api('POST', path('x@example.com'), { as: bob }), 403);
    expectQuayError(await t.api('GET', path('x@example.com'), { as: bob }), 403);
    expectQuayError(await t.api('POST', '/repository/acme/nope/authorizedemail/x%40example.com', { as: alice }), 404);
    expect(mails.filter((m) => m.to.includes('x@example.com'))).toEqual([]);
  });

  it('answers 503 with the reason when the mail server is down, and no route without FEATURE_MAILING', async () => {
    const down = await registry('authemaildown', { MAIL_PORT: UNUSED_PORT, NOTIFICATION_SEND_TIMEOUT: 2 });
    const off = await registry('authemailoff', { FEATURE_MAILING: false });
    try {
      expectQuayError(await down.api('POST', path('ops@example.com'), { as: alice }), 503, /Could not send the verification e-mail: .*ECONNREFUSED/);
      expect((await down.api('GET', path('ops@example.com'), { as: alice })).json().confirmed).toBe(false);
      expectQuayError(await off.api('POST', path('ops@example.com'), { as: alice }), 404);
      expect((await off.app.inject({ method: 'GET', url: '/authrepoemail?code=x' })).statusCode).toBe(404);
    } finally {
      await down.close();
      await off.close();
    }
  });
});
