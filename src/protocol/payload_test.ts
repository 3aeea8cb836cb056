/** Tests of the payload encodings (docs/protocol.md section 3) in both directions.
 * JSON passes through as text; text and binary get their encodings; newlines never leak.
 * @module */

import assert from "node:assert/strict";
import { encodePayload, renderPayload } from "./payload.ts";
import { GatewayError } from "./errors.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("renderPayload: JSON, text and binary", () => {
  const cases: Array<[string, Uint8Array, unknown, string | undefined]> = [
    ["object", enc('{"a":1}'), { a: 1 }, undefined],
    ["number", enc("42"), 42, undefined],
    ["string JSON", enc('"hi"'), "hi", undefined],
    ["null", enc("null"), null, undefined],
    ["pretty JSON with newlines", enc('{\n  "a": [1,\r\n 2]\n}'), { a: [1, 2] }, undefined],
    ["plain text", enc("hello world"), "hello world", "text"],
    ["text with newline", enc("a\nb"), "a\nb", "text"],
    ["unicode text", enc("héllo ✓"), "héllo ✓", "text"],
    ["empty", new Uint8Array(0), "", "text"],
    ["invalid UTF-8", new Uint8Array([0xff, 0xfe, 0x00]), "//4A", "base64"],
    ["lone continuation byte", new Uint8Array([0x80]), "gA==", "base64"],
    // Both sides of the small-ASCII fast path (4096 bytes) and a non-ASCII byte at its end.
    [
      "ASCII JSON at the fast-path limit",
      enc(`"${"a".repeat(4094)}"`),
      "a".repeat(4094),
      undefined,
    ],
    ["ASCII JSON past the limit", enc(`"${"a".repeat(4095)}"`), "a".repeat(4095), undefined],
    ["JSON, non-ASCII last", enc(`"${"a".repeat(100)}é"`), `${"a".repeat(100)}é`, undefined],
    ["ASCII then invalid byte", new Uint8Array([0x7b, 0x7d, 0xc0]), "e33A", "base64"],
    ["NUL and DEL are ASCII text", new Uint8Array([0x00, 0x7f]), "\u0000\u007f", "text"],
  ];
  for (const [name, bytes, want, encoding] of cases) {
    const r = renderPayload(bytes);
    assert.equal(r.encoding, encoding, name);
    assert.ok(!/[\r\n]/.test(r.json), `${name}: no raw newline in ${r.json}`);
    assert.deepEqual(JSON.parse(r.json), want, name);
  }
});

Deno.test("renderPayload: big integers keep their digits (no parse-and-restringify)", () => {
  const r = renderPayload(enc('{"id":12345678901234567890123}'));
  assert.equal(r.json, '{"id":12345678901234567890123}');
});

Deno.test("encodePayload: JSON default, text, base64, and bad input", () => {
  assert.equal(new TextDecoder().decode(encodePayload({ a: 1 }, undefined)), '{"a":1}');
  assert.equal(encodePayload(undefined, undefined).length, 0);
  assert.equal(new TextDecoder().decode(encodePayload("raw text", "text")), "raw text");
  assert.deepEqual([...encodePayload("//4A", "base64")], [0xff, 0xfe, 0x00]);
  const bad: Array<[string, unknown, unknown]> = [
    ["text needs a string", { a: 1 }, "text"],
    ["base64 needs a string", 5, "base64"],
    ["invalid base64", "@@@@", "base64"],
    ["base64 wrong padding", "abc", "base64"],
    ["unknown encoding", "x", "hex"],
  ];
  for (const [name, data, encoding] of bad) {
    assert.throws(
      () => encodePayload(data, encoding),
      (e) => e instanceof GatewayError && e.code === "bad_request",
      name,
    );
  }
});
