/** Table-driven tests of subject rules: validation, matching, the true subset check and `$`.
 * Includes a seeded property test: "subset" must imply "every subject matched is covered".
 * @module */

import assert from "node:assert/strict";
import {
  deliverableTo,
  firstTokenIsWildcard,
  isLiteralSubject,
  isSubset,
  matchTokens,
  patternMatches,
  subsetTokens,
  tokenizePattern,
  validateBucketName,
  validateHeaderName,
  validateHeaderValue,
  validateKvKey,
  validateQueueName,
  validateStreamName,
  validateSubject,
} from "./subject.ts";

Deno.test("validateSubject: what NATS accepts, and conservative refusals", () => {
  const cases: Array<[string, boolean, boolean]> = [
    // [subject, valid with wildcards, valid as literal]
    ["a", true, true],
    ["a.b.c", true, true],
    ["$JS.API.INFO", true, true],
    ["héllo.wörld", true, true],
    ["a-b_c/d=e:f#g", true, true],
    ["a.*", true, false],
    ["a.>", true, false],
    [">", true, false],
    ["*", true, false],
    ["*.*", true, false],
    ["*.b.>", true, false],
    ["", false, false],
    [".", false, false],
    ["a..b", false, false],
    [".a", false, false],
    ["a.", false, false],
    ["a b", false, false],
    [" a", false, false],
    ["a\tb", false, false],
    ["a\rb", false, false],
    ["a\nb", false, false],
    ["a\r\nPUB x 1", false, false],
    ["a\u0000b", false, false],
    ["a\u0001b", false, false],
    ["a\u001fb", false, false],
    ["a\u007fb", false, false],
    ["a\u0085b", false, false],
    ["a\u00a0b", false, false],
    ["a\u1680b", false, false],
    ["a\u2000b", false, false],
    ["a\u200bb", false, false],
    ["a\u2028b", false, false],
    ["a\u2029b", false, false],
    ["a\u202fb", false, false],
    ["a\u2060b", false, false],
    ["a\u3000b", false, false],
    ["a\ufeffb", false, false],
    ["a\ud800b", false, false],
    ["a.\udc00", false, false],
    ["a\ud83e\udd95", true, true],
    ["a.>.b", false, false],
    [">.a", false, false],
    ["a.>.>", false, false],
    ["a*", false, false],
    ["a>b", false, false],
    ["*a.b", false, false],
    ["a.**", false, false],
    ["a.>>", false, false],
    ["x".repeat(256), true, true],
    ["x".repeat(257), false, false],
    ["a.".repeat(127) + "bc", true, true],
    ["a.".repeat(128) + "b", false, false],
    ["é".repeat(128), true, true],
    ["é".repeat(128) + "a", false, false],
    ["€".repeat(85) + "a", true, true],
    ["€".repeat(86), false, false],
    ["🦕".repeat(64), true, true],
    ["🦕".repeat(64) + ".a", false, false],
  ];
  for (const [s, wild, literal] of cases) {
    const name = JSON.stringify(s.length > 40 ? `${s.slice(0, 20)}…(${s.length})` : s);
    assert.equal(validateSubject(s) === null, wild, `wildcards: ${name}`);
    assert.equal(validateSubject(s, { wildcards: false }) === null, literal, `literal: ${name}`);
    assert.equal(validateSubject(s, { wildcards: true }) === null, wild, `explicit: ${name}`);
  }
});

Deno.test("validateSubject: reasons", () => {
  const cases: Array<[string, { wildcards?: boolean } | undefined, string | null]> = [
    ["a.b", undefined, null],
    ["", undefined, "empty subject"],
    ["a..b", undefined, "empty token"],
    ["a.", undefined, "empty token"],
    ["a b", undefined, "contains whitespace or control characters"],
    ["a\u2028", undefined, "contains whitespace or control characters"],
    ["a.>.b", undefined, "'>' must be the last token"],
    ["a*", undefined, "'*' and '>' must be whole tokens"],
    ["a.*", { wildcards: false }, "wildcards not allowed"],
    ["x".repeat(257), undefined, "longer than 256 bytes"],
    ["\ud800", undefined, "not well-formed Unicode (lone surrogate)"],
    [1 as unknown as string, undefined, "subject must be a string"],
  ];
  for (const [s, opts, want] of cases) {
    assert.equal(validateSubject(s, opts), want, `reason for ${JSON.stringify(s)}`);
  }
});

Deno.test("isLiteralSubject", () => {
  const cases: Array<[string, boolean]> = [
    ["a.b", true],
    ["$JS.API", true],
    ["a.*", false],
    ["a.>", false],
    [">", false],
    ["*.a", false],
  ];
  for (const [s, want] of cases) assert.equal(isLiteralSubject(s), want, s);
});

type _Validator = (s: string) => string | null;

