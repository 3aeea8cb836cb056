import assert from "node:assert/strict";
import {
  encodeClientFrame,
  encodeClose,
  encodeFrame,
  encodeText,
  FrameDecoder,
  Opcode,
  validCloseCode,
} from "./ws_frame.ts";

type Ev = [string, number, string | number];

function _decoder(limits?: { maxMessageBytes?: number; maxFragments?: number }) {
  const events: Ev[] = [];
  const dec = new FrameDecoder({
    message: (op, p) => events.push(["message", op, new TextDecoder().decode(p)]),
    control: (op, p) => events.push(["control", op, p.length]),
    error: (code, reason) => events.push(["error", code, reason]),
  }, limits);
  return { dec, events };
}

const te = new TextEncoder();
const cf = (op: number, s: string | Uint8Array, o?: { fin?: boolean; rsv?: number }) =>
  encodeClientFrame(op, typeof s === "string" ? te.encode(s) : s, o);

function _concat(...a: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(a.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of a) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

Deno.test("ws_frame: masked text frames of 7-, 16- and 64-bit lengths, byte by byte", () => {
  for (const len of [0, 5, 125, 126, 65535, 65536, 70000]) {
    const text = "x".repeat(len);
    const { dec, events } = _decoder({ maxMessageBytes: 1 << 20 });
    const frame = cf(Opcode.TEXT, text);
    if (len < 200) { for (const b of frame) dec.feed(new Uint8Array([b])); }
    else dec.feed(frame);
    assert.deepEqual(events, [["message", Opcode.TEXT, text]], `len ${len}`);
  }
});

Deno.test("ws_frame: two frames in one chunk and a frame split anywhere", () => {
  const a = cf(Opcode.TEXT, "hello"), b = cf(Opcode.BINARY, "world!");
  const both = _concat(a, b);
  for (let cut = 0; cut <= both.length; cut++) {
    const { dec, events } = _decoder();
    dec.feed(both.subarray(0, cut));
    dec.feed(both.subarray(cut));
    assert.deepEqual(events, [["message", 1, "hello"], ["message", 2, "world!"]], `cut ${cut}`);
  }
});

Deno.test("ws_frame: fragments join; control frames may come between them", () => {
  const { dec, events } = _decoder();
  dec.feed(cf(Opcode.TEXT, "ab", { fin: false }));
  dec.feed(cf(Opcode.PING, "p"));
  dec.feed(cf(Opcode.CONTINUATION, "cd", { fin: false }));
  dec.feed(cf(Opcode.CONTINUATION, "", { fin: false }));
  dec.feed(cf(Opcode.CONTINUATION, "ef"));
  dec.feed(cf(Opcode.TEXT, "next"));
  assert.deepEqual(events, [
    ["control", Opcode.PING, 1],
    ["message", Opcode.TEXT, "abcdef"],
    ["message", Opcode.TEXT, "next"],
  ]);
});

Deno.test("ws_frame: direct reads into the payload need no copy and unmask correctly", () => {
  const { dec, events } = _decoder({ maxMessageBytes: 1 << 20 });
  const text = "abcdefghij".repeat(500);
  const frame = cf(Opcode.TEXT, text);
  dec.feed(frame.subarray(0, 9)); // 4-byte header + mask + 1 payload byte
  let off = 9;
  while (off < frame.length) {
    const t = dec.directTarget(1);
    assert.ok(t);
    const n = Math.min(t.length, 777, frame.length - off);
    t.set(frame.subarray(off, off + n));
    dec.advance(n);
    off += n;
  }
  assert.equal(dec.directTarget(1), null);
  assert.deepEqual(events, [["message", Opcode.TEXT, text]]);
});

Deno.test("ws_frame: protocol violations close with 1002", () => {
  const unmasked = new Uint8Array([0x81, 0x02, 0x68, 0x69]);
  const hugeHigh = new Uint8Array([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  const cases: [string, Uint8Array[]][] = [
    ["unmasked", [unmasked]],
    ["rsv", [cf(Opcode.TEXT, "x", { rsv: 4 })]],
    ["unknown opcode", [cf(0x3, "x")]],
    ["unknown control opcode", [cf(0xb, "x")]],
    ["fragmented control", [cf(Opcode.PING, "x", { fin: false })]],
    ["long control", [cf(Opcode.PING, "x".repeat(126))]],
    ["continuation first", [cf(Opcode.CONTINUATION, "x")]],
    ["data in data", [cf(Opcode.TEXT, "x", { fin: false }), cf(Opcode.TEXT, "y")]],
    ["64-bit high bit", [hugeHigh]],
  ];
  for (const [name, frames] of cases) {
    const { dec, events } = _decoder();
    for (const f of frames) dec.feed(f);
    if (name === "unmasked") assert.equal(events.length, 1, "refused without more bytes");
    dec.feed(cf(Opcode.TEXT, "after")); // ignored once failed
    assert.equal(events.length, 1, name);
    assert.equal(events[0][0], "error", name);
    assert.equal(events[0][1], 1002, name);
    assert.ok(dec.failed);
  }
});

Deno.test("ws_frame: a too big message is refused from its header, before its payload", () => {
  const { dec, events } = _decoder({ maxMessageBytes: 100 });
  const frame = cf(Opcode.TEXT, "x".repeat(101));
  dec.feed(frame.subarray(0, 8)); // header and mask only
  assert.deepEqual(events, [["error", 1009, "message too big"]]);
  // a declared length of 2^53-ish is refused the same way
  const d2 = _decoder({ maxMessageBytes: 100 });
  d2.dec.feed(new Uint8Array([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
  d2.dec.feed(new Uint8Array(4));
  assert.equal(d2.events[0][1], 1009);
});

Deno.test("ws_frame: fragments are limited in total size and in number", () => {
  const big = _decoder({ maxMessageBytes: 100 });
  big.dec.feed(cf(Opcode.TEXT, "x".repeat(60), { fin: false }));
  big.dec.feed(cf(Opcode.CONTINUATION, "x".repeat(40), { fin: false }));
  assert.equal(big.events.length, 0, "exactly at the limit is fine");
  big.dec.feed(cf(Opcode.CONTINUATION, "x", { fin: false }).subarray(0, 6));
  assert.deepEqual(big.events, [["error", 1009, "message too big"]]);

  const many = _decoder({ maxFragments: 3 });
  many.dec.feed(cf(Opcode.TEXT, "a", { fin: false }));
  for (let i = 0; i < 3; i++) many.dec.feed(cf(Opcode.CONTINUATION, "b", { fin: false }));
  assert.equal(many.events.length, 0, "3 continuations allowed");
  many.dec.feed(cf(Opcode.CONTINUATION, "c"));
  assert.deepEqual(many.events, [["error", 1009, "too many fragments"]]);
});

Deno.test("ws_frame: maxMessageBytes can change between messages", () => {
  const { dec, events } = _decoder({ maxMessageBytes: 10 });
  dec.feed(cf(Opcode.TEXT, "0123456789"));
  dec.maxMessageBytes = 20;
  dec.feed(cf(Opcode.TEXT, "0123456789abcdefghij"));
  assert.equal(events.length, 2);
  dec.maxMessageBytes = 5;
  dec.feed(cf(Opcode.TEXT, "123456"));
  assert.equal(events[2][1], 1009);
});

Deno.test("ws_frame: server frames are unmasked with minimal length encodings", () => {
  assert.deepEqual([...encodeText("hi")], [0x81, 2, 0x68, 0x69]);
  const t126 = encodeText("y".repeat(126));
  assert.deepEqual([...t126.subarray(0, 4)], [0x81, 126, 0, 126]);
  assert.equal(t126.length, 130);
  const t64k = encodeText("z".repeat(65536));
  assert.deepEqual([...t64k.subarray(0, 10)], [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
  const uni = encodeText("é€😀");
  assert.deepEqual([...uni.subarray(0, 2)], [0x81, 2 + 3 + 4]);
  assert.equal(new TextDecoder().decode(uni.subarray(2)), "é€😀");
  assert.deepEqual([...encodeFrame(Opcode.PONG, new Uint8Array([7]))], [0x8a, 1, 7]);
  assert.deepEqual([...encodeClose(4001, "no")], [0x88, 4, 0x0f, 0xa1, 0x6e, 0x6f]);
  assert.equal(encodeClose(1000, "r".repeat(300)).length, 2 + 125);
});

Deno.test("ws_frame: close codes a peer may send", () => {
  for (const c of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999]) {
    assert.ok(validCloseCode(c), String(c));
  }
  for (const c of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
    assert.ok(!validCloseCode(c), String(c));
  }
});

Deno.test("encodeClose: a long reason is cut at a character boundary", () => {
  for (const reason of ["é".repeat(100), "€".repeat(60), "a" + "😀".repeat(40), "x".repeat(200)]) {
    const frame = encodeClose(4000, reason);
    const payload = frame.subarray(2); // a close frame's payload is at most 125 bytes: 2-byte head
    assert.ok(payload.length <= 125, `${payload.length} bytes`);
    assert.equal((payload[0] << 8) | payload[1], 4000);
    const text = new TextDecoder("utf-8", { fatal: true }).decode(payload.subarray(2));
    assert.ok(reason.startsWith(text), "a prefix of the reason, whole characters only");
  }
});
