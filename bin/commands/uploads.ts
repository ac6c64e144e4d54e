/**
 * `quayfleet uploads list [--json] [--limit N]`: abandoned upload sessions and what the storage
 * sweeps would remove, changing nothing. `quayfleet uploads clean [--dry-run] [--location NAME]`:
 * runs every step of the upload cleanup now (what the blobuploadcleanupworker does hourly).
 */
import type { Command } from 'commander';
import { createPool } from '../../shared/db/pool.ts';
import { createDistributedStorage } from '../../shared/storage/distributed.ts';
import { runUploadCleanup, type CleanupReport } from '../../workers/chunkcleanupworker/cleanup.ts';
import { uploadCleanupSettings } from '../../workers/chunkcleanupworker/settings.ts';
import { boot, fail } from '../boot.ts';

interface UploadsOptions {
  json?: boolean;
  limit?: string;
  dryRun?: boolean;
  location?: string;
}

/** Registers the `uploads` command and its `list` and `clean` subcommands. */
export function registerUploads(program: Command): void {
  const uploads = program.command('uploads').description('abandoned uploads: list them, or clean them now');
  uploads
    .command('list')
    .description('list abandoned upload sessions and the stale multipart uploads and uploads-folder objects the cleanup would remove; changes nothing')
    .option('--limit <n>', 'items listed per kind', '20')
    .option('--json', 'print JSON instead of text')
    .action((options: UploadsOptions) => run({ ...options, dryRun: true }));
  uploads
    .command('clean')
    .description('cancel abandoned upload sessions, abort stale multipart uploads and sweep the uploads folder now')
    .option('--dry-run', 'report what would be removed; change nothing')
    .option('--location <name>', 'sweep only this storage location')
    .option('--limit <n>', 'items listed per kind', '20')
    .option('--json', 'print JSON instead of text')
    .action((options: UploadsOptions) => run(options));
}

async function run(options: UploadsOptions): Promise<void> {
  const limit = Number(options.limit ?? '20');
  if (!Number.isInteger(limit) || limit < 0) fail('uploads: --limit must be a whole number');
  const booted = await boot('uploads', { redis: false, allowEmbedded: true });
  const { config } = booted;
  const storage = await createDistributedStorage(config.quay, { preferenceOverride: config.storagePreferenceOverride });
  const pool = createPool({ connectionString: booted.dbUri, max: 2, applicationName: 'quayfleet-uploads' });
  try {
    if (options.location !== undefined && !storage.locations.includes(options.location)) {
      fail(`uploads: unknown storage location "${options.location}"; configured: ${storage.locations.join(', ')}`);
    }
    const settings = uploadCleanupSettings(config);
    const report = await runUploadCleanup(pool, storage, settings, {
      nowMs: Date.now(), sessions: true, folder: settings.cleanFolder, multipart: settings.cleanMultipart,
      location: options.location, dryRun: options.dryRun ?? false, keepItems: limit,
    });
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  } finally {
    await pool.end();
    await storage.close();
    await booted.stopEmbedded();
  }
}

/** The report as text: one line per step, then the first items of each. */
export function formatReport(report: CleanupReport): string {
  const verb = report.dryRun ? 'would remove' : 'removed';
  const s = report.sessions;
  const lines = [`${report.dryRun ? 'Upload cleanup dry run (nothing was changed)' : 'Upload cleanup'}`, ''];
  lines.push(`abandoned sessions: ${verb} ${s.sessions} (${s.bytes} bytes)${report.dryRun ? '' : `, ${s.objects} objects, ${s.failed} failed`}`);
  for (const session of s.listed) {
    lines.push(`  session ${session.uuid} ${session.repository} ${session.location} ${session.byteCount} bytes, last chunk ${session.updated.toISOString()}`);
  }
  for (const l of report.locations) {
    if (l.multipart) lines.push(`${l.location}: stale multipart uploads: ${verb} ${l.multipart.aborted}, kept ${l.multipart.owned} owned by sessions, ${l.multipart.failed} failed`);
    for (const item of l.multipart?.items ?? []) lines.push(`  multipart ${item.key} started ${item.at.toISOString()}`);
    if (l.uncommitted && l.uncommitted.objects + l.uncommitted.owned + l.uncommitted.failed > 0) lines.push(`${l.location}: uncommitted blocks of ended writes: ${verb} ${l.uncommitted.objects} blobs (${l.uncommitted.bytes} bytes), kept ${l.uncommitted.owned} owned by sessions, ${l.uncommitted.failed} failed`);
    for (const item of l.uncommitted?.items ?? []) lines.push(`  uncommitted ${item.key} ${item.bytes} bytes, first block ${item.at.toISOString()}`);
    if (l.temporary?.files) lines.push(`${l.location}: temp files of interrupted writes: removed ${l.temporary.files} (${l.temporary.bytes} bytes)`);
    if (l.folder) lines.push(`${l.location}: uploads folder: ${verb} ${l.folder.objects} objects (${l.folder.bytes} bytes), kept ${l.folder.owned} owned by sessions, ${l.folder.failed} failed`);
    for (const item of l.folder?.items ?? []) lines.push(`  object ${item.key} ${item.bytes} bytes, modified ${item.at.toISOString()}`);
  }
  return `${lines.join('\n')}\n`;
}