Deno.test("names: queues, buckets, streams, KV keys, headers", () => {
  const kv: _Validator = (k) => validateKvKey(k);
  const kvLiteral: _Validator = (k) => validateKvKey(k, { wildcards: false });
  const table: Array<[string, _Validator, string, boolean]> = [
    ["queue", validateQueueName, "workers", true],
    ["queue", validateQueueName, "wörkers-1_$", true],
    ["queue", validateQueueName, "x".repeat(256), true],
    ["queue", validateQueueName, "x".repeat(257), false],
    ["queue", validateQueueName, "a.b", false],
    ["queue", validateQueueName, "a b", false],
    ["queue", validateQueueName, "a\n", false],
    ["queue", validateQueueName, "a\u2028", false],
    ["queue", validateQueueName, "*", false],
    ["queue", validateQueueName, ">", false],
    ["queue", validateQueueName, "a*", false],
    ["queue", validateQueueName, "", false],
    ["bucket", validateBucketName, "todos", true],
    ["bucket", validateBucketName, "my_bucket-1", true],
    ["bucket", validateBucketName, "x".repeat(252), true],
    // Regression: KV_ + 253 bytes is over nats-server's 255-byte stream name limit.
    ["bucket", validateBucketName, "x".repeat(253), false],
    ["bucket", validateBucketName, "x".repeat(255), false],
    ["bucket", validateBucketName, "x".repeat(256), false],
    ["bucket", validateBucketName, "a.b", false],
    ["bucket", validateBucketName, "a b", false],
    ["bucket", validateBucketName, "$KV", false],
    ["bucket", validateBucketName, "é", false],
    ["bucket", validateBucketName, "*", false],
    ["bucket", validateBucketName, ">", false],
    ["bucket", validateBucketName, "", false],
    ["stream", validateStreamName, "CHAT", true],
    ["stream", validateStreamName, "$SPECIAL", true],
    ["stream", validateStreamName, "KV_todos", true],
    ["stream", validateStreamName, "x".repeat(255), true],
    ["stream", validateStreamName, "x".repeat(256), false],
    ["stream", validateStreamName, "é".repeat(127) + "x", true],
    ["stream", validateStreamName, "é".repeat(128), false],
    ["stream", validateStreamName, "a.b", false],
    ["stream", validateStreamName, "a*", false],
    ["stream", validateStreamName, "a>", false],
    ["stream", validateStreamName, "a/b", false],
    ["stream", validateStreamName, "a\\b", false],
    ["stream", validateStreamName, "a b", false],
    ["stream", validateStreamName, "a\tb", false],
    ["stream", validateStreamName, "a\u0000", false],
    ["stream", validateStreamName, "a\u00a0", false],
    ["stream", validateStreamName, "\udfff", false],
    ["stream", validateStreamName, "", false],
    ["kv", kv, "user.123.name", true],
    ["kv", kv, "user.*", true],
    ["kv", kv, "*.x", true],
    ["kv", kv, ">", true],
    ["kv", kv, "a/b=c_d-e", true],
    ["kv", kv, "=2A", true],
    ["kv", kv, "x".repeat(256), true],
    ["kv", kv, "x".repeat(257), false],
    ["kv", kv, "", false],
    ["kv", kv, ".a", false],
    ["kv", kv, "a.", false],
    ["kv", kv, "a..b", false],
    ["kv", kv, "a b", false],
    ["kv", kv, "a\n", false],
    ["kv", kv, "a$", false],
    ["kv", kv, "$KV", false],
    ["kv", kv, "é", false],
    ["kv", kv, "a:b", false],
    ["kv", kv, "a*", false],
    ["kv", kv, "a.>.b", false],
    ["kv", kv, ">.a", false],
    ["kv literal", kvLiteral, "a.b", true],
    ["kv literal", kvLiteral, "a.*", false],
    ["kv literal", kvLiteral, ">", false],
    ["header name", validateHeaderName, "X-Trace", true],
    ["header name", validateHeaderName, "x!#$%&'*+-.^_`|~9", true],
    ["header name", validateHeaderName, "x".repeat(256), true],
    ["header name", validateHeaderName, "x".repeat(257), false],
    ["header name", validateHeaderName, "X Trace", false],
    ["header name", validateHeaderName, "X:Trace", false],
    ["header name", validateHeaderName, "X\r\nY", false],
    ["header name", validateHeaderName, "Ä", false],
    ["header name", validateHeaderName, "(x)", false],
    ["header name", validateHeaderName, "", false],
    ["header value", validateHeaderValue, "", true],
    ["header value", validateHeaderValue, "a b\tc", true],
    ["header value", validateHeaderValue, "héllo 🦕", true],
    ["header value", validateHeaderValue, "x".repeat(4096), true],
    ["header value", validateHeaderValue, "x".repeat(4097), false],
    ["header value", validateHeaderValue, "é".repeat(2049), false],
    ["header value", validateHeaderValue, "a\r\nb", false],
    ["header value", validateHeaderValue, "a\rb", false],
    ["header value", validateHeaderValue, "a\nb", false],
    ["header value", validateHeaderValue, "a\u0000", false],
    ["header value", validateHeaderValue, "a\u001b[31m", false],
    ["header value", validateHeaderValue, "a\u007f", false],
    ["header value", validateHeaderValue, "a\u0085", false],
    ["header value", validateHeaderValue, "a\ud800", false],
  ];
  for (const [what, fn, s, ok] of table) {
    const name = JSON.stringify(s.length > 40 ? `${s.slice(0, 20)}…(${s.length})` : s);
    assert.equal(fn(s) === null, ok, `${what} ${name}: ${fn(s)}`);
  }
});

