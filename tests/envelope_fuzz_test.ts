/** Fuzzing of inbound frames (fast-check, seeded): the parser against a reference, then a real gateway.
 * Mutated envelopes of every op, random bytes, hostile keys and sizes; plus logs and compression.
 * @module */

import assert from "node:assert/strict";
import fc from "fast-check";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { isFailure, parseFrame, validateEnvelope } from "../src/protocol/envelope.ts";
import { errorEnvelope } from "../src/protocol/errors.ts";
import { createLogger } from "../src/log/log.ts";
import { type Envelope, Stack, TestClient, waitFor } from "./_harness.ts";

const SEED = 20261127;

/** Error codes of docs/protocol.md section 6. */
const CODES = new Set([
  "bad_request",
  "unsupported_version",
  "unknown_op",
  "invalid_subject",
  "unauthorized",
  "forbidden",
  "not_found",
  "timeout",
  "no_responders",
  "limit_exceeded",
  "backpressure",
  "unavailable",
  "internal",
]);

/** Close codes of docs/protocol.md section 6. */
const CLOSE_CODES = new Set([1001, 1009, 4000, 4001, 4003, 4008, 4029]);

const OPS = ["auth", "sub", "unsub", "kv_sub", "js_sub", "ack", "cmd", "pub", "ping"];

/** One valid envelope per client op; `%TOKEN%` becomes a real token on the live gateway. */
const TEMPLATES: Array<Record<string, unknown>> = [
  { op: "auth", data: { token: "%TOKEN%" }, inbox: "t-auth" },
  { op: "sub", target: "chat.room.1", data: { queue: "q1" }, inbox: "t-sub" },
  { op: "unsub", data: { id: "1" }, inbox: "t-unsub" },
  { op: "kv_sub", target: "todos", data: { pattern: "user.*", history: true }, inbox: "t-kv" },
  {
    op: "js_sub",
    target: "CHAT",
    data: { filter: "chat.room.1", deliver: "all", batch: 10, ack: true, ack_wait_ms: 1000 },
    inbox: "t-js",
  },
  { op: "ack", target: "CHAT", data: { id: "1", seq: 1 }, inbox: "t-ack" },
  {
    op: "cmd",
    target: "todos.add",
    data: { title: "x" },
    headers: { "X-A": "1" },
    timeout_ms: 200,
    inbox: "t-cmd",
  },
  {
    op: "pub",
    target: "chat.room.1",
    data: "aGk=",
    encoding: "base64",
    headers: { "X-A": ["1", "2"] },
    inbox: "t-pub",
  },
  { op: "ping", v: 1, data: { n: 1 }, inbox: "t-ping" },
];

const KEYS = [
  "v",
  "op",
  "target",
  "inbox",
  "sid",
  "data",
  "headers",
  "timeout_ms",
  "encoding",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
];
const DATA_KEYS = [
  "token",
  "queue",
  "id",
  "pattern",
  "updates_only",
  "history",
  "filter",
  "start_seq",
  "start_time",
  "time_delta",
  "deliver",
  "batch",
  "ack",
  "ack_wait_ms",
  "durable",
  "seq",
  "__proto__",
  "constructor",
];

/** Values that break naive handlers: wrong types, huge numbers, odd strings, wildcards. */
const weirdArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    0,
    -1,
    1.5,
    1e308,
    2 ** 53,
    -(2 ** 63),
    "",
    "x".repeat(300),
    "\u0000",
    "\ud800",
    "a\nb",
    "a\r\nPUB x 1",
    "\u2028",
    "__proto__",
    "constructor",
    "*",
    ">",
    "a..b",
    "$SYS.>",
    "$JS.API.>",
    "chat.>",
    "chat.room.1",
    "todos",
    "1",
    [],
    {},
  ),
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: "binary", maxLength: 24 }),
  fc.double(),
  fc.integer(),
);

type Obj = Record<string, unknown>;

