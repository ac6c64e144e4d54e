/**
 * `repositorygc`: purge a repository marked for deletion (Quay's RepositoryGCWorker). Quay's body:
 * `{marker_id, original_name}` under the canonical name `repositorygc/<namespace>/<repo_id>/`.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, KEEP_COMPLETED } from './contract.ts';
import { name, rowId } from './fields.ts';

/** The `repositorygc` contract: one purge job per repository marked for deletion. */
export const repositorygc = defineQueue({
  name: 'repositorygc',
  version: 1,
  payload: z.object({
    v: z.literal(1),
    repositoryId: rowId,
    /** The `deletedrepository` row; the purge is over when it is gone. */
    markerId: rowId,
    /** The repository name before the mark renamed it, for logs. */
    originalName: name,
    /** The namespace name, for logs. */
    namespace: name,
  }),
  // Repository ids are never reused: keep completed jobs for history.
  jobOptions: jobOptions({ removeOnComplete: KEEP_COMPLETED }),
  dedupeId: (p) => `repositorygc/${p.repositoryId}`,
  logBindings: (p) => ({ repositoryId: p.repositoryId, repository: `${p.namespace}/${p.originalName}` }),
});

/** A `repositorygc` payload. */
export type RepositoryGcPayload = z.output<typeof repositorygc.payload>;
