/**
 * The delivery methods (Quay's notificationmethod.py): webhook, Slack, e-mail, and
 * quay_notification (in-app rows). Each resolves when the target accepted the event and throws
 * DeliveryFailedError when it did not.
 */
import type { Config } from '../../shared/config/index.ts';
import type { Queryable } from '../../shared/db/pool.ts';
import { mailConfigured, sendMail } from '../../shared/mail/smtp.ts';
import type { SsrfPolicy } from '../../shared/net/ssrf.ts';
import { METHOD_CONFIGS, type NotificationMethod } from '../../shared/notifications/methods.ts';
import { renderTemplate } from '../../shared/notifications/template.ts';
import { htmlMessageOf, levelOf, slackMarkdownOf, summaryOf } from './events.ts';
import { DeliveryFailedError, postJson } from './post-json.ts';
import type { NotificationTarget } from './targets.ts';

/** One delivery: the notification, the event, and what the process provides. */
export interface Delivery {
  readonly target: NotificationTarget;
  readonly event: string;
  readonly eventData: Record<string, unknown>;
  readonly db: Queryable;
  readonly config: Config;
  readonly policy: SsrfPolicy;
  readonly signal: AbortSignal;
}

type Method = (delivery: Delivery) => Promise<void>;

function configOf<M extends NotificationMethod>(method: M, delivery: Delivery) {
  const result = METHOD_CONFIGS[method].safeParse(delivery.target.config);
  if (!result.success) throw new DeliveryFailedError(`invalid ${method} config: ${result.error.issues[0]?.message ?? 'unknown'}`);
  return result.data as ReturnType<(typeof METHOD_CONFIGS)[M]['parse']>;
}

const timeoutOf = (config: Config): number => config.quay.NOTIFICATION_SEND_TIMEOUT * 1000;

/** POST of the event_data itself, or of the template applied to it. */
const webhook: Method = async (delivery) => {
  const { url, template } = configOf('webhook', delivery);
  let body: unknown = delivery.eventData;
  if (template) {
    try {
      body = renderTemplate(template, delivery.eventData);
    } catch (error) {
      throw new DeliveryFailedError(`webhook template: ${(error as Error).message}`, { cause: error });
    }
  }
  await postJson(url, body, { policy: delivery.policy, timeoutMs: timeoutOf(delivery.config), signal: delivery.signal });
};

const SLACK_COLOURS = { info: '#ffffff', primary: 'good', success: 'good', warning: 'warning', error: 'danger' } as const;

/** Quay's Slack message: summary as text, the HTML message in mrkdwn as one coloured attachment. */
const slack: Method = async (delivery) => {
  const { url } = configOf('slack', delivery);
  const summary = summaryOf(delivery.event, delivery.eventData);
  const body = {
    text: summary,
    username: 'quayiobot',
    attachments: [{
      fallback: summary,
      text: slackMarkdownOf(htmlMessageOf(delivery.event, delivery.eventData)),
      color: SLACK_COLOURS[levelOf(delivery.event, delivery.eventData)],
      mrkdwn_in: ['text'],
    }],
  };
  await postJson(url, body, { policy: delivery.policy, timeoutMs: timeoutOf(delivery.config), signal: delivery.signal });
};

/**
 * An SMTP message: subject the summary, body the HTML message. A repository notification mails its
 * configured (confirmed) address; a namespace notification mails the namespace's own address (an
 * organization's contact address, else every admin's), as Quay does.
 */
const email: Method = async (delivery) => {
  const q = delivery.config.quay;
  if (!mailConfigured(delivery.config)) throw new DeliveryFailedError('mailing is not configured (FEATURE_MAILING, MAIL_SERVER)');
  const to = delivery.target.kind === 'namespace' ? await namespaceRecipients(delivery) : [configOf('email', delivery).email];
  try {
    await sendMail(delivery.config, {
      to: to.join(', '),
      subject: summaryOf(delivery.event, delivery.eventData),
      html: `<p>${htmlMessageOf(delivery.event, delivery.eventData)}</p>`,
    });
  } catch (error) {
    throw new DeliveryFailedError(`SMTP ${q.MAIL_SERVER}:${q.MAIL_PORT}: ${(error as Error).message}`, { cause: error });
  }
};

async function namespaceRecipients(delivery: Delivery): Promise<string[]> {
  const { target } = delivery;
  if (target.namespaceEmail) return [target.namespaceEmail];
  const { rows } = await delivery.db.query<{ email: string }>(
    `SELECT DISTINCT u.email FROM team t JOIN teammember m ON m.team_id = t.id JOIN namespace u ON u.id = m.user_id
     WHERE t.organization_id = $1 AND t.role = 'admin' AND u.email IS NOT NULL AND u.email <> '' ORDER BY u.email`, [target.namespaceId]);
  if (rows.length === 0) throw new DeliveryFailedError(`namespace ${target.namespace} has no e-mail address and no admin with one`);
  return rows.map((r) => r.email);
}

/** In-app rows (`notification`), one per target user: the user, the organization, or a team's members. */
const quayNotification: Method = async (delivery) => {
  const { target } = configOf('quay_notification', delivery);
  const { rows } = await delivery.db.query<{ id: number }>(
    target.kind === 'team'
      ? `SELECT m.user_id AS id FROM team t JOIN teammember m ON m.team_id = t.id WHERE t.organization_id = $1 AND t.name = $2`
      : target.kind === 'org'
        ? `SELECT id FROM namespace WHERE id = $1 AND username = $2 AND organization`
        : `SELECT id FROM namespace WHERE username = $2 AND NOT robot AND NOT organization AND $1::bigint IS NOT NULL`,
    [delivery.target.namespaceId, target.name]);
  if (rows.length === 0) throw new DeliveryFailedError(`quay_notification target ${target.kind} ${target.name} not found`);
  await delivery.db.query(
    `INSERT INTO notification (kind, target_id, metadata_json) SELECT $1, unnest($2::bigint[]), $3`,
    [delivery.event, rows.map((r) => r.id), JSON.stringify(delivery.eventData)]);
};

/** The methods by Quay's name. */
export const METHODS: Readonly<Record<NotificationMethod, Method>> = { webhook, slack, email, quay_notification: quayNotification };
