// The contract between the reliability runner (run.ts) and its parts. Each part lives in
// test/reliability/<part>/index.ts and exports `run(options: PartOptions): Promise<PartFigures>`.
// The long form is `npm run reliability -- --minutes N [--parts a,b]`; the short form in CI is one
// vitest file per part (test/reliability/<part>.test.ts) calling run({ short: true, minutes: ~0.5 }).

export interface PartOptions {
  /** How long the part should drive load, in minutes (the short form passes about 0.5). */
  minutes: number;
  /** True in CI's short form: fewer clients, fewer kills, smaller content; stay under ~60 s wall. */
  short: boolean;
  /** One progress line (the runner prefixes it with the part's name). */
  log(line: string): void;
}

/**
 * A part's figures: whatever it measured (counts, durations, recovery times...) plus the two every
 * part must report. `ok` is false when any invariant failed; `dataLost` counts acknowledged content
 * that could not be read back (it must be 0). The runner exits 1 if any part has ok:false or
 * dataLost > 0. Keep values JSON-serialisable (numbers, strings, arrays, plain objects).
 */
export type PartFigures = Record<string, unknown> & { ok: boolean; dataLost: number };

export type PartRun = (options: PartOptions) => Promise<PartFigures>;

/** The parts, in the order the runner runs them by default. */
export const PART_NAMES = ['soak', 'kill', 'faults', 'fuzz', 'security'] as const;
export type PartName = (typeof PART_NAMES)[number];
