/**
 * What one GC or purge run deleted, as it happens. The core functions in this folder report every
 * committed deletion here; the workers forward the figures to Prometheus (`metrics.ts`) and tests
 * read the totals. Table names are Quay's model class names, the `table` label values of
 * `quay_gc_table_rows_deleted_total`, so Quay dashboards keep working.
 */

/** Quay's model names for the tables GC and purges delete from (the `table` metric label). */
export type GcTable =
  | 'Tag' | 'Manifest' | 'ManifestBlob' | 'ManifestChild' | 'ManifestLabel' | 'Label'
  | 'UploadedBlob' | 'ImageStorage' | 'ImageStoragePlacement'
  | 'BlobUpload' | 'RepositoryPermission' | 'RepositoryNotification' | 'RepoMirrorConfig' | 'RepoMirrorRule'
  | 'QuotaRepositorySize' | 'DeletedRepository' | 'Repository' | 'DeletedNamespace' | 'User';

/** Receives each committed deletion; the Prometheus listener lives in `metrics.ts`. */
export interface GcListener {
  rowsDeleted(table: GcTable, count: number): void;
  /** Storage objects removed (one per placement) and their bytes. */
  objectsDeleted(count: number, bytes: number): void;
  repositoryPurged(): void;
  namespacePurged(): void;
}

/** Running totals of one run, forwarding every event to an optional listener. */
export class GcTally implements GcListener {
  /** Rows deleted per table. */
  readonly rows = new Map<GcTable, number>();
  objects = 0;
  bytes = 0;
  repositories = 0;
  namespaces = 0;

  constructor(private readonly listener?: GcListener) {}

  rowsDeleted(table: GcTable, count: number): void {
    if (count <= 0) return;
    this.rows.set(table, (this.rows.get(table) ?? 0) + count);
    this.listener?.rowsDeleted(table, count);
  }

  objectsDeleted(count: number, bytes: number): void {
    if (count <= 0) return;
    this.objects += count;
    this.bytes += bytes;
    this.listener?.objectsDeleted(count, bytes);
  }

  repositoryPurged(): void {
    this.repositories += 1;
    this.listener?.repositoryPurged();
  }

  namespacePurged(): void {
    this.namespaces += 1;
    this.listener?.namespacePurged();
  }

  /**
   * Replays these totals into `target`. Transactions count into a fresh tally and replay it only
   * after COMMIT, so a rolled-back transaction never shows up in the metrics.
   */
  replayInto(target: GcListener): void {
    for (const [table, count] of this.rows) target.rowsDeleted(table, count);
    target.objectsDeleted(this.objects, this.bytes);
    for (let i = 0; i < this.repositories; i++) target.repositoryPurged();
    for (let i = 0; i < this.namespaces; i++) target.namespacePurged();
  }

  /** Rows deleted from `table` so far. */
  count(table: GcTable): number {
    return this.rows.get(table) ?? 0;
  }

  /** Plain object for log lines. */
  toJSON(): Record<string, unknown> {
    return { rows: Object.fromEntries(this.rows), objects: this.objects, bytes: this.bytes, repositories: this.repositories, namespaces: this.namespaces };
  }
}
