import assert from "node:assert/strict";
import { type CutReason, overBudget, type PressureState, pressureVerdict } from "./backpressure.ts";

const LIMITS = { maxPendingBytes: 1000, backpressureTimeoutMs: 250, writeDeadlineMs: 5000 };

Deno.test("pressureVerdict: table", () => {
  const cases: Array<[string, PressureState, CutReason | undefined]> = [
    ["nothing pending", { pending: 0, overSince: undefined, progressAt: 0, now: 1e9 }, undefined],
    [
      "under the bound, draining",
      { pending: 999, overSince: undefined, progressAt: 10, now: 20 },
      undefined,
    ],
    ["at the bound", { pending: 1000, overSince: undefined, progressAt: 10, now: 20 }, undefined],
    [
      "over the bound, not for long",
      { pending: 1500, overSince: 0, progressAt: 0, now: 249 },
      undefined,
    ],
    [
      "over the bound for the timeout",
      { pending: 1500, overSince: 0, progressAt: 200, now: 250 },
      "slow",
    ],
    [
      "over twice the bound at once",
      { pending: 2001, overSince: 0, progressAt: 0, now: 0 },
      "over_limit",
    ],
    ["exactly twice the bound", { pending: 2000, overSince: 0, progressAt: 0, now: 10 }, undefined],
    ["over, but overSince unknown", {
      pending: 1500,
      overSince: undefined,
      progressAt: 0,
      now: 300,
    }, undefined],
    ["a few bytes, drained nothing for the deadline", {
      pending: 1,
      overSince: undefined,
      progressAt: 0,
      now: 5000,
    }, "stalled"],
    ["a few bytes, drained just before the deadline", {
      pending: 1,
      overSince: undefined,
      progressAt: 1,
      now: 5000,
    }, undefined],
    ["steady reader long under the bound", {
      pending: 900,
      overSince: undefined,
      progressAt: 99_990,
      now: 100_000,
    }, undefined],
  ];
  for (const [name, state, want] of cases) {
    assert.equal(pressureVerdict(state, LIMITS), want, name);
  }
});

Deno.test("overBudget: largest first, only as many as needed", () => {
  const conns = [
    { id: "a", pending: 100 },
    { id: "b", pending: 700 },
    { id: "c", pending: 300 },
    { id: "d", pending: 0 },
  ];
  assert.deepEqual(overBudget(conns, 2000).map((c) => c.id), [], "under budget");
  assert.deepEqual(overBudget(conns, 1100).map((c) => c.id), [], "exactly at budget");
  assert.deepEqual(overBudget(conns, 1000).map((c) => c.id), ["b"]);
  assert.deepEqual(overBudget(conns, 300).map((c) => c.id), ["b", "c"]);
  assert.deepEqual(overBudget(conns, 0).map((c) => c.id), ["b", "c", "a"], "never an empty one");
});
