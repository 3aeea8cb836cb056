/** Seeds for randomised tests and benchmarks: one seed per run, taken from `NATSGATE_SEED` when
 * set, otherwise a fixed default (or a fresh random one where a test asks for it), and named in
 * the error of a failing run so the run can be repeated. No nats-server: the unit tests beside the
 * code and the micro-benchmarks import it too.
 * @module */

/** The seed of deterministic runs when `NATSGATE_SEED` is not set. */
export const DEFAULT_SEED = 20261127;

/**
 * The seed of this run: `NATSGATE_SEED` if set, else `fallback` (`"random"`: a fresh one).
 *
 * @example
 * ```ts
 * const plans = fc.sample(planArb, { seed: testSeed("random"), numRuns: 3 });
 * ```
 */
export function testSeed(fallback: number | "random" = DEFAULT_SEED): number {
  const env = Deno.env.get("NATSGATE_SEED");
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isSafeInteger(n)) {
      throw new Error(`NATSGATE_SEED must be an integer, got ${JSON.stringify(env)}`);
    }
    return n;
  }
  return fallback === "random" ? Math.floor(Math.random() * 2 ** 31) : fallback;
}

/** The error of a failing seeded run: names the seed, keeps the failure as `cause`. */
export class SeededFailure extends Error {
  /** The seed that reproduces the failure. */
  readonly seed: number;
  constructor(seed: number, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`failed with NATSGATE_SEED=${seed} (set it to repeat this run): ${why}`, { cause });
    this.name = "SeededFailure";
    this.seed = seed;
  }
}

/**
 * Runs `fn(seed)`; a failure is rethrown as {@link SeededFailure} naming the seed.
 *
 * @example
 * ```ts
 * await withSeed(testSeed(), async (seed) => {
 *   for (const frame of fc.sample(frameArb, { seed, numRuns: 400 })) await check(frame);
 * });
 * ```
 */
export async function withSeed<T>(
  seed: number,
  fn: (seed: number) => T | Promise<T>,
): Promise<T> {
  try {
    return await fn(seed);
  } catch (err) {
    throw err instanceof SeededFailure ? err : new SeededFailure(seed, err);
  }
}

/**
 * Options for `fc.assert` / `fc.sample`: this run's seed and `numRuns`.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(arb, check), seeded(1000));
 * ```
 */
export function seeded(numRuns: number, seed = testSeed()): { seed: number; numRuns: number } {
  return { seed, numRuns };
}

/**
 * A small seeded generator (mulberry32): numbers in [0, 1), the same sequence for the same seed.
 *
 * @example
 * ```ts
 * const rand = prng(testSeed());
 * const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
 * ```
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