/** Sets an own data property (plain assignment of `__proto__` would change the prototype). */
function define(o: Obj, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Deep nesting is spliced in as text: JSON.stringify of a deep object tree overflows the stack. */
const _NEST = /"@@nest:(\d+):([ao])@@"/g;

function nested(text: string): string {
  return text.replace(_NEST, (_m, n: string, kind: string) => {
    const d = Number(n);
    return kind === "a"
      ? `${"[".repeat(d)}1${"]".repeat(d)}`
      : `${'{"a":'.repeat(d)}1${"}".repeat(d)}`;
  });
}

const headerNameArb = fc.oneof(
  fc.constantFrom(
    "X-A",
    "Nats-Msg-Id",
    "Nats-Trace-Dest",
    "nats-trace-only",
    "X A",
    "X:A",
    "",
    "Ä",
    "__proto__",
    "constructor",
  ),
  fc.string({ unit: "grapheme-ascii", maxLength: 8 }),
);

type Mutation = (e: Obj) => void;

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constantFrom(...KEYS).map((k): Mutation => (e) => void delete e[k]),
  fc.tuple(fc.constantFrom(...KEYS), weirdArb).map(([k, v]): Mutation => (e) => define(e, k, v)),
  fc.tuple(fc.constantFrom(...DATA_KEYS), weirdArb).map(([k, v]): Mutation => (e) => {
    const d = typeof e.data === "object" && e.data !== null && !Array.isArray(e.data)
      ? e.data as Obj
      : {};
    define(d, k, v);
    define(e, "data", d);
  }),
  fc.constantFrom(...OPS, "msg", "reply", "error", "cap_update", "PING", "", "ping\u0000").map(
    (op): Mutation => (e) => define(e, "op", op),
  ),
  fc.constantFrom(...OPS).map((op): Mutation => (e) => define(e, "op", op)),
  fc.tuple(fc.integer({ min: 1, max: 6000 }), fc.boolean()).map(
    ([n, arrays]): Mutation => (e) => define(e, "data", `@@nest:${n}:${arrays ? "a" : "o"}@@`),
  ),
  fc.dictionary(headerNameArb, fc.oneof(weirdArb, fc.array(weirdArb, { maxLength: 3 })), {
    maxKeys: 3,
  }).map((h): Mutation => (e) => define(e, "headers", h)),
);

type TextMutation = (t: string) => string;

const textMutationArb: fc.Arbitrary<TextMutation> = fc.oneof(
  fc.nat().map((n): TextMutation => (t) => t.slice(0, n % (t.length + 1))),
  fc.tuple(fc.nat(), fc.constantFrom("\u0000", "\n", "\r", '"', "{", "}", "\\", "\ud800", "🦕"))
    .map(([n, c]): TextMutation => (t) => {
      const i = n % (t.length + 1);
      return t.slice(0, i) + c + t.slice(i);
    }),
  fc.tuple(fc.nat(), fc.nat({ max: 8 })).map(([n, len]): TextMutation => (t) => {
    const i = n % (t.length + 1);
    return t.slice(0, i) + t.slice(i + len);
  }),
  fc.constantFrom<TextMutation>(
    (t) => `${t}\n${t}`,
    (t) => `\ufeff${t}`,
    (t) => t.replace(/}$/, ",}"),
    (t) => t.replace('"op"', '"op":"ping","op"'),
    (t) => t.replace('"op"', '"op":"sub","target":"$SYS.>","op"'),
    (t) => `${t}\r\n\r\n`,
    (t) => `[${t}]`,
    (t) => t.replaceAll('"', "'"),
    (t) => t.replace(/^{/, '{"__proto__":{"op":"pub"},'),
    (t) => t.replace(/^{/, '{"constructor":{"prototype":{"polluted":1}},'),
  ),
);

/** A frame: a mutated template, one of its kind coalesced with others, or random text. */
const frameArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.tuple(
      fc.nat({ max: TEMPLATES.length - 1 }),
      fc.array(mutationArb, { maxLength: 3 }),
      fc.array(textMutationArb, { maxLength: 2 }),
    ).map(([i, mutations, textMutations]) => {
      const env = structuredClone(TEMPLATES[i]);
      for (const m of mutations) m(env);
      let text = nested(JSON.stringify(env));
      for (const m of textMutations) text = m(text);
      return text;
    }),
  },
  {
    weight: 1,
    arbitrary: fc.array(fc.nat({ max: TEMPLATES.length - 1 }), { minLength: 2, maxLength: 5 })
      .map((is) => is.map((i) => JSON.stringify(TEMPLATES[i])).join("\n")),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 64 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? "") },
);

