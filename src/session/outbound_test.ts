/** OutboundQueue on an in-memory sink: what is queued in one task leaves as one frame, an async
 * producer's burst too, frames stay bounded, nothing waits for a timer, overflow and the 250 ms
 * rule cut. Real sockets whose kernel stops taking bytes are in tests/outbound_test.ts.
 * @module */

import assert from "node:assert/strict";
import { OutboundQueue } from "./outbound.ts";
import type { CutReason } from "./backpressure.ts";
import { MemorySink } from "../../tests/_memory_sink.ts";

function queue(
  sink: MemorySink,
  opts: { maxFrameBytes?: number; maxPendingBytes?: number; backpressureTimeoutMs?: number } = {},
) {
  const cuts: CutReason[] = [];
  const first = Promise.withResolvers<CutReason>();
  const q = new OutboundQueue(sink, {
    maxPendingBytes: opts.maxPendingBytes ?? 1 << 20,
    backpressureTimeoutMs: opts.backpressureTimeoutMs ?? 250,
    writeDeadlineMs: 60_000,
    onBackpressure: (reason) => {
      cuts.push(reason);
      first.resolve(reason);
    },
    maxFrameBytes: opts.maxFrameBytes,
  });
  /** `cut`: the first cut's reason, when it happens. */
  return { q, cuts, cut: first.promise };
}

const env = (i: number) => `{"op":"msg","n":${i}}`;
const envs = (n: number) => Array.from({ length: n }, (_, i) => env(i));

Deno.test("outbound: envelopes queued in one task leave as one frame, in order", async () => {
  const sink = new MemorySink();
  const { q } = queue(sink);
  for (let i = 0; i < 100; i++) q.push(env(i));
  assert.deepEqual(await sink.untilLines(100), envs(100));
  assert.equal(sink.frames.length, 1);
});

Deno.test("outbound: an async producer's burst (for await) is one frame, not one per envelope", async () => {
  const sink = new MemorySink();
  const { q } = queue(sink);
  async function* source() {
    for (let i = 0; i < 200; i++) yield env(i);
  }
  for await (const e of source()) q.push(e);
  assert.deepEqual(await sink.untilLines(200), envs(200));
  assert.ok(sink.frames.length <= 2, `${sink.frames.length} frames for one burst`);
});

Deno.test("outbound: a lone envelope is sent before the next task runs (no timer)", async () => {
  const sink = new MemorySink();
  const { q } = queue(sink);
  q.push(env(1));
  assert.equal(sink.frames.length, 0, "not synchronously: more may follow in this task");
  // The next macrotask: by then the task's microtasks have all run.
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(sink.frames, [env(1)], "sent within the task's microtasks");
});

Deno.test("outbound: frames stay under maxFrameBytes; a larger envelope goes alone", async () => {
  const sink = new MemorySink();
  const { q } = queue(sink, { maxFrameBytes: 1000 });
  const big = `{"op":"msg","pad":"${"x".repeat(3000)}"}`;
  for (let i = 0; i < 300; i++) q.push(i === 150 ? big : env(i));
  const lines = await sink.untilLines(300);
  for (const f of sink.frames) {
    assert.ok(f.length <= 1000 || f === big, `frame of ${f.length} bytes`);
  }
  assert.ok(sink.frames.includes(big));
  assert.equal(lines.indexOf(big), 150, "order kept around the large envelope");
});

Deno.test("outbound: a reader that falls twice the bound behind is cut off", () => {
  const sink = new MemorySink({ hold: true });
  const { q, cuts } = queue(sink, { maxPendingBytes: 10_000 });
  let accepted = true;
  for (let i = 0; i < 1000 && accepted; i++) accepted = q.push(env(i) + "x".repeat(100));
  assert.equal(accepted, false, "push reports the overflow");
  assert.deepEqual(cuts, ["over_limit"], "onBackpressure called once");
  assert.equal(q.push(env(0)), false, "a closed queue takes nothing");
});

Deno.test("outbound: over the bound, under, and over again: the 250 ms rule still cuts", async () => {
  // The sink's kernel takes nothing until the test drains it.
  const sink = new MemorySink({ hold: true });
  const { q, cuts, cut } = queue(sink, { maxPendingBytes: 1000, backpressureTimeoutMs: 50 });
  const big = `{"pad":"${"x".repeat(1400)}"}`;
  q.push(big); // over the bound once flushed: the timer is armed
  await sink.untilLines(1);
  sink.drain();
  q.push("{}"); // under the bound again
  await sink.untilLines(2);
  q.push(big); // over again, while the first timer is still armed
  assert.equal(await cut, "slow", "cut while staying over the bound");
  assert.deepEqual(cuts, ["slow"]);
});
