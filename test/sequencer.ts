/**
 * Runs the slowest test files first. A fresh clone (CI) has no vitest cache, and vitest's default
 * order is then "larger files first", which puts the small files that drive a whole fleet for a
 * minute or more (test/reliability/*.test.ts) last, where they run alone and make the tail of the
 * run. test/file-durations.json (written by `node scripts/test-durations.js` from the JSON report
 * `.ci/run` keeps) says how long each file took in the last measured run; files it does not know
 * run after the known slow ones, larger first.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const durations = readDurations();

function readDurations(): Record<string, number> {
  try {
    return JSON.parse(readFileSync(path.join(import.meta.dirname, 'file-durations.json'), 'utf8')) as Record<string, number>;
  } catch {
    return {};
  }
}

// A file the list does not name is assumed to take this long (most files take a few seconds).
const UNKNOWN_SECONDS = 5;

export default class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const bySize = await super.sort(files);
    const rank = new Map(bySize.map((file, index) => [file, index]));
    const seconds = (file: TestSpecification): number =>
      durations[path.relative(file.project.config.root, file.moduleId).split(path.sep).join('/')] ?? UNKNOWN_SECONDS;
    return [...files].sort((a, b) => seconds(b) - seconds(a) || rank.get(a)! - rank.get(b)!);
  }
}
