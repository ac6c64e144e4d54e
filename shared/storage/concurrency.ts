/**
 * Bounded parallelism for the drivers' fan-out work (deletes, composes). Hand-written because the
 * project has no promise-pool dependency; it is the one place such a loop lives.
 */
import type { DeleteManyResult } from './types.ts';

/** Runs `fn` over `items` with at most `limit` calls in flight; results come back in input order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return results;
}

/** Splits `items` into consecutive slices of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Deletes `keys` one request each, `limit` at a time, never throwing for a single key: the shared
 * `deleteMany` of backends without a native batch (and the fallback of those with one).
 */
export async function deleteEach(keys: readonly string[], limit: number, deleteOne: (key: string) => Promise<void>): Promise<DeleteManyResult> {
  const deleted: string[] = [];
  const failed: { key: string; error: Error }[] = [];
  await mapBounded(keys, limit, async (key) => {
    try {
      await deleteOne(key);
      deleted.push(key);
    } catch (error) {
      failed.push({ key, error: error instanceof Error ? error : new Error(String(error)) });
    }
  });
  return { deleted, failed };
}
