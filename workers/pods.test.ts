/**
 * Each worker Deployment in deploy/kubernetes/workers names, in its header, the queues its pod
 * consumes (and KEDA scales it on them); `quayfleet worker <pod>` must run a consumer for each.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { workersOfPod } from './index.ts';

const dir = path.resolve(import.meta.dirname, '../deploy/kubernetes/workers');
const pods = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((file) => {
  const header = /^# queue\(s\): ([^\s].*?)\s{2,}gate:/m.exec(fs.readFileSync(path.join(dir, file), 'utf8'));
  return { pod: file.replace(/\.yaml$/, ''), queues: header ? header[1]!.split(/,\s*/).sort() : [] };
});

describe('worker pods', () => {
  it('finds every Deployment header', () => {
    expect(pods.length).toBeGreaterThan(0);
    for (const { pod, queues } of pods) expect(queues, pod).not.toEqual([]);
  });

  it.each(pods)('$pod consumes exactly the queues its Deployment names', ({ pod, queues }) => {
    expect(workersOfPod(pod).map((w) => w.queue.name).sort()).toEqual(queues);
  });
});
