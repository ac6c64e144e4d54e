// Writes test/file-durations.json (seconds per test file, for test/sequencer.ts) from the JSON
// report of a whole run: `node scripts/test-durations.js [.ci/test-results.json]`. Files under 5 s
// are left out: the sequencer treats unknown files as short.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const report = JSON.parse(readFileSync(process.argv[2] ?? '.ci/test-results.json', 'utf8'));
const entries = report.testResults
  .map((f) => [path.relative(process.cwd(), f.name).split(path.sep).join('/'), Math.round((f.endTime - f.startTime) / 1000)])
  .filter(([, seconds]) => seconds >= 5)
  .sort((a, b) => b[1] - a[1]);
writeFileSync('test/file-durations.json', JSON.stringify(Object.fromEntries(entries), null, 2) + '\n');
console.log(`test/file-durations.json: ${entries.length} files of 5 s or more`);
