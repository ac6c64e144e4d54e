/**
 * The authorization contract the /v2 and /api/v1 routes use. Implemented by the auth module
 * (registry/auth/*): bearer tokens issued by /v2/auth carry the granted repository actions, as in
 * Docker token auth; the Quay API takes a Basic credential or an app token.
 *
 * Glossary:
 * - principal: who is calling (anonymous, a user, a robot, a user through an app token).
 * - action: `pull`, `push`, `delete` on one repository (`*` grants all three).
 * - scope: `repository:<namespace>/<repo>:<actions>` as Docker clients request it.
 */
import type { FastifyRequest } from 'fastify';
import type { RepositoryRow } from '../../shared/db/repositories.ts';

export type RepositoryAction = 'pull' | 'push' | 'delete';

export interface Principal {
  readonly kind: 'anonymous' | 'user' | 'robot' | 'apptoken';
  /** Namespace id of the user or robot; undefined for anonymous. */
  readonly id?: number;
  /** Username (`ns+robot` for robots); undefined for anonymous. */
  readonly username?: string;
  /** Listed in SUPER_USERS. */
  readonly superuser: boolean;
}

export const ANONYMOUS: Principal = { kind: 'anonymous', superuser: false };

/** The repository a request may act on, and who acts. */
export interface RepositoryAccess {
  readonly principal: Principal;
  readonly repository: RepositoryRow;
}
