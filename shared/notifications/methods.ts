/**
 * The delivery methods a notification can use and the shape of each one's `config` (Quay's
 * notifications/notificationmethod.py). The API validates a new notification with these; the
 * notification worker reads the same shapes when it delivers.
 */
import { z } from 'zod';
import { parseTemplate, TemplateError } from './template.ts';

/** Methods quayfleet delivers. Quay's flowdock and hipchat target services that no longer exist. */
export const NOTIFICATION_METHODS = ['webhook', 'slack', 'email', 'quay_notification'] as const;
export type NotificationMethod = (typeof NOTIFICATION_METHODS)[number];

/** Whether `name` is a method quayfleet delivers. */
export function isNotificationMethod(name: string): name is NotificationMethod {
  return (NOTIFICATION_METHODS as readonly string[]).includes(name);
}

/** `webhook`: `{url, template?}`; template is JSON text with `${path}` expressions. */
export const webhookConfig = z.looseObject({
  url: z.string({ error: 'Missing webhook URL' }).min(1, 'Missing webhook URL'),
  template: z.string().optional().nullable(),
});

/** `slack`: `{url}`, Slack's incoming-webhook URL. */
export const slackConfig = z.looseObject({
  url: z.string({ error: 'Missing Slack Callback URL' }).min(1, 'Missing Slack Callback URL'),
});

/** `email`: `{email}`. */
export const emailConfig = z.looseObject({
  email: z.email({ error: 'Missing e-mail address' }),
});

/** `quay_notification`: `{target: {kind: user|org|team, name}}`. */
export const quayNotificationConfig = z.looseObject({
  target: z.object({ kind: z.enum(['user', 'org', 'team']), name: z.string().min(1) }, { error: 'Missing target' }),
});

/** The config schema of each method. */
export const METHOD_CONFIGS = {
  webhook: webhookConfig,
  slack: slackConfig,
  email: emailConfig,
  quay_notification: quayNotificationConfig,
} as const;

/** A method's config that does not validate; the message is the API's 400 text. */
export class MethodConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MethodConfigError';
  }
}

/** Validates `config` for `method` (the shape, and a webhook template's syntax); throws MethodConfigError. */
export function validateMethodConfig<M extends NotificationMethod>(method: M, config: unknown): z.output<(typeof METHOD_CONFIGS)[M]> {
  const result = METHOD_CONFIGS[method].safeParse(config ?? {});
  if (!result.success) throw new MethodConfigError(result.error.issues[0]?.message ?? 'Invalid config');
  if (method === 'webhook') {
    const template = (result.data as z.output<typeof webhookConfig>).template;
    if (template) {
      try {
        parseTemplate(template);
      } catch (error) {
        throw new MethodConfigError(error instanceof TemplateError ? error.message : 'Invalid template');
      }
    }
  }
  return result.data as z.output<(typeof METHOD_CONFIGS)[M]>;
}
