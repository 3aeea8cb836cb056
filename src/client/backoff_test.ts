import assert from "node:assert/strict";
import { backoffDelay } from "./backoff.ts";

Deno.test("backoffDelay: half to all of initial * 2^n, capped", () => {
  const table: Array<[number, number, number, number, number]> = [
    // n, initial, max, random, expected
    [0, 250, 10_000, 0, 125],
    [0, 250, 10_000, 0.999999, 250],
    [3, 250, 10_000, 0, 1000],
    [3, 250, 10_000, 0.5, 1500],
    [10, 250, 10_000, 0, 5000],
    [1000, 250, 10_000, 0.999999, 10_000],
  ];
  for (const [n, initial, max, random, want] of table) {
    assert.equal(backoffDelay(n, initial, max, random), want, `n=${n} random=${random}`);
  }
});