// ---------------------------------------------------------------------------------------------
// Reference: which codes a line may earn, from docs/protocol.md section 2 (not from envelope.ts)
// ---------------------------------------------------------------------------------------------

const _TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$/;
// deno-lint-ignore no-control-regex
const _HEADER_VALUE_BAD = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/;

function refHeaders(h: unknown): boolean {
  if (typeof h !== "object" || h === null || Array.isArray(h)) return false;
  const entries = Object.entries(h);
  if (entries.length > 64) return false;
  return entries.every(([name, value]) => {
    // Trace headers make nats-server publish elsewhere (2.11+): never from a client.
    if (!_TCHAR.test(name) || /^nats-trace-/i.test(name)) return false;
    const values = Array.isArray(value) ? value : [value];
    return values.length > 0 &&
      values.every((v) =>
        typeof v === "string" && v.isWellFormed() && new TextEncoder().encode(v).length <= 4096 &&
        !_HEADER_VALUE_BAD.test(v)
      );
  });
}

/** "ok", or every error code the line may earn (the parser reports one of them). */
function expected(line: string): "ok" | Set<string> {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return new Set(["bad_request"]);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return new Set(["bad_request"]);
  }
  const r = raw as Obj;
  const codes = new Set<string>();
  const inbox = r.inbox;
  if (
    inbox !== undefined && !(typeof inbox === "string" && inbox.length >= 1 && inbox.length <= 128)
  ) {
    codes.add("bad_request");
  }
  if (r.v !== undefined && r.v !== 1) codes.add("unsupported_version");
  if (typeof r.op !== "string") codes.add("bad_request");
  else if (!OPS.includes(r.op)) codes.add("unknown_op");
  if (r.target !== undefined && typeof r.target !== "string") codes.add("bad_request");
  if (r.sid !== undefined && typeof r.sid !== "string") codes.add("bad_request");
  if (r.headers !== undefined && !refHeaders(r.headers)) codes.add("bad_request");
  const t = r.timeout_ms;
  if (t !== undefined && !(typeof t === "number" && Number.isSafeInteger(t) && t >= 0)) {
    codes.add("bad_request");
  }
  return codes.size > 0 ? codes : "ok";
}

const _lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

// ---------------------------------------------------------------------------------------------
// The parser, pure
// ---------------------------------------------------------------------------------------------

