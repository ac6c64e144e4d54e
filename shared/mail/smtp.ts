/**
 * Outgoing e-mail with Quay's `MAIL_*` settings, shared by the processes that send it (the
 * notification worker's e-mail method, the export worker's report). One nodemailer transport per
 * parsed config: not pooled, so a worker holds no SMTP connection between messages.
 *
 * Quay (Flask-Mail) reads `MAIL_USE_TLS` as STARTTLS on a plain connection, never implicit TLS:
 * on, the server must offer STARTTLS (requireTLS); off, STARTTLS is not attempted even if offered.
 * Credentials are sent when `MAIL_USE_AUTH` is on or a `MAIL_USERNAME` is set.
 */
import type { Transporter } from 'nodemailer';
import type { Config } from '../config/index.ts';

/** One message; the sender is always `MAIL_DEFAULT_SENDER`. */
export interface MailMessage {
  readonly to: string;
  readonly subject: string;
  readonly text?: string;
  readonly html?: string;
}

/** Whether the config can send mail: `FEATURE_MAILING` on and a `MAIL_SERVER` set. */
export function mailConfigured(config: Config): boolean {
  return config.quay.FEATURE_MAILING && config.quay.MAIL_SERVER !== '';
}

/** `MAIL_DEFAULT_SENDER` as nodemailer's address: a string, or Flask-Mail's `[name, address]`. */
export function senderOf(config: Config): string | { name: string; address: string } {
  const sender = config.quay.MAIL_DEFAULT_SENDER;
  return Array.isArray(sender) ? { name: sender[0], address: sender[1] } : sender;
}

const transports = new WeakMap<Config, Transporter>();

/**
 * The SMTP transport of a config, made once per config; connect and socket timeouts are
 * `NOTIFICATION_SEND_TIMEOUT`. nodemailer is loaded on the first message: most processes that can
 * send mail (the front end among them) seldom or never do, and it holds ~2.5 MiB of heap once loaded.
 */
export async function mailTransportOf(config: Config): Promise<Transporter> {
  if (!transports.has(config)) {
    const { default: nodemailer } = await import('nodemailer');
    // Re-checked after the await: a concurrent first message may have made it meanwhile.
    if (transports.has(config)) return transports.get(config)!;
    const q = config.quay;
    const timeoutMs = q.NOTIFICATION_SEND_TIMEOUT * 1000;
    const transport = nodemailer.createTransport({
      host: q.MAIL_SERVER,
      port: q.MAIL_PORT,
      secure: false,
      requireTLS: q.MAIL_USE_TLS,
      ignoreTLS: !q.MAIL_USE_TLS,
      ...(q.MAIL_USE_AUTH || q.MAIL_USERNAME ? { auth: { user: q.MAIL_USERNAME ?? '', pass: q.MAIL_PASSWORD ?? '' } } : {}),
      connectionTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    });
    transports.set(config, transport);
  }
  return transports.get(config)!;
}

/**
 * Sends `message` from `MAIL_DEFAULT_SENDER`; resolves when the server accepted it, rejects with
 * nodemailer's error (connection, TLS, auth, or a refused recipient) otherwise. Callers check
 * `mailConfigured` first: what to do when mail is off differs (a failed delivery, or a skipped report).
 */
export async function sendMail(config: Config, message: MailMessage): Promise<void> {
  await (await mailTransportOf(config)).sendMail({ from: senderOf(config), ...message });
}
