/**
 * What every benchmark prints the same way: the machine's load average before and after (this
 * machine is shared, so a figure means little without it), and the last line, one JSON object.
 * A ratio is only reported when both sides ran: a peer that failed makes the bench say so and
 * exit non-zero instead of printing a ratio against nothing.
 */
import os from 'node:os';

/** Load average when the benchmark module was loaded, i.e. before it started measuring. */
const before = os.loadavg();

const fmt = (load: number[]): string => load.map((n) => n.toFixed(2)).join(' ');

/** "load average before: 1.00 2.00 3.00 (2 cores)" for the start of a run. */
export function loadLine(when: 'before' | 'after'): string {
  return `load average ${when}: ${fmt(when === 'before' ? before : os.loadavg())} (${os.availableParallelism()} cores)`;
}

/** Prints the load after the run, then `result` with the load before and after as the last line. */
export function printResult(result: Record<string, unknown>): void {
  const after = os.loadavg();
  console.log(loadLine('after'));
  console.log(JSON.stringify({ ...result, loadAverage: { before, after, cores: os.availableParallelism() } }));
}

/** Thrown when the peer side of a comparison failed: no ratio is reported. */
export class PeerFailedError extends Error {
  constructor(readonly peer: string, override readonly cause: unknown) {
    super(`${peer} failed, so no ratio is reported: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'PeerFailedError';
  }
}

/** Runs the peer side; its failure becomes PeerFailedError naming the peer. */
export async function runPeer<T>(peer: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new PeerFailedError(peer, error);
  }
}

/**
 * Ends a benchmark that failed: prints the load, then a last JSON line with `ratio: null` and the
 * reason, and sets a non-zero exit code, so `bench -- all` and anyone reading the line sees no ratio.
 * `side`: which side failed when the error does not say (a PeerFailedError names its peer).
 */
export function printFailure(benchmark: string, error: unknown, side = 'quayfleet'): void {
  process.exitCode = 1;
  console.error(error);
  printResult({
    benchmark, ratio: null,
    failed: error instanceof PeerFailedError ? `peer ${error.peer}` : side,
    error: error instanceof Error ? error.message.slice(0, 500) : String(error),
  });
}

/**
 * A benchmark that dies of an error it did not catch (either side: most benches run both sides
 * inline) still ends with the load after and a JSON line without a ratio, and exit code 1, instead
 * of a bare stack trace. bench/run.js passes the benchmark's name as argv[2].
 */
let failing = false;
process.on('uncaughtException', (error) => {
  if (failing) throw error;
  failing = true;
  printFailure(process.argv[2] ?? 'unknown', error, error instanceof PeerFailedError ? 'quayfleet' : 'unknown (uncaught error)');
  process.exit(1);
});