Deno.test("fuzz parseFrame: never throws; every line is an envelope or a documented error", () => {
  const protoBefore = Object.getOwnPropertyNames(Object.prototype).join();
  const seen = { ok: 0, failed: 0 };
  fc.assert(
    fc.property(frameArb, (frame) => {
      const text = frame.replaceAll("%TOKEN%", "x.y.z");
      const results = parseFrame(text);
      const lines = _lines(text);
      assert.equal(results.length, lines.length, "one result per non-blank line");
      results.forEach((r, i) => {
        const want = expected(lines[i]);
        const shown = JSON.stringify(lines[i].slice(0, 120));
        if (isFailure(r)) {
          seen.failed++;
          // Hostile lines cost no Error (no stack capture): failures are shared frozen values.
          assert.ok(!(r.error instanceof Error) && Object.isFrozen(r.error), shown);
          assert.ok(want !== "ok" && want.has(r.error.code), `${shown}: ${r.error.code}`);
          assert.equal(typeof r.error.message, "string");
          assert.ok(r.error.message.length < 200, `short message: ${r.error.message}`);
          const { op, target, inbox } = r.context;
          for (const v of [op, target, inbox]) assert.ok(v === undefined || typeof v === "string");
          if (inbox !== undefined) assert.ok(inbox.length >= 1 && inbox.length <= 128);
          const out = errorEnvelope(r.error, r.context);
          assert.ok(!out.includes("\n"), "an error envelope is one NDJSON line");
          assert.equal(JSON.parse(out).data.code, r.error.code);
        } else {
          seen.ok++;
          assert.equal(want, "ok", `${shown} accepted; the reference expects ${[...want]}`);
          assert.ok(OPS.includes(r.op), r.op);
          assert.ok(r.target === undefined || typeof r.target === "string");
          assert.ok(r.sid === undefined || typeof r.sid === "string");
          assert.ok(r.inbox === undefined || (r.inbox.length >= 1 && r.inbox.length <= 128));
          assert.ok(r.timeout_ms === undefined || Number.isSafeInteger(r.timeout_ms));
        }
      });
    }),
    { seed: SEED, numRuns: 3000 },
  );
  assert.ok(seen.ok > 500 && seen.failed > 500, `both outcomes exercised: ${JSON.stringify(seen)}`);
  assert.equal(Object.getOwnPropertyNames(Object.prototype).join(), protoBefore, "no pollution");
  assert.equal(({} as Obj).polluted, undefined);
  assert.equal(({} as Obj).op, undefined);
});

Deno.test("fuzz validateEnvelope: any value, even non-JSON ones, gives a result, never a throw", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.anything({
          withNullPrototype: true,
          withSparseArray: true,
          withMap: true,
          withSet: true,
          withDate: true,
          withBigInt: true,
          withTypedArray: true,
          withBoxedValues: true,
          key: fc.constantFrom(...KEYS, ...DATA_KEYS),
        }),
        fc.record({ op: fc.constantFrom(...OPS), headers: fc.anything() }),
      ),
      (v) => {
        const r = validateEnvelope(v);
        if (isFailure(r)) assert.ok(CODES.has(r.error.code), r.error.code);
        else assert.ok(OPS.includes(r.op));
      },
    ),
    { seed: SEED, numRuns: 2000 },
  );
});

// ---------------------------------------------------------------------------------------------
// A real gateway
// ---------------------------------------------------------------------------------------------

const MAX_FRAME = 16384;
const USER = "fuzz";
const CAPS = {
  subjects: ["chat.>"],
  publish: ["chat.>"],
  commands: ["todos.>"],
  buckets: { todos: [">"] },
  streams: { CHAT: [">"] },
};

/** Live frames: the fuzz frames, oversized ones, and binary frames. */
const liveFrameArb: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  { weight: 12, arbitrary: frameArb },
  {
    weight: 1,
    arbitrary: fc.integer({ min: MAX_FRAME + 1, max: 4 * MAX_FRAME }).map((n) =>
      JSON.stringify({ op: "ping", data: "x".repeat(n) })
    ),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      frameArb.map((f) => new TextEncoder().encode(f)),
    ),
  },
);

function inboxesOf(text: string): string[] {
  return parseFrame(text).map((r) => isFailure(r) ? r.context.inbox : r.inbox).filter(
    (x): x is string => x !== undefined,
  );
}