Deno.test("names: non-strings are refused, not thrown on", () => {
  const fns: _Validator[] = [
    (s) => validateSubject(s),
    validateQueueName,
    validateBucketName,
    validateStreamName,
    (s) => validateKvKey(s),
    validateHeaderName,
    validateHeaderValue,
  ];
  for (const v of [undefined, null, 1, {}, ["a"]]) {
    for (const fn of fns) assert.notEqual(fn(v as unknown as string), null, `${fn} ${v}`);
  }
});

Deno.test("patternMatches / matchTokens: NATS semantics plus the $ rule", () => {
  const cases: Array<[string, string, boolean]> = [
    ["a.b", "a.b", true],
    ["a.b", "a.c", false],
    ["a.b", "a.b.c", false],
    ["a.b.c", "a.b", false],
    ["a.*", "a.b", true],
    ["a.*", "a.b.c", false],
    ["a.*", "a", false],
    ["a.*.c", "a.b.c", true],
    ["a.*.c", "a.b.d", false],
    ["a.>", "a.b", true],
    ["a.>", "a.b.c", true],
    ["a.>", "a", false],
    ["a.>", "b.c", false],
    [">", "anything.at.all", true],
    [">", "x", true],
    ["*", "one", true],
    ["*", "one.two", false],
    ["*.b", "a.b", true],
    ["*.*.>", "a.b.c", true],
    ["*.*.>", "a.b", false],
    [">", "$SYS.x", false],
    [">", "$JS", false],
    ["*", "$JS", false],
    ["*.API.>", "$JS.API.INFO", false],
    ["*.API.INFO", "$JS.API.INFO", false],
    ["$JS.>", "$JS.API.INFO", true],
    ["$JS.API.*", "$JS.API.INFO", true],
    ["$JS.API.INFO", "$JS.API.INFO", true],
    ["a.>", "a.$x", true],
    ["a.*", "a.$x", true],
    ["*.b", "x$.b", true],
  ];
  for (const [p, s, want] of cases) {
    assert.equal(patternMatches(p, s), want, `${p} ~ ${s}`);
    assert.equal(matchTokens(tokenizePattern(p), tokenizePattern(s)), want, `tokens ${p} ~ ${s}`);
  }
  assert.equal(matchTokens([], ["a"]), false, "empty pattern");
  assert.equal(matchTokens(["a"], []), false, "empty subject");
});

Deno.test("isSubset / subsetTokens: a true subset check (not nats-server's)", () => {
  const cases: Array<[string, string, boolean]> = [
    ["chat.room.*", "chat.room.*", true],
    ["chat.room.1", "chat.room.*", true],
    ["chat.>", "chat.room.*", false],
    ["*.room.1", "chat.room.*", false],
    ["chat.*.*", "chat.room.*", false],
    ["chat.room", "chat.room.*", false],
    ["chat.room.1.x", "chat.room.*", false],
    ["foo.>", "foo.*", false],
    ["foo.*", "foo.>", true],
    ["foo.*.>", "foo.>", true],
    ["foo.>", "foo.*.>", false],
    ["foo.a.>", "foo.*.>", true],
    ["foo.*.*", "foo.*.>", true],
    ["foo.*", "foo.*.>", false],
    [">", ">", true],
    ["a", ">", true],
    ["*", ">", true],
    ["*.*.*", ">", true],
    [">", "*", false],
    [">", "*.>", false],
    ["*.>", ">", true],
    ["foo", "foo.>", false],
    ["foo", "foo", true],
    ["foo.bar", "foo.bar", true],
    ["foo.bar", "foo.baz", false],
    ["foo.bar.baz", "foo.*", false],
    ["*", "*", true],
    ["*", "a", false],
    ["a", "*", true],
    ["user.>", "user.123.*", false],
    ["user.123.*", "user.123.*", true],
    ["*.x", "*.x", true],
    ["*.x", "a.*", false],
    // The $ rule.
    ["$JS.API.INFO", ">", false],
    ["$JS.API.>", ">", false],
    ["$JS.API.>", "*.API.>", false],
    ["$JS.API.INFO", "*.API.INFO", false],
    ["$JS.API.>", "$JS.>", true],
    ["$JS.API.INFO", "$JS.>", true],
    ["$JS.API.>", "$JS.API.>", true],
    ["$JS.>", "$JS.API.>", false],
    [">", "$JS.>", false],
    ["*.API.>", "$JS.>", false],
    ["*.API.>", "*.API.>", true],
    ["*.API.>", ">", true],
    ["a.$x", "a.*", true],
    ["a.$x", "a.>", true],
  ];
  for (const [r, g, want] of cases) {
    assert.equal(isSubset(r, g), want, `${r} ⊆ ${g}`);
    assert.equal(subsetTokens(tokenizePattern(r), tokenizePattern(g)), want, `tokens ${r} ⊆ ${g}`);
  }
  assert.equal(subsetTokens([], [">"]), false, "empty requested");
  assert.equal(subsetTokens(["a"], []), false, "empty granted");
});

