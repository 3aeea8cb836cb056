/** Unit tests of the core `msg` prefix: reply detection through nats.js's parsed arguments and
 * through the public getter (the fallback), and the literal-subject shortcut.
 * @module */

import assert from "node:assert/strict";
import type { Msg } from "@nats-io/transport-node";
import { coreMsgPrefix } from "./subject_hub.ts";

const enc = new TextEncoder();

/** A message as the hub reads it: subject, data, headers and the reply, public or raw. */
function msg(fields: { reply?: string; raw?: { reply?: Uint8Array } }): Msg {
  const m: Record<string, unknown> = {
    subject: "chat.1",
    data: enc.encode('{"a":1}'),
    headers: undefined,
    reply: fields.reply,
  };
  if (fields.raw) m._msg = fields.raw;
  return m as unknown as Msg;
}

function frame(prefix: string) {
  return JSON.parse(prefix + '7"}');
}

Deno.test("coreMsgPrefix: reply read from the parsed arguments when nats.js has them", () => {
  assert.equal(frame(coreMsgPrefix(msg({ raw: { reply: enc.encode("_r.1") } }))).data.reply, true);
  // The raw bytes win over the getter: an empty reply there means none.
  const none = frame(coreMsgPrefix(msg({ raw: { reply: new Uint8Array(0) }, reply: "x" })));
  assert.equal(none.data.reply, undefined);
  assert.equal(frame(coreMsgPrefix(msg({ raw: {} }))).data.reply, undefined);
});

Deno.test("coreMsgPrefix: without nats.js internals the public reply getter decides", () => {
  assert.equal(frame(coreMsgPrefix(msg({ reply: "_r.1" }))).data.reply, true);
  assert.equal(frame(coreMsgPrefix(msg({}))).data.reply, undefined);
  assert.equal(frame(coreMsgPrefix(msg({ reply: "" }))).data.reply, undefined);
});

Deno.test("coreMsgPrefix: the whole frame, with the target given as JSON text", () => {
  const f = frame(coreMsgPrefix(msg({}), '"chat.*"'));
  assert.deepEqual(f, { v: 1, op: "msg", target: "chat.*", data: { payload: { a: 1 } }, sid: "7" });
  assert.equal(frame(coreMsgPrefix(msg({}))).target, "chat.1");
});
