import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressOn } from './progress.ts';

/** A stream that keeps what is written, and says whether it is a terminal. */
function capture(isTTY: boolean): Writable & { isTTY: boolean; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk: Buffer, _encoding, done) { chunks.push(chunk.toString()); done(); } });
  return Object.assign(stream, { isTTY, text: () => chunks.join(''), cursorTo: () => true, clearLine: () => true, moveCursor: () => true, columns: 100 });
}

describe('progressOn', () => {
  it('writes a plain line per tenth of the work, and the last, when not on a terminal', () => {
    const stream = capture(false);
    const progress = progressOn('dlq replay notification', stream);
    for (let done = 0; done <= 1000; done += 1) progress.update(done, 1000);
    progress.stop();
    const lines = stream.text().trimEnd().split('\n');
    expect(lines).toHaveLength(11);
    expect(lines[0]).toBe('dlq replay notification: 0/1000');
    expect(lines.at(-1)).toBe('dlq replay notification: 1000/1000');
  });

  it('draws a bar on a terminal', () => {
    const stream = capture(true);
    const progress = progressOn('dlq drop repositorygc', stream);
    progress.update(0, 4);
    progress.update(4, 4);
    progress.stop();
    // Redrawn in place (cursor to column 1), not a new line per update.
    expect(stream.text()).toContain('\x1b[1Gdlq drop repositorygc [========================================] 100% | 4/4');
  });
});
