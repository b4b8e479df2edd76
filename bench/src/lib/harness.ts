/**
 * What a benchmark file exports and how it measures. A benchmark is one file
 * `src/<name>.ts` whose default export is a `Benchmark`; `run.mjs` bundles
 * and runs every such file (or the ones named on the command line).
 */

export interface BenchmarkResult {
  /** What was measured, e.g. "x86 4-level page walks". */
  label: string;
  /** Operations per second (or the figure `unit` names). */
  value: number;
  unit: string;
  /** Optional extra detail (ratio to a peer, parameters). */
  detail?: string;
}

export interface BenchmarkContext {
  /** Target measuring time of one `measure` call, in seconds. */
  readonly seconds: number;
  report(result: BenchmarkResult): void;
}

export interface Benchmark {
  /** Short name; the file name without `.ts` by convention. */
  name: string;
  description: string;
  run(context: BenchmarkContext): void | Promise<void>;
}

/**
 * Calls `body(iterations)` with growing iteration counts until one call
 * takes long enough to time, then repeats for about `seconds` and returns
 * operations per second over the best of the timed rounds. `body` returns
 * the number of operations it performed (it may do several per iteration);
 * it should store a result into `sink` so that the JIT cannot drop the work.
 */
/** Where benchmarks store results the optimizer must not discard. */
export const sink = { value: 0 };

export function measure(seconds: number, body: (iterations: number) => number): number {
  let iterations = 1;
  // Warm up and size a round to about a tenth of the budget.
  for (;;) {
    const start = performance.now();
    body(iterations);
    const elapsed = (performance.now() - start) / 1000;
    if (elapsed > seconds / 10 || iterations >= 2 ** 30) break;
    iterations *= elapsed < seconds / 1000 ? 10 : 2;
  }
  let best = 0;
  const deadline = performance.now() + seconds * 1000;
  do {
    const start = performance.now();
    const operations = body(iterations);
    const elapsed = (performance.now() - start) / 1000;
    best = Math.max(best, operations / elapsed);
  } while (performance.now() < deadline);
  return best;
}
