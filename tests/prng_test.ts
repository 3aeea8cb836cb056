/** The seed module of the randomised tests: NATSGATE_SEED is honoured (and a bad one refused),
 * a failing run names its seed, the generator repeats itself for a seed.
 * @module */

import assert from "node:assert/strict";
import { DEFAULT_SEED, prng, SeededFailure, testSeed, withSeed } from "./_prng.ts";

function withEnv<T>(value: string | undefined, fn: () => T): T {
  const before = Deno.env.get("NATSGATE_SEED");
  if (value === undefined) Deno.env.delete("NATSGATE_SEED");
  else Deno.env.set("NATSGATE_SEED", value);
  try {
    return fn();
  } finally {
    if (before === undefined) Deno.env.delete("NATSGATE_SEED");
    else Deno.env.set("NATSGATE_SEED", before);
  }
}

Deno.test("testSeed: NATSGATE_SEED, else the fallback; a bad value is refused", () => {
  withEnv(undefined, () => {
    assert.equal(testSeed(), DEFAULT_SEED);
    assert.equal(testSeed(7), 7);
    assert.ok(Number.isSafeInteger(testSeed("random")));
  });
  withEnv("42", () => {
    assert.equal(testSeed(), 42);
    assert.equal(testSeed("random"), 42);
  });
  withEnv("4x2", () => assert.throws(() => testSeed(), /NATSGATE_SEED must be an integer/));
});

Deno.test("withSeed: a failure names the seed and keeps the cause", async () => {
  const cause = new Error("boom");
  const err = await withSeed(1234, () => {
    throw cause;
  }).then(() => undefined, (e) => e);
  assert.ok(err instanceof SeededFailure);
  assert.match(err.message, /NATSGATE_SEED=1234.*boom/);
  assert.equal(err.cause, cause);
  assert.equal(await withSeed(5, (seed) => seed * 2), 10);
});

Deno.test("prng: the same sequence for the same seed, in [0, 1)", () => {
  const take = (seed: number) => Array.from({ length: 100 }, prng(seed));
  assert.deepEqual(take(9), take(9));
  assert.notDeepEqual(take(9), take(10));
  assert.ok(take(9).every((x) => x >= 0 && x < 1));
});
