/** Table-driven tests of inbound envelope parsing and validation.
 * Covers malformed JSON, versions, unknown ops, inbox bounds, headers and hostile keys.
 * @module */

import assert from "node:assert/strict";
import { isFailure, parseFrame, validateHeaders } from "../src/envelope.ts";
import { GatewayError } from "../src/errors.ts";

Deno.test("parseFrame: each line yields an envelope or an error code", () => {
  const cases: Array<[string, string, Array<string>]> = [
    ["one envelope", '{"op":"ping"}', ["ping"]],
    ["two envelopes, one frame", '{"op":"ping"}\n{"op":"sub","target":"a"}', ["ping", "sub"]],
    ["blank lines skipped", '\n{"op":"ping"}\n\n', ["ping"]],
    ["CRLF tolerated", '{"op":"ping"}\r\n{"op":"ping"}', ["ping", "ping"]],
    ["bad JSON", "{nope", ["!bad_request"]],
    ["bad line does not spoil the next", '{"op":\n{"op":"ping"}', ["!bad_request", "ping"]],
    ["array is not an envelope", "[1,2]", ["!bad_request"]],
    ["null", "null", ["!bad_request"]],
    ["string", '"ping"', ["!bad_request"]],
    ["missing op", '{"target":"a"}', ["!bad_request"]],
    ["op not a string", '{"op":1}', ["!bad_request"]],
    ["unknown op", '{"op":"frobnicate"}', ["!unknown_op"]],
    ["server op from client", '{"op":"msg"}', ["!unknown_op"]],
    ["v 2", '{"v":2,"op":"ping"}', ["!unsupported_version"]],
    ["v as string", '{"v":"1","op":"ping"}', ["!unsupported_version"]],
    ["v 1 explicit", '{"v":1,"op":"ping"}', ["ping"]],
    ["target not a string", '{"op":"sub","target":5}', ["!bad_request"]],
    ["empty inbox", '{"op":"ping","inbox":""}', ["!bad_request"]],
    ["inbox too long", `{"op":"ping","inbox":"${"x".repeat(129)}"}`, ["!bad_request"]],
    ["inbox 128 ok", `{"op":"ping","inbox":"${"x".repeat(128)}"}`, ["ping"]],
    ["inbox not string", '{"op":"ping","inbox":5}', ["!bad_request"]],
    ["timeout_ms negative", '{"op":"cmd","target":"a","timeout_ms":-1}', ["!bad_request"]],
    ["timeout_ms fraction", '{"op":"cmd","target":"a","timeout_ms":1.5}', ["!bad_request"]],
    ["timeout_ms huge", '{"op":"cmd","target":"a","timeout_ms":1e300}', ["!bad_request"]],
    ["__proto__ key is inert", '{"op":"ping","__proto__":{"op":"sub"}}', ["ping"]],
    ["deep nesting in data", `{"op":"ping","data":${"[".repeat(5000)}${"]".repeat(5000)}}`, [
      "ping",
    ]],
  ];
  for (const [name, frame, want] of cases) {
    const got = parseFrame(frame).map((r) => isFailure(r) ? `!${r.error.code}` : r.op);
    assert.deepEqual(got, want, name);
  }
});

Deno.test("parseFrame: the error context echoes inbox, op and target", () => {
  const [r] = parseFrame('{"v":3,"op":"sub","target":"a.b","inbox":"q1"}');
  assert.ok(isFailure(r));
  assert.equal(r.error.code, "unsupported_version");
  assert.deepEqual(r.context, { inbox: "q1", op: "sub", target: "a.b" });
});

Deno.test("parseFrame: __proto__ in data does not pollute prototypes", () => {
  const [r] = parseFrame('{"op":"pub","target":"a","data":{"__proto__":{"polluted":true}}}');
  assert.ok(!isFailure(r));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.ok(Object.hasOwn(r.data as object, "__proto__"));
});

Deno.test("validateHeaders: names, values and shapes", () => {
  const ok: unknown[] = [
    { "X-A": "1" },
    { "X-A": ["1", "2"] },
    { "Content-Type": "a/b; c=d" },
    {},
    { "Nats-Msg-Id": "1" },
    { "X-Nats-Trace-Dest": "x" },
    { "Nats-Rollup-Note": "x" },
  ];
  for (const h of ok) assert.doesNotThrow(() => validateHeaders(h), JSON.stringify(h));
  const bad: Array<[string, unknown]> = [
    ["not an object", "x"],
    ["array", ["a"]],
    ["CRLF in value", { "X-A": "1\r\nX-B: 2" }],
    ["LF in value", { "X-A": "1\n" }],
    ["NUL in value", { "X-A": "a\u0000b" }],
    ["space in name", { "X A": "1" }],
    ["colon in name", { "X:A": "1" }],
    ["empty name", { "": "1" }],
    ["number value", { "X-A": 1 }],
    ["empty array", { "X-A": [] }],
    ["nested", { "X-A": [["1"]] }],
    // Regression: trace headers would make nats-server publish to a subject of the client's choice.
    ["trace destination", { "Nats-Trace-Dest": "$NATSGATE.sessions.kick" }],
    ["trace destination, any case", { "nats-trace-dest": "x" }],
    ["trace only", { "X-A": "1", "Nats-Trace-Only": "true" }],
    // A rollup purges stored history of the subject or stream (other users' messages included).
    ["rollup", { "Nats-Rollup": "all" }],
    ["rollup, any case", { "nats-rollup": "sub" }],
  ];
  for (const [name, h] of bad) {
    assert.throws(
      () => validateHeaders(h),
      (e) => e instanceof GatewayError && e.code === "bad_request",
      name,
    );
  }
});
