/**
 * The import arrows point down: bin/, registry/ and workers/ sit on shared/ and queues/; inside
 * shared/, runtime/ sits on db/ and storage/, which sit on metrics/ and config/. eslint.config.js
 * holds the rules; these cases prove each rule fires on an upward import and stays quiet on a
 * downward one, and that the project itself has no upward arrow.
 */
import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const eslint = new ESLint({ cwd: root });

async function restrictedImports(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('import layers', () => {
  it.each([
    ['shared/db/gc/x.ts', "import { registry } from '../../runtime/metrics-server.ts';"],
    ['shared/db/x.ts', "import { sleep } from '../runtime/shutdown.ts';"],
    ['shared/storage/x.ts', "import { runWorker } from '../runtime/run-worker.ts';"],
    ['shared/storage/drivers/x.ts', "import { x } from '../../runtime/health.ts';"],
    ['shared/metrics/x.ts', "import { pool } from '../db/pool.ts';"],
    ['shared/config/x.ts', "import { x } from '../storage/index.ts';"],
    ['shared/runtime/x.ts', "import { x } from '../../workers/index.ts';"],
    ['shared/db/x.ts', "import { x } from '../../registry/app.ts';"],
    ['shared/x.ts', "import { x } from '../bin/boot.ts';"],
    ['queues/x.ts', "import { x } from '../workers/gcworker/index.ts';"],
  ])('%s may not %s', async (file, code) => {
    expect(await restrictedImports(file, code)).toHaveLength(1);
  });

  it.each([
    ['shared/db/gc/x.ts', "import { client } from '../../metrics/index.ts';"],
    ['shared/storage/x.ts', "import { client } from '../metrics/index.ts';"],
    ['shared/runtime/x.ts', "import { x } from '../db/pool.ts';"],
    ['workers/gcworker/x.ts', "import { x } from '../../shared/runtime/worker.ts';"],
    ['registry/x.ts', "import { client } from '../shared/metrics/index.ts';"],
  ])('%s may %s', async (file, code) => {
    expect(await restrictedImports(file, code)).toEqual([]);
  });

  it('the project has no upward import in shared/ and queues/', async () => {
    const results = await eslint.lintFiles(['shared/**/*.ts', 'queues/**/*.ts']);
    const upward = results.flatMap((r) =>
      r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => `${path.relative(root, r.filePath)}:${m.line} ${m.message}`),
    );
    expect(upward).toEqual([]);
  });
});
