/**
 * `quayfleet gc --dry-run [--namespace N] [--repository R] [--json] [--limit N]`: lists what GC
 * would collect now, changing nothing. `quayfleet gc --audit` compares storage with the database
 * (invariant 2). GC itself needs no command: the gcworker runs it continuously (seed GC-2).
 */
import type { Command } from 'commander';
import { auditStorage } from '../../shared/db/gc/audit.ts';
import { dryRun, presentDryRun, ScopeNotFoundError, type DryRunView } from '../../shared/db/gc/dry-run.ts';
import { createPool } from '../../shared/db/pool.ts';
import { createDistributedStorage } from '../../shared/storage/distributed.ts';
import { boot, fail } from '../boot.ts';
import { progressOn } from '../progress.ts';

interface GcOptions {
  dryRun?: boolean;
  audit?: boolean;
  namespace?: string;
  repository?: string;
  json?: boolean;
  limit: string;
}

/** Registers the `gc` command. */
export function registerGc(program: Command): void {
  program
    .command('gc')
    .description('inspect garbage collection: --dry-run lists what GC would collect now; --audit compares storage with the database')
    .option('--dry-run', 'list the tags, manifests and blobs GC would collect now, and bytes per namespace; changes nothing')
    .option('--audit', 'list storage objects without rows and rows without objects, in every location')
    .option('--namespace <name>', 'only this namespace (dry run)')
    .option('--repository <name>', 'only this repository: NAME with --namespace, or NAMESPACE/NAME (dry run)')
    .option('--limit <n>', 'items listed per kind', '20')
    .option('--json', 'print JSON instead of text')
    .action(async (options: GcOptions) => {
      if (!options.dryRun && !options.audit) fail('gc: pass --dry-run or --audit (collection itself runs continuously in the gcworker)');
      const booted = await boot('gc', { redis: false, allowEmbedded: true });
      const pool = createPool({ connectionString: booted.dbUri, max: 2, applicationName: 'quayfleet-gc' });
      try {
        if (options.dryRun) await printDryRun(pool, options, booted.config.imageRegistry);
        if (options.audit) await printAudit(pool, booted.config.quay, options.json ?? false);
      } catch (error) {
        if (error instanceof ScopeNotFoundError) fail(`gc: ${error.message}`);
        throw error;
      } finally {
        await pool.end();
        await booted.stopEmbedded();
      }
    });
}

async function printDryRun(pool: ReturnType<typeof createPool>, options: GcOptions, settings: { managementState: string; pruneBlobs: boolean }): Promise<void> {
  const limit = Number(options.limit);
  if (!Number.isInteger(limit) || limit < 0) fail('gc: --limit must be a whole number');
  const view = presentDryRun(await dryRun(pool, { namespace: options.namespace, repository: options.repository }), limit, settings);
  process.stdout.write(options.json ? `${JSON.stringify(view, null, 2)}\n` : formatDryRun(view));
}

/** The dry run as text: one line per namespace, a total, then the first items of each kind. */
export function formatDryRun(view: DryRunView): string {
  const lines = [`GC dry run at ${view.generated} (nothing was changed)`, view.pruningMode === 'metadata_only'
    ? `pruning mode: metadata only (managementState ${view.managementState}): the rows below would be deleted, their storage objects kept`
    : `pruning mode: metadata and blobs (managementState ${view.managementState})`, ''];
  lines.push(['NAMESPACE', 'TAGS', 'MANIFESTS', 'LEASES', 'BLOBS', 'BYTES'].join('\t'));
  for (const n of view.namespaces) lines.push([n.namespace ?? '(already unreferenced)', n.tags, n.manifests, n.leases, n.blobs, n.bytes].join('\t'));
  const t = view.totals;
  lines.push(['TOTAL', t.tags, t.manifests, t.leases, t.blobs, t.bytes].join('\t'), '');
  for (const m of view.items.manifests) lines.push(`manifest ${m.digest} (repository ${m.repositoryId})`);
  for (const b of view.items.blobs) lines.push(`blob ${b.digest} ${b.sizeBytes} bytes`);
  if (view.items.truncated) lines.push('... (more; raise --limit or use --json)');
  return `${lines.join('\n')}\n`;
}

async function printAudit(pool: ReturnType<typeof createPool>, config: Parameters<typeof createDistributedStorage>[0], json: boolean): Promise<void> {
  const storage = await createDistributedStorage(config);
  try {
    // Listing every location is the long part: a bar on a terminal, plain lines otherwise (stderr).
    const progress = progressOn('gc audit (locations listed, then the GC plan)');
    const report = await auditStorage(pool, storage, storage.locations, { onProgress: (done, total) => progress.update(done, total) })
      .finally(() => progress.stop());
    if (json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return;
    }
    for (const l of report.locations) {
      process.stdout.write(`${l.location}: ${l.objects} objects, ${l.placements} placements, ${l.orphanObjects.length} orphan, ${l.missingObjects.length} missing, ${l.pendingObjects} pending deletion\n`);
      for (const key of l.missingObjects.slice(0, 20)) process.stdout.write(`  missing ${key}\n`);
      for (const key of l.orphanObjects.slice(0, 20)) process.stdout.write(`  orphan ${key}\n`);
    }
    const c = report.collectable;
    process.stdout.write(`collectable now: ${c.tags.length} tags, ${c.manifests.length} manifests, ${c.leases.length} leases, ${c.blobs.length} blobs; ${report.pendingDeletions} pending deletions\n`);
    process.stdout.write(report.storageConsistent ? 'storage matches the database\n' : 'STORAGE DOES NOT MATCH THE DATABASE\n');
    if (!report.storageConsistent) process.exitCode = 1;
  } finally {
    await storage.close();
  }
}
