/**
 * Progress of a long CLI operation (replays, drops, backfills, audits, location removals) on
 * stderr, so stdout stays for results: a cli-progress bar on a terminal, plain lines otherwise
 * (logs, CI, pipes), at most one per tenth of the work plus the last, so a 10 000-item replay
 * does not write 10 000 lines.
 */
import type { Writable } from 'node:stream';
import { SingleBar } from 'cli-progress';

/** Reports `done` of `total`; `stop()` ends the bar (or writes nothing more). */
export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

/** A reporter for the operation `label` writing to `stream` (stderr by default). */
export function progressOn(label: string, stream: Writable & { isTTY?: boolean } = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new SingleBar({ stream, format: `${label} [{bar}] {percentage}% | {value}/{total}`, hideCursor: true });
    let started = false;
    return {
      update(done, total) {
        if (!started) bar.start(total, done);
        else bar.update(done);
        started = true;
      },
      stop: () => { if (started) bar.stop(); },
    };
  }
  let lastTenth = -1;
  return {
    update(done, total) {
      const tenth = total === 0 ? 10 : Math.floor((done * 10) / total);
      if (tenth === lastTenth && done !== total) return;
      lastTenth = tenth;
      stream.write(`${label}: ${done}/${total}\n`);
    },
    stop: () => undefined,
  };
}
