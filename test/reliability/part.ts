/**
 * The contract between the reliability runner (test/reliability/run.ts) and each part of it:
 * a part runs for `minutes` (or its short CI form) and returns its figures.
 * (Same shapes as the runner's types.ts; kept here until that file is on main.)
 */

/** What the runner hands a part. */
export interface PartOptions {
  /** Wall-clock budget of the long form, in minutes. */
  minutes: number;
  /** The short CI form: a fixed, small number of inputs. */
  short: boolean;
  /** Progress lines (the runner prints them). */
  log(line: string): void;
}

/** A part's figures; `ok` false when an invariant failed. */
export type PartFigures = Record<string, unknown> & { ok: boolean; dataLost: number };