Deno.test("fuzz gateway: every hostile frame earns documented errors or a documented close", async () => {
  const errorLogs: string[] = [];
  await using stack = await Stack.start({
    gateway: {
      limits: { maxFrameBytes: MAX_FRAME, rate: 1e6, burst: 1e6, maxSubs: 32 },
      log: createLogger({ level: "error", write: (l) => void errorLogs.push(l) }),
    },
  });
  await stack.setCaps(USER, CAPS);
  await new Kvm(stack.nc).create("todos");
  await (await jetstreamManager(stack.nc)).streams.add({ name: "CHAT", subjects: ["chat.>"] });
  const token = await stack.token(USER);
  const frames = fc.sample(liveFrameArb, { seed: SEED, numRuns: 400 });
  const sent = new Set<string>();
  const closes: number[] = [];
  const codes = new Map<string, number>();
  let c = await stack.client(USER);
  let closed = false;
  const watch = (client: TestClient) => {
    closed = false;
    client.closed.then(() => void (closed = true));
  };
  watch(c);
  // Event-driven wait (the client wakes on every envelope and on close); the predicate ignores
  // which envelope it is shown, and the first cap_update guarantees it is shown one.
  const until = (cond: () => boolean, what: string) => c.next(() => closed || cond(), 5000, what);
  for (const [i, frame] of frames.entries()) {
    if (closed) {
      c = await stack.client(USER);
      watch(c);
    }
    // The socket sends lone surrogates as U+FFFD: parse what the gateway will really read.
    const text = typeof frame === "string"
      ? frame.replaceAll("%TOKEN%", token).toWellFormed()
      : undefined;
    const what = `frame ${i}: ${
      JSON.stringify((text ?? `<binary ${frame.length}>`).slice(0, 160))
    }`;
    const start = c.received.length;
    for (const inbox of text ? inboxesOf(text) : []) sent.add(inbox);
    const oversized = text !== undefined && new TextEncoder().encode(text).length > MAX_FRAME;
    c.sendRaw(text ?? frame);
    // Deno drops the connection without its close frame when more data follows a server close
    // (see docs/security.md, Gaps): send nothing more until a possible close has been seen.
    if (oversized) await until(() => false, `${what}: close`);
    const auths = text ? parseFrame(text).filter((r) => !isFailure(r) && r.op === "auth") : [];
    if (auths.length > 0) {
      // A refresh is verified asynchronously; a bad token then closes with 4001.
      const t0 = Date.now();
      const answered = (ib?: string) => ib !== undefined && c.received.some((e) => e.inbox === ib);
      const done = () => auths.every((a) => !isFailure(a) && answered(a.inbox));
      while (!closed && !done() && Date.now() < t0 + 100) {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    if (!closed) {
      const sentinel = `sentinel-${i}`;
      sent.add(sentinel);
      c.send({ op: "ping", inbox: sentinel });
      await until(() => c.received.some((e) => e.inbox === sentinel), what);
    }
    const window: Envelope[] = c.received.slice(start);
    for (const e of window) {
      assert.ok(["reply", "error", "pong", "msg", "cap_update"].includes(e.op), `${what}: ${e.op}`);
      assert.equal(e.v, 1, `${what}: v`);
      if (e.inbox !== undefined) assert.ok(sent.has(e.inbox), `${what}: invented inbox ${e.inbox}`);
      if (e.op === "error") {
        assert.ok(CODES.has(e.data?.code), `${what}: undocumented code ${e.data?.code}`);
        assert.equal(typeof e.data.message, "string", what);
        assert.ok(!e.data.message.includes(token), `${what}: token echoed`);
        assert.equal(typeof e.data.context, "object", what);
        codes.set(e.data.code, (codes.get(e.data.code) ?? 0) + 1);
      }
    }
    const errors = window.filter((e) => e.op === "error");
    if (closed) {
      const { code } = await c.closed;
      closes.push(code);
      assert.ok(CLOSE_CODES.has(code), `${what}: undocumented close code ${code}`);
      if (text && new TextEncoder().encode(text).length > MAX_FRAME) {
        assert.equal(code, 1009, `${what}: oversized`);
      }
    } else if (text === undefined) {
      assert.ok(errors.some((e) => e.data.code === "bad_request" && e.inbox === undefined), what);
    } else {
      const failures = parseFrame(text).filter(isFailure).length;
      assert.ok(
        errors.length >= failures,
        `${what}: ${failures} bad lines, ${errors.length} errors`,
      );
    }
  }
  // Still up: a fresh client connects and pings.
  const fresh = await stack.client(USER);
  const pong = await fresh.request({ op: "ping", data: { alive: true } });
  assert.equal(pong.op, "pong");
  assert.deepEqual(pong.data, { alive: true });
  assert.ok(closes.includes(1009), `oversized frames closed 1009 (${closes})`);
  assert.ok(codes.size >= 5, `several error codes exercised: ${[...codes.keys()]}`);
  assert.ok(stack.gateway.sessionCount <= 2, `sessions released (${stack.gateway.sessionCount})`);
  assert.deepEqual(errorLogs, [], "no internal errors logged");
});

Deno.test("compression is never negotiated, so there are no compression bombs to defuse", async () => {
  await using stack = await Stack.start();
  await stack.setCaps(USER, CAPS);
  const u = new URL(stack.gateway.wsUrl);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  try {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const token = encodeURIComponent(await stack.token(USER));
    await conn.write(new TextEncoder().encode(
      `GET ${u.pathname}?token=${token} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    ));
    const buf = new Uint8Array(4096);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    assert.match(head, /^HTTP\/1\.1 101/, head);
    assert.doesNotMatch(head, /sec-websocket-extensions/i, "no extension accepted");
  } finally {
    conn.close();
  }
});

Deno.test("logs: client-controlled text cannot inject control characters; tokens never logged", async () => {
  const lines: string[] = [];
  await using stack = await Stack.start({
    gateway: { log: createLogger({ level: "debug", write: (l) => void lines.push(l) }) },
  });
  await stack.setCaps(USER, CAPS);
  const token = await stack.token(USER);
  const c = await stack.client(USER, { query: token });
  await c.request({ op: "sub", target: "chat.x" });
  await c.request({ op: "sub", target: "$SYS.x" });
  c.ws.close(3000, "\u001b[2J\u001b]0;owned\u0007\r\nINFO forged line\u009b31m");
  await c.closed;
  await waitFor(() => lines.some((l) => l.includes("session disconnect")), 5000, "disconnect log");
  const bad = `${token.slice(0, -4)}AAAA`;
  await TestClient.connect(stack.gateway.wsUrl, { query: bad }).then(
    (x) => x.close(),
    () => {},
  );
  await waitFor(() => lines.some((l) => l.includes("bad token")), 5000, "refusal log");
  for (const l of lines) {
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(l, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/, `raw control: ${l}`);
    assert.ok(!l.includes(token) && !l.includes(bad), `a token in the log: ${l}`);
  }
});

Deno.test("binary frames are rate limited like ops; a sustained flood closes 4029", async () => {
  await using stack = await Stack.start({ gateway: { limits: { rate: 20, burst: 10 } } });
  await stack.setCaps(USER, CAPS);
  const c = await stack.client(USER);
  const start = c.received.length;
  for (let i = 0; i < 30; i++) c.sendRaw(new Uint8Array([i]));
  c.send({ op: "ping", inbox: "after" });
  await c.answer("after");
  const codes = c.received.slice(start).filter((e) => e.op === "error").map((e) => e.data.code);
  const bad = codes.filter((x) => x === "bad_request").length;
  assert.ok(bad >= 10 && bad < 30, `burst honoured, rest limited (${bad} bad_request)`);
  assert.ok(codes.includes("limit_exceeded"), `limited: ${codes}`);
  // One frame per tick (5x the rate): several back to back would race the close frame (Gaps).
  const flood = setInterval(() => {
    try {
      c.sendRaw(new Uint8Array([1, 2, 3]));
    } catch {
      // closed
    }
  }, 10);
  try {
    assert.equal((await c.closed).code, 4029);
  } finally {
    clearInterval(flood);
  }
});
