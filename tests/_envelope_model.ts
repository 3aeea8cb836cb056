/** The inbound-frame fuzzer: fast-check arbitraries of hostile frames (mutated envelopes of every
 * op, random text, hostile keys and sizes) and a reference of the error codes a line may earn,
 * written from docs/protocol.md section 2, not from envelope.ts. Shared by the pure fuzz tests
 * beside src/protocol/envelope.ts and the live ones in tests/envelope_fuzz_test.ts.
 * @module */

import fc from "fast-check";

/** Error codes of docs/protocol.md section 6. */
export const CODES = new Set([
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
export const CLOSE_CODES = new Set([1001, 1009, 4000, 4001, 4003, 4008, 4029]);

export const OPS = ["auth", "sub", "unsub", "kv_sub", "js_sub", "ack", "cmd", "pub", "ping"];

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

export const KEYS = [
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
export const DATA_KEYS = [
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

export type Obj = Record<string, unknown>;

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
export const frameArb: fc.Arbitrary<string> = fc.oneof(
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
export function expected(line: string): "ok" | Set<string> {
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

/** The non-blank lines of a frame, as the parser sees them. */
export const frameLines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");
