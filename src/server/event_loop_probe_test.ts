import assert from "node:assert/strict";
import { EventLoopProbe } from "./event_loop_probe.ts";

function _nextSample(probe: { onSample?: (s: number) => void }): Promise<number> {
  return new Promise((resolve) => probe.onSample = resolve);
}

Deno.test("EventLoopProbe: a loop blocked past the due time is measured as lag", async () => {
  const hook: { onSample?: (s: number) => void } = {};
  const probe = new EventLoopProbe({
    intervalMs: 1,
    onSample: (s) => hook.onSample?.(s),
    ref: true,
  });
  try {
    // The probe's timer is due 1 ms after it was armed; block the loop for 30 ms past that.
    const sample = _nextSample(hook);
    const until = performance.now() + 31;
    while (performance.now() < until) {
      // busy: the timer cannot fire
    }
    const lag = await sample;
    assert.ok(lag >= 0.029, `lag ${lag} s covers the 30 ms the loop was blocked`);
    assert.equal(probe.lastSeconds, lag);
    assert.ok(probe.maxSeconds() >= lag);
  } finally {
    probe.close();
  }
});

Deno.test("EventLoopProbe: the largest lag is kept 5 to 10 s, then forgotten", async () => {
  let t = 0;
  const hook: { onSample?: (s: number) => void } = {};
  const probe = new EventLoopProbe({
    intervalMs: 1,
    now: () => t,
    onSample: (s) => hook.onSample?.(s),
    ref: true,
  });
  try {
    const sample = _nextSample(hook);
    t = 5001; // the probe armed at 0, due at 1: it fires 5 s late by this clock
    assert.equal(await sample, 5);
    probe.close();
    assert.equal(probe.maxSeconds(), 5);
    t = 10_001;
    assert.equal(probe.maxSeconds(), 5, "one half window later: still remembered");
    t = 20_002;
    assert.equal(probe.maxSeconds(), 0, "two half windows without a sample: forgotten");
  } finally {
    probe.close();
  }
});

Deno.test("EventLoopProbe: close stops the timer (no leak for the test sanitizer)", async () => {
  const hook: { onSample?: (s: number) => void } = {};
  const probe = new EventLoopProbe({
    intervalMs: 1,
    onSample: (s) => hook.onSample?.(s),
    ref: true,
  });
  await _nextSample(hook);
  probe.close();
  probe.close();
});
