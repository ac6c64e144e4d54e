/**
 * E-mail addresses a repository may notify (Quay's endpoints/api/repoemail.py and web.py's
 * /authrepoemail), when FEATURE_MAILING is on (404 otherwise, Quay's show_if):
 *
 * - `GET /api/v1/repository/{ns}/{repo}/authorizedemail/{email}`: the authorization, 404 when never
 *   asked for; repository admins only;
 * - `POST` on the same path: an unconfirmed (or new) address gets a mail with a confirmation
 *   link; a confirmed one is answered as it is. Unlike Quay, the answer never carries the code: an
 *   admin could otherwise confirm an address they do not own;
 * - `GET /authrepoemail?code=`: the link, which confirms the address (400 for an unknown code).
 *
 * An `email` repository notification can only be created for a confirmed address (notifications.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { confirmEmailCode, findAuthorizedEmail, issueEmailConfirmationCode } from '../../shared/db/authorized-emails.ts';
import { mailConfigured, sendMail } from '../../shared/mail/smtp.ts';
import { ApiError, apiErrors } from '../errors.ts';
import { parseInput, repositoryParams, requireRepositoryRole } from './common.ts';

const emailParams = repositoryParams.extend({ email: z.email({ error: 'Invalid e-mail address' }) });

/** Registers the two /api/v1 routes (inside the API scope). */
export async function registerAuthorizedEmailRoutes(app: FastifyInstance): Promise<void> {
  if (!app.deps.config.quay.FEATURE_MAILING) return;
  const path = '/repository/:namespace/:repository/authorizedemail/:email';

  app.get(path, async (request) => {
    const { repository, email } = await adminOf(request);
    const record = await findAuthorizedEmail(app.deps.db, repository.id, email);
    if (!record) throw apiErrors.notFound();
    return record;
  });

  app.post(path, async (request) => {
    const { repository, email } = await adminOf(request);
    const existing = await findAuthorizedEmail(app.deps.db, repository.id, email);
    if (existing?.confirmed) return existing;
    const { config } = app.deps;
    if (!mailConfigured(config)) throw unavailable('Mail is not configured on this registry (MAIL_SERVER)');
    const code = await issueEmailConfirmationCode(app.deps.db, repository.id, email);
    const q = config.quay;
    const link = `${q.PREFERRED_URL_SCHEME}://${q.SERVER_HOSTNAME}/authrepoemail?code=${code}`;
    const full = `${repository.namespace}/${repository.name}`;
    try {
      await sendMail(config, {
        to: email,
        subject: `Please verify your e-mail address for repository ${full}`,
        text: `This address was asked to receive notifications for repository ${full}. To allow it, open ${link}\nIf you did not expect this, ignore this message.`,
        html: `<p>This address was asked to receive notifications for repository <b>${escapeHtml(full)}</b>.</p>`
          + `<p><a href="${escapeHtml(link)}">Verify e-mail</a></p><p>If you did not expect this, ignore this message.</p>`,
      });
    } catch (error) {
      request.log.warn({ err: error, repository: full }, 'could not send the e-mail authorization message');
      throw unavailable(`Could not send the verification e-mail: ${(error as Error).message}`);
    }
    return (await findAuthorizedEmail(app.deps.db, repository.id, email))!;
  });
}

/** Registers `GET /authrepoemail?code=` at the root (the mailed link). */
export async function registerEmailConfirmationRoute(app: FastifyInstance): Promise<void> {
  if (!app.deps.config.quay.FEATURE_MAILING) return;
  app.get('/authrepoemail', async (request, reply) => {
    const code = (request.query as { code?: unknown }).code;
    const record = typeof code === 'string' && code.length > 0 && code.length <= 128 ? await confirmEmailCode(app.deps.db, code) : undefined;
    reply.type('text/html; charset=utf-8');
    if (!record) return reply.status(400).send(page('Invalid confirmation code.'));
    const q = app.deps.config.quay;
    const full = `${record.namespace}/${record.repository}`;
    const href = `${q.PREFERRED_URL_SCHEME}://${q.SERVER_HOSTNAME}/repository/${full}`;
    return reply.status(200).send(page(
      `Your E-mail address has been authorized to receive notifications for repository <a href="${escapeHtml(href)}">${escapeHtml(full)}</a>.`));
  });
}

async function adminOf(request: FastifyRequest) {
  const params = parseInput(emailParams, request.params);
  const { repository } = await requireRepositoryRole(request, params.namespace, params.repository, 'admin');
  return { repository, email: params.email };
}

function unavailable(message: string): ApiError {
  return new ApiError(503, 'service_unavailable', message);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(message: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Quay</title></head><body><p>${message}</p></body></html>`;
}
