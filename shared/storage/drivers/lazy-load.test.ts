/**
 * A registry on LocalStorage never loads the cloud SDKs: each pod saves their memory and start-up
 * time. Measured in child processes, as the RSS a Local-only fleet process has against one that
 * loaded every driver (about 51 MiB apart when measured on Node 20).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = async (mode: 'local' | 'all'): Promise<number> => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', 'shared/storage/drivers/lazy-load-child.ts', mode]);
  return (JSON.parse(stdout.trim().split('\n').at(-1)!) as { rss: number }).rss;
};

describe('driver loading', () => {
  it('loads no cloud SDK for a LocalStorage-only configuration', async () => {
    const [local, all] = [await run('local'), await run('all')];
    expect(all - local).toBeGreaterThan(25 * 1024 * 1024);
  });
});
