/** Table-driven tests of inbound envelope parsing and validation.
 * Covers malformed JSON, versions, unknown ops, inbox bounds, headers and hostile keys.
 * @module */

import assert from "node:assert/strict";
import {
  type EnvelopeFailure,
  type FrameBudget,
  isFailure,
  parseFrame,
  parseFrameLimited,
  RATE_LIMITED,
  type RateVerdict,
  validateHeaders,
} from "./envelope.ts";
import { GatewayError } from "./errors.ts";
import { errorFrame } from "./frames.ts";

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

Deno.test("parseFrame: error messages are the protocol's, word for word", () => {
  const cases: Array<[string, string]> = [
    ["{nope", "invalid JSON"],
    ["nope", "invalid JSON"],
    ["\u00a0{}", "invalid JSON"],
    ["\ufeff{}", "invalid JSON"],
    ["[1]", "envelope must be a JSON object"],
    ["7", "envelope must be a JSON object"],
    ['{"op":"ping","inbox":""}', "inbox must be a string of 1..128 characters"],
    ['{"v":2,"op":"ping"}', "only protocol version 1 is supported"],
    ['{"target":"a"}', "op is required"],
    ['{"op":"nope"}', "unknown op"],
    ['{"op":"sub","target":1}', "target must be a string"],
    ['{"op":"sub","sid":1}', "sid must be a string"],
    ['{"op":"cmd","timeout_ms":-1}', "timeout_ms must be a non-negative integer"],
    ['{"op":"pub","headers":[]}', "headers must be an object"],
    ['{"op":"pub","headers":{"X-A":1}}', "header X-A: values must be strings"],
    [
      '{"op":"pub","headers":{"Nats-Rollup":"all"}}',
      "header Nats-Rollup: reserved (NATS tracing or rollup)",
    ],
  ];
  for (const [line, message] of cases) {
    const [r] = parseFrame(line);
    assert.ok(isFailure(r), line);
    assert.equal(r.error.message, message, line);
    assert.equal(JSON.parse(errorFrame(r.error, r.context)).data.message, message, line);
  }
  // Leading JSON white space is still allowed.
  assert.equal((parseFrame(' \t\r{"op":"ping"}')[0] as { op: string }).op, "ping");
});

Deno.test("parseFrame: failed lines share frozen error values, never an Error each", () => {
  const [a, b, c] = parseFrame("x\n{nope\n[1]");
  assert.ok(isFailure(a) && isFailure(b) && isFailure(c));
  assert.equal(a.error, b.error, "one shared value for every invalid JSON line");
  for (const r of [a, b, c]) {
    assert.ok(!(r.error instanceof Error), "no Error, so no stack captured");
    assert.ok(Object.isFrozen(r.error), "shared values cannot be changed");
  }
});

/** A budget that counts its takes and answers from a script (then "limited"). */
function scripted(verdicts: RateVerdict[], maxLines = Infinity) {
  const budget: FrameBudget & { takes: number } = {
    maxLines,
    takes: 0,
    take: () => verdicts[budget.takes++] ?? "limited",
  };
  return budget;
}

Deno.test("parseFrameLimited: a token before each line; a line without one is answered unread", () => {
  const lines = [
    '{"op":"ping","inbox":"a"}',
    "{nope",
    '{"op":"sub","target":"t","inbox":"c"}',
    '{"op":"pub","target":"x","data":{"inbox":"not this"}}',
    '{"op":"ping","inbox":"esc\\"aped"}',
    "x",
  ];
  const budget = scripted(["ok", "ok"]);
  const got = parseFrameLimited(lines.join("\n"), budget);
  assert.equal(got.results.length, 6, "one result per line: every op gets one answer");
  assert.equal((got.results[0] as { inbox: string }).inbox, "a");
  assert.ok(isFailure(got.results[1]));
  const limited = got.results.slice(2);
  for (const r of limited) {
    assert.ok(isFailure(r));
    assert.equal(r.error, RATE_LIMITED, "limited lines share one frozen error");
  }
  assert.deepEqual(limited.map((r) => (r as EnvelopeFailure).context), [
    { inbox: "c" },
    { inbox: "not this" }, // documented: the scan cannot tell data from the envelope
    { inbox: 'esc"aped' },
    {},
  ]);
  assert.equal(got.sustained, undefined);
  assert.equal(budget.takes, 6);

  const sustained = parseFrameLimited("x\ny\nz", scripted(["limited", "sustained"]));
  assert.equal(sustained.sustained, true);
  assert.equal(sustained.results.length, 1, "reading stops where the client is to be closed");

  const blanks = scripted([]);
  assert.deepEqual(parseFrameLimited("\n \n\r\n\n", blanks), { results: [] });
  assert.equal(blanks.takes, 0, "blank lines take no token");
});

Deno.test("parseFrameLimited: a frame of more than maxLines envelopes is refused whole", () => {
  const frame = Array.from({ length: 5 }, (_, i) => `{"op":"ping","inbox":"p${i}"}`).join("\n");
  const budget = scripted(Array(10).fill("ok"), 3);
  const got = parseFrameLimited(frame, budget);
  assert.deepEqual(got.results, [], "nothing of it runs");
  assert.deepEqual(got.tooManyLines, { op: "ping", target: undefined, inbox: "p3" });
  assert.equal(budget.takes, 0, "no token spent");
  const exact = parseFrameLimited(frame, scripted(Array(10).fill("ok"), 5));
  assert.equal(exact.results.length, 5);
  assert.equal(exact.tooManyLines, undefined, "maxLines lines are allowed");
});
