/** Every server frame kind, built by frames.ts and read back with JSON.parse: the text is valid
 * JSON on one line (NDJSON), with exactly the fields docs/protocol.md section 2 gives it.
 * @module */

import assert from "node:assert/strict";
import {
  capUpdateFrame,
  capUpdateHead,
  capUpdateTail,
  cmdReplyFrame,
  coreMsgHead,
  coreMsgTail,
  errorFrame,
  jsMsgData,
  kvEntryData,
  kvReadyData,
  pongFrame,
  replyFrame,
  streamMsgHead,
  streamMsgTail,
} from "./frames.ts";
import { errorInfo } from "./errors.ts";
import { renderPayload } from "./payload.ts";

const enc = new TextEncoder();
const t = new Date("2026-01-02T03:04:05.678Z");
const json = renderPayload(enc.encode('{"n":1}'));
const text = renderPayload(enc.encode("héllo"));
const binary = renderPayload(new Uint8Array([0xff, 0x00, 0x01]));
const odd = 'a "quoted"\\ \u2028 subject';

const TABLE: Array<[string, string, unknown]> = [
  ["reply with target", replyFrame("i1", "chat.1", { id: "3" }), {
    v: 1,
    op: "reply",
    inbox: "i1",
    target: "chat.1",
    data: { id: "3" },
  }],
  ["reply without target", replyFrame("i2", undefined, {}), {
    v: 1,
    op: "reply",
    inbox: "i2",
    data: {},
  }],
  ["reply escapes its strings", replyFrame(odd, odd, { user: odd, exp: null }), {
    v: 1,
    op: "reply",
    inbox: odd,
    target: odd,
    data: { user: odd, exp: null },
  }],
  ["cmd reply, JSON payload", cmdReplyFrame("c1", "svc.a", json, undefined), {
    v: 1,
    op: "reply",
    inbox: "c1",
    target: "svc.a",
    data: { n: 1 },
  }],
  ["cmd reply, text payload and headers", cmdReplyFrame("c2", "svc.a", text, '{"X":["1","2"]}'), {
    v: 1,
    op: "reply",
    inbox: "c2",
    target: "svc.a",
    data: "héllo",
    encoding: "text",
    headers: { X: ["1", "2"] },
  }],
  ["pong with inbox and data", pongFrame("p1", { n: [1, "x"] }), {
    v: 1,
    op: "pong",
    inbox: "p1",
    data: { n: [1, "x"] },
  }],
  ["bare pong", pongFrame(undefined, undefined), { v: 1, op: "pong" }],
  ["pong with null data", pongFrame(undefined, null), { v: 1, op: "pong", data: null }],
  [
    "error with context",
    errorFrame(errorInfo("forbidden", "not allowed"), { op: "pub", target: "a.b", inbox: "e1" }),
    {
      v: 1,
      op: "error",
      inbox: "e1",
      data: { code: "forbidden", message: "not allowed", context: { op: "pub", target: "a.b" } },
    },
  ],
  ["error without context", errorFrame(errorInfo("bad_request", "invalid JSON"), {}), {
    v: 1,
    op: "error",
    data: { code: "bad_request", message: "invalid JSON", context: {} },
  }],
  [
    "cap_update",
    capUpdateFrame({
      capabilities: { subjects: ["a.>"] },
      roles: ["viewer"],
      session: "s1",
      user: "u",
      revoked: ["2"],
    }),
    {
      v: 1,
      op: "cap_update",
      data: {
        capabilities: { subjects: ["a.>"] },
        roles: ["viewer"],
        session: "s1",
        user: "u",
        revoked: ["2"],
      },
    },
  ],
  [
    "cap_update from a shared head, without roles or user",
    capUpdateHead({ publish: ["p.1"] }, undefined) + capUpdateTail("s2", undefined, []),
    {
      v: 1,
      op: "cap_update",
      data: { capabilities: { publish: ["p.1"] }, session: "s2", revoked: [] },
    },
  ],
  ["core msg", coreMsgHead('"chat.1"', json, undefined, false) + coreMsgTail("a"), {
    v: 1,
    op: "msg",
    target: "chat.1",
    data: { payload: { n: 1 } },
    sid: "a",
  }],
  [
    "core msg, binary, headers, reply",
    coreMsgHead(JSON.stringify(odd), binary, '{"K":"v"}', true) + coreMsgTail("1z"),
    {
      v: 1,
      op: "msg",
      target: odd,
      data: { payload: "/wAB", encoding: "base64", headers: { K: "v" }, reply: true },
      sid: "1z",
    },
  ],
  ["kv ready", streamMsgHead("kv:todos") + kvReadyData(12) + streamMsgTail("4"), {
    v: 1,
    op: "msg",
    target: "kv:todos",
    data: { op: "ready", revision: 12 },
    sid: "4",
  }],
  [
    "kv put",
    streamMsgHead("kv:todos") + kvEntryData(odd, 7, "put", text, t) + streamMsgTail("4"),
    {
      v: 1,
      op: "msg",
      target: "kv:todos",
      data: {
        key: odd,
        revision: 7,
        op: "put",
        value: "héllo",
        encoding: "text",
        created: t.toISOString(),
      },
      sid: "4",
    },
  ],
  [
    "kv delete",
    streamMsgHead("kv:todos") + kvEntryData("k", 8, "delete", undefined, t) + streamMsgTail("4"),
    {
      v: 1,
      op: "msg",
      target: "kv:todos",
      data: { key: "k", revision: 8, op: "delete", created: t.toISOString() },
      sid: "4",
    },
  ],
  [
    "js msg",
    streamMsgHead("js:CHAT") + jsMsgData(3, "chat.1", json, undefined, t, false) +
    streamMsgTail("5"),
    {
      v: 1,
      op: "msg",
      target: "js:CHAT",
      data: { seq: 3, subject: "chat.1", payload: { n: 1 }, time: t.toISOString() },
      sid: "5",
    },
  ],
  [
    "js msg, redelivered with headers",
    streamMsgHead("js:CHAT") + jsMsgData(4, odd, binary, '{"H":"1"}', t, true) +
    streamMsgTail("5"),
    {
      v: 1,
      op: "msg",
      target: "js:CHAT",
      data: {
        seq: 4,
        subject: odd,
        payload: "/wAB",
        encoding: "base64",
        headers: { H: "1" },
        time: t.toISOString(),
        redelivered: true,
      },
      sid: "5",
    },
  ],
];

Deno.test("frames: every kind reads back as the fields it was built from", async (t) => {
  for (const [name, frame, want] of TABLE) {
    await t.step(name, () => {
      assert.ok(!/[\r\n]/.test(frame), "one NDJSON line");
      assert.deepEqual(JSON.parse(frame), want);
    });
  }
});

Deno.test("frames: every kind starts with v and op", () => {
  for (const [name, frame] of TABLE) {
    assert.ok(frame.startsWith('{"v":1,"op":"'), name);
  }
});
