/** Benchmarks of outbound coalescing: envelopes pushed in one task until the queue has flushed
 * them (one frame, or several of at most `maxFrameBytes`) into an in-memory sink, so the figure is
 * the queue's own cost: `deno bench src/session/`.
 * @module */

import { OutboundQueue } from "./outbound.ts";
import { MemorySink } from "../../tests/_memory_sink.ts";

const ENV = JSON.stringify({
  v: 1,
  op: "msg",
  target: "chat.room.42",
  sid: "7",
  data: { payload: { id: 42, text: "hello, world" } },
});

function _queue(sink: MemorySink): OutboundQueue {
  return new OutboundQueue(sink, {
    maxPendingBytes: 64 << 20,
    backpressureTimeoutMs: 250,
    writeDeadlineMs: 60_000,
    onBackpressure: () => {
      throw new Error("cut in a benchmark");
    },
    maxFrameBytes: 64 * 1024,
  });
}

for (const n of [1, 10, 100, 1000]) {
  Deno.bench(`outbound: ${n} envelope${n === 1 ? "" : "s"} in one task, flushed`, {
    group: "coalesce",
  }, async (b) => {
    const sink = new MemorySink();
    const q = _queue(sink);
    b.start();
    for (let i = 0; i < n; i++) q.push(ENV);
    await sink.untilEnvelopes(n);
    b.end();
  });
}
