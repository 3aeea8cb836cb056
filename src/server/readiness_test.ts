import assert from "node:assert/strict";
import { type Readiness, ReadinessProbe } from "./readiness.ts";

Deno.test("ReadinessProbe: a check is shared within cacheMs and run again after", async () => {
  let t = 0;
  let runs = 0;
  const probe = new ReadinessProbe(() => {
    runs++;
    return Promise.resolve({ ready: runs === 1, reason: runs === 1 ? undefined : "second" });
  }, { cacheMs: 1000, now: () => t });
  assert.deepEqual(await probe.probe(), { ready: true, reason: undefined });
  t = 1000;
  assert.deepEqual(await probe.probe(), { ready: true, reason: undefined }, "cached");
  assert.equal(runs, 1);
  t = 1001;
  assert.deepEqual(await probe.probe(), { ready: false, reason: "second" });
  assert.equal(runs, 2);
});

Deno.test("ReadinessProbe: a check that does not answer is not ready within the bound", async () => {
  let t = 0;
  let runs = 0;
  let answer!: (r: Readiness) => void;
  const probe = new ReadinessProbe(() => {
    runs++;
    return new Promise<Readiness>((resolve) => answer = resolve);
  }, { timeoutMs: 5, timeoutReason: "bucket silent", now: () => t });
  assert.deepEqual(await probe.probe(), { ready: false, reason: "bucket silent" });
  t = 60_000;
  assert.deepEqual(await probe.probe(), { ready: false, reason: "bucket silent" });
  assert.equal(runs, 1, "a hanging check is shared, not stacked");
  answer({ ready: true });
  assert.deepEqual(await probe.probe(), { ready: true }, "its late answer is used");
  t = 120_000;
  const next = probe.probe();
  assert.equal(runs, 2, "after it settled and aged, a new check runs");
  answer({ ready: true });
  assert.deepEqual(await next, { ready: true });
});

Deno.test("ReadinessProbe: a failing check is not ready with its message", async () => {
  const probe = new ReadinessProbe(() => Promise.reject(new Error("NATS is disconnected")));
  assert.deepEqual(await probe.probe(), { ready: false, reason: "NATS is disconnected" });
});
