/** SubjectHub fan-out against a real nats-server: listeners that leave (or are cut) during a
 * dispatch never make another listener miss, repeat or reorder a message; queue groups route a
 * message past members that cannot take it.
 * @module */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { NatsServer } from "../src/nats/launcher.ts";
import { type CoreListener, SubjectHub } from "../src/session/subject_hub.ts";
import { waitFor } from "./_harness.ts";

/** A listener recording the `n` of each message; `onDeliver` runs inside the dispatch. */
class Recorder implements CoreListener {
  seen: number[] = [];
  accept = true;
  onDeliver?: (n: number) => void;
  deliver(prefix: string): boolean {
    if (!this.accept) return false;
    const n = Number(/"n":(\d+)/.exec(prefix)![1]);
    this.seen.push(n);
    this.onDeliver?.(n);
    return true;
  }
}

async function withHub(
  fn: (hub: SubjectHub, publish: (n: number) => void, flush: () => Promise<void>) => Promise<void>,
) {
  const nats = await NatsServer.start();
  const nc = await connect({ servers: nats.url });
  const hub = new SubjectHub(nc, (err) => {
    throw err;
  });
  try {
    await fn(hub, (n) => nc.publish("hub.t", JSON.stringify({ n })), () => nc.flush());
  } finally {
    hub.close();
    await nc.close();
    await nats.stop();
  }
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

Deno.test("hub: listeners removed during a dispatch never cost the others a message", async () => {
  await withHub(async (hub, publish, flush) => {
    const ls = Array.from({ length: 6 }, () => new Recorder());
    for (const l of ls) await hub.add("hub.t", undefined, l);
    // Listener 1, on message 5, cuts itself and listener 2 (the very next in line), as the
    // backpressure path does inside fan-out; listener 4 then cuts listener 0 (already served).
    // A removed listener refuses what is still dispatched to it (as a closed subscription does).
    const cut = (l: Recorder) => {
      l.accept = false;
      hub.remove("hub.t", undefined, l);
    };
    ls[1].onDeliver = (n) => {
      if (n !== 5) return;
      cut(ls[1]);
      cut(ls[2]);
    };
    ls[4].onDeliver = (n) => {
      if (n === 7) cut(ls[0]);
    };
    // A listener that joins during a dispatch starts with the next message.
    const late = new Recorder();
    ls[3].onDeliver = (n) => {
      if (n === 9) void hub.add("hub.t", undefined, late);
    };
    for (let n = 0; n < 20; n++) publish(n);
    await flush();
    await waitFor(() => ls[5].seen.length === 20, 5000, "last listener complete");
    assert.deepEqual(ls[3].seen, range(0, 20), "neighbour after the cut ones: everything");
    assert.deepEqual(ls[4].seen, range(0, 20));
    assert.deepEqual(ls[5].seen, range(0, 20));
    assert.deepEqual(ls[1].seen, range(0, 6), "the cut one: a prefix");
    assert.deepEqual(ls[2].seen, range(0, 5), "cut before message 5 reached it");
    assert.deepEqual(ls[0].seen, range(0, 8));
    assert.deepEqual(late.seen, range(10, 20));
  });
});

Deno.test("hub: a queue group passes over a member that cannot take a message", async () => {
  await withHub(async (hub, publish, flush) => {
    const ms = [new Recorder(), new Recorder(), new Recorder()];
    for (const m of ms) await hub.add("hub.t", "q", m);
    ms[1].accept = false; // over its bound, say
    // Member 2 leaves during its own delivery of message 4: it keeps 4, nobody gets it twice.
    ms[2].onDeliver = (n) => {
      if (n === 4) hub.remove("hub.t", "q", ms[2]);
    };
    for (let n = 0; n < 30; n++) publish(n);
    await flush();
    await waitFor(() => ms[0].seen.length + ms[2].seen.length === 30, 5000, "all routed");
    assert.deepEqual(ms[1].seen, [], "a member that cannot take one gets none");
    const all = [...ms[0].seen, ...ms[2].seen].sort((a, b) => a - b);
    assert.deepEqual(all, range(0, 30), "every message exactly once across the group");
    assert.equal(ms[2].seen.at(-1), 4, "the member that left got nothing after");
    for (const m of ms) assert.deepEqual(m.seen, [...m.seen].sort((a, b) => a - b), "in order");
  });
});
