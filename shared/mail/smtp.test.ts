/**
 * The shared SMTP transport against a real SMTP server (smtp-server on loopback, fixed ports of
 * this area's range): sender forms, STARTTLS as Flask-Mail reads MAIL_USE_TLS, credentials.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { parseConfig } from '../config/index.ts';
import { mailConfigured, mailTransportOf, sendMail } from './smtp.ts';

interface Received { from: string; to: string[]; secure: boolean; user: string | undefined; data: string }

const servers: SMTPServer[] = [];

/** Starts a loopback SMTP server on `port` recording every accepted message. */
async function smtpServer(port: number, options: SMTPServerOptions = {}): Promise<Received[]> {
  const received: Received[] = [];
  const server = new SMTPServer({
    logger: false, authOptional: true, disabledCommands: ['STARTTLS'], ...options,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          secure: session.secure,
          user: session.user as string | undefined,
          data: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return received;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

const mailConfig = (port: number, extra: Record<string, unknown> = {}) =>
  parseConfig({ MAIL_SERVER: '127.0.0.1', MAIL_PORT: port, MAIL_USE_TLS: false, NOTIFICATION_SEND_TIMEOUT: 2, ...extra });

describe('shared SMTP transport', () => {
  it('is configured only with FEATURE_MAILING and a MAIL_SERVER', () => {
    expect(mailConfigured(parseConfig({}))).toBe(false);
    expect(mailConfigured(mailConfig(21400))).toBe(true);
    expect(mailConfigured(mailConfig(21400, { FEATURE_MAILING: false }))).toBe(false);
  });

  it('sends from MAIL_DEFAULT_SENDER, as a plain address or Flask-Mail\'s [name, address]', async () => {
    const received = await smtpServer(21400);
    await sendMail(mailConfig(21400, { MAIL_DEFAULT_SENDER: 'quay@example.com' }), { to: 'ops@example.com', subject: 'Plain', text: 'one' });
    await sendMail(mailConfig(21400, { MAIL_DEFAULT_SENDER: ['Quay Registry', 'registry@example.com'] }), { to: 'dev@example.com', subject: 'Named', html: '<p>two</p>' });
    expect(received.map((r) => ({ from: r.from, to: r.to, secure: r.secure }))).toEqual([
      { from: 'quay@example.com', to: ['ops@example.com'], secure: false },
      { from: 'registry@example.com', to: ['dev@example.com'], secure: false },
    ]);
    expect(received[0]!.data).toMatch(/^Subject: Plain$/m);
    expect(received[0]!.data).toContain('one');
    expect(received[1]!.data).toMatch(/^From: Quay Registry <registry@example\.com>$/m);
    expect(received[1]!.data).toContain('<p>two</p>');
  });

  it('defaults the sender to Quay\'s support@quay.io', async () => {
    const received = await smtpServer(21401);
    await sendMail(mailConfig(21401), { to: 'ops@example.com', subject: 'Default', text: 'x' });
    expect(received[0]!.from).toBe('support@quay.io');
  });

  it('with MAIL_USE_TLS off, never upgrades even when the server offers STARTTLS', async () => {
    const received = await smtpServer(21402, { disabledCommands: [] });
    await sendMail(mailConfig(21402), { to: 'ops@example.com', subject: 'Clear', text: 'x' });
    expect(received).toHaveLength(1);
    expect(received[0]!.secure).toBe(false);
  });

  it('with MAIL_USE_TLS on, requires STARTTLS: a server without it gets no message', async () => {
    const received = await smtpServer(21403);
    await expect(sendMail(mailConfig(21403, { MAIL_USE_TLS: true }), { to: 'ops@example.com', subject: 'TLS', text: 'x' }))
      .rejects.toThrow(/STARTTLS/i);
    expect(received).toHaveLength(0);
  });

  it('with MAIL_USE_TLS on, upgrades and verifies the server certificate (smtp-server\'s self-signed one is refused)', async () => {
    const received = await smtpServer(21403, { disabledCommands: [] });
    await expect(sendMail(mailConfig(21403, { MAIL_USE_TLS: true }), { to: 'ops@example.com', subject: 'TLS', text: 'x' }))
      .rejects.toThrow(/self[- ]signed|certificate/i);
    expect(received).toHaveLength(0);
  });

  it('logs in with MAIL_USERNAME and MAIL_PASSWORD; wrong credentials reject the send', async () => {
    const received = await smtpServer(21404, {
      authOptional: false, allowInsecureAuth: true, authMethods: ['PLAIN', 'LOGIN'],
      onAuth(auth, _session, callback) {
        if (auth.username === 'quay' && auth.password === 's3cret') callback(null, { user: auth.username });
        else callback(new Error('Invalid username or password'));
      },
    });
    const auth = { MAIL_USE_AUTH: true, MAIL_USERNAME: 'quay', MAIL_PASSWORD: 's3cret' };
    await sendMail(mailConfig(21404, auth), { to: 'ops@example.com', subject: 'Auth', text: 'x' });
    expect(received.map((r) => r.user)).toEqual(['quay']);
    await expect(sendMail(mailConfig(21404, { ...auth, MAIL_PASSWORD: 'wrong' }), { to: 'ops@example.com', subject: 'Auth', text: 'x' }))
      .rejects.toThrow(/Invalid username or password/);
    // No credentials at all: the server's refusal reaches the caller.
    await expect(sendMail(mailConfig(21404), { to: 'ops@example.com', subject: 'Auth', text: 'x' })).rejects.toThrow(/auth/i);
    expect(received).toHaveLength(1);
  });

  it('rejects when no server answers, and keeps one transport per config', async () => {
    const config = mailConfig(21405);
    expect(await mailTransportOf(config)).toBe(await mailTransportOf(config));
    await expect(sendMail(config, { to: 'ops@example.com', subject: 'Down', text: 'x' })).rejects.toThrow(/ECONNREFUSED/);
  });
});