Deno.test("deliverableTo / firstTokenIsWildcard: leading wildcards never deliver $ subjects", () => {
  const cases: Array<[string, string, boolean]> = [
    [">", "$SYS.x", false],
    ["*.x", "$SYS.x", false],
    ["*", "$SYS", false],
    [">", "a.x", true],
    ["*.x", "a.x", true],
    ["$SYS.>", "$SYS.x", true],
    ["a.>", "a.$x", true],
    ["a.b", "a.b", true],
  ];
  for (const [p, s, want] of cases) {
    assert.equal(deliverableTo(tokenizePattern(p), s), want, `${p} delivers ${s}`);
  }
  const first: Array<[string, boolean]> = [[">", true], ["*.a", true], ["a.>", false], [
    "$x",
    false,
  ]];
  for (const [p, want] of first) assert.equal(firstTokenIsWildcard(tokenizePattern(p)), want, p);
  assert.equal(firstTokenIsWildcard([]), false, "no tokens");
});

function _mulberry32(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("property: subset iff every concrete subject is covered; literals match themselves", () => {
  const rnd = _mulberry32(20261124);
  const literals = ["a", "b", "$x"];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const pattern = (): string[] => {
    const n = 1 + Math.floor(rnd() * 4);
    const t: string[] = [];
    for (let i = 0; i < n; i++) {
      // `>` only as the last token: anything else is not a valid pattern.
      t.push(pick(i === n - 1 ? [...literals, "*", ">"] : [...literals, "*"]));
    }
    return t;
  };
  const randomSubject = (): string[] => {
    const n = 1 + Math.floor(rnd() * 5);
    return Array.from({ length: n }, () => pick([...literals, "c"]));
  };
  // Every literal subject of 1..5 tokens over {a, b, c, $x}: longer than any pattern, so a
  // pattern ending in `>` reaches past every pattern without one. `c` is never in a pattern.
  const subjects: string[][] = [];
  const grow = (prefix: string[]) => {
    if (prefix.length > 0) subjects.push(prefix);
    if (prefix.length === 5) return;
    for (const l of [...literals, "c"]) grow([...prefix, l]);
  };
  grow([]);
  let subsets = 0;
  let literalPatterns = 0;
  for (let i = 0; i < 3000; i++) {
    const r = pattern();
    const g = i % 10 === 0 ? r : pattern();
    const name = `${r.join(".")} ⊆ ${g.join(".")}`;
    assert.equal(validateSubject(r.join(".")), null, `generated pattern ${r.join(".")} is valid`);
    const escaping = subjects.find((s) => matchTokens(r, s) && !matchTokens(g, s));
    if (subsetTokens(r, g)) {
      subsets++;
      assert.equal(escaping, undefined, `${name} but ${escaping?.join(".")} escapes`);
    } else {
      // Completeness: a denial always has a witness (no valid pattern matches nothing).
      assert.notEqual(escaping, undefined, `${name} denied yet no subject escapes`);
    }
    assert.equal(subsetTokens(r, r), true, `reflexive ${r.join(".")}`);
    if (r.every((t) => t !== "*" && t !== ">")) {
      literalPatterns++;
      for (let j = 0; j < 20; j++) {
        const s = randomSubject();
        assert.equal(matchTokens(r, s), r.join(".") === s.join("."), `${r.join(".")} ~ ${s}`);
      }
      assert.equal(matchTokens(r, r), true, `literal ${r.join(".")} matches itself`);
    }
  }
  assert.ok(subsets > 300, `the generator produced subsets (${subsets})`);
  assert.ok(literalPatterns > 100, `the generator produced literals (${literalPatterns})`);
});
