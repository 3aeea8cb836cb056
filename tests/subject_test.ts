/** Table-driven tests of subject rules: validation, matching, the true subset check and `$`.
 * Includes a seeded property test: "subset" must imply "every subject matched is covered".
 * @module */

import assert from "node:assert/strict";
import {
  deliverableTo,
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
} from "../src/subject.ts";

Deno.test("validateSubject: what NATS accepts, and conservative refusals", () => {
  const cases: Array<[string, boolean, boolean]> = [
    // [subject, valid with wildcards, valid as literal]
    ["a", true, true],
    ["a.b.c", true, true],
    ["$JS.API.INFO", true, true],
    ["héllo.wörld", true, true],
    ["a.*", true, false],
    ["a.>", true, false],
    [">", true, false],
    ["*.*", true, false],
    ["", false, false],
    ["a..b", false, false],
    [".a", false, false],
    ["a.", false, false],
    ["a b", false, false],
    ["a\tb", false, false],
    ["a\rb", false, false],
    ["a\nb", false, false],
    ["a\u0000b", false, false],
    ["a\u007fb", false, false],
    ["a\u00a0b", false, false],
    ["a\u2028b", false, false],
    ["a\ufeffb", false, false],
    ["a.>.b", false, false],
    ["a*", false, false],
    ["a>b", false, false],
    ["*a.b", false, false],
    ["x".repeat(256), true, true],
    ["x".repeat(257), false, false],
    ["é".repeat(128), true, true],
    ["é".repeat(129), false, false],
  ];
  for (const [s, wild, literal] of cases) {
    assert.equal(validateSubject(s) === null, wild, `wildcards: ${JSON.stringify(s)}`);
    assert.equal(
      validateSubject(s, { wildcards: false }) === null,
      literal,
      `literal: ${JSON.stringify(s)}`,
    );
  }
  assert.equal(isLiteralSubject("a.b"), true);
  assert.equal(isLiteralSubject("a.*"), false);
});

Deno.test("names: queues, buckets, streams, KV keys, headers", () => {
  const table: Array<[(s: string) => string | null, string, boolean]> = [
    [validateQueueName, "workers", true],
    [validateQueueName, "a.b", false],
    [validateQueueName, "a b", false],
    [validateQueueName, "*", false],
    [validateQueueName, "", false],
    [validateBucketName, "todos", true],
    [validateBucketName, "my_bucket-1", true],
    [validateBucketName, "a.b", false],
    [validateBucketName, "a b", false],
    [validateBucketName, "*", false],
    [validateBucketName, "", false],
    [validateStreamName, "CHAT", true],
    [validateStreamName, "$SPECIAL", true],
    [validateStreamName, "a.b", false],
    [validateStreamName, "a*", false],
    [validateStreamName, "a>", false],
    [validateStreamName, "a/b", false],
    [validateStreamName, "a\\b", false],
    [validateStreamName, "a b", false],
    [validateStreamName, "x".repeat(256), false],
    [(k) => validateKvKey(k), "user.123.name", true],
    [(k) => validateKvKey(k), "user.*", true],
    [(k) => validateKvKey(k), ">", true],
    [(k) => validateKvKey(k), "a/b=c_d-e", true],
    [(k) => validateKvKey(k), "a..b", false],
    [(k) => validateKvKey(k), "a b", false],
    [(k) => validateKvKey(k), "a$", false],
    [(k) => validateKvKey(k), "a.>.b", false],
    [(k) => validateKvKey(k, { wildcards: false }), "a.*", false],
    [validateHeaderName, "X-Trace", true],
    [validateHeaderName, "X Trace", false],
    [validateHeaderName, "X:Trace", false],
    [validateHeaderName, "", false],
    [validateHeaderValue, "a b\tc", true],
    [validateHeaderValue, "a\r\nb", false],
    [validateHeaderValue, "a\u0000", false],
  ];
  for (const [fn, s, ok] of table) {
    assert.equal(fn(s) === null, ok, `${fn.name || "kv"}(${JSON.stringify(s)})`);
  }
});

Deno.test("patternMatches: NATS semantics plus the $ rule", () => {
  const cases: Array<[string, string, boolean]> = [
    ["a.b", "a.b", true],
    ["a.b", "a.c", false],
    ["a.*", "a.b", true],
    ["a.*", "a.b.c", false],
    ["a.*", "a", false],
    ["a.>", "a.b", true],
    ["a.>", "a.b.c", true],
    ["a.>", "a", false],
    [">", "anything.at.all", true],
    ["*", "one", true],
    ["*.b", "a.b", true],
    [">", "$SYS.x", false],
    ["*.API.>", "$JS.API.INFO", false],
    ["$JS.>", "$JS.API.INFO", true],
    ["$JS.API.*", "$JS.API.INFO", true],
    ["a.>", "a.$x", true],
  ];
  for (const [p, s, want] of cases) assert.equal(patternMatches(p, s), want, `${p} ~ ${s}`);
});

Deno.test("isSubset: a true subset check (not nats-server's literal-token check)", () => {
  const cases: Array<[string, string, boolean]> = [
    ["chat.room.*", "chat.room.*", true],
    ["chat.room.1", "chat.room.*", true],
    ["chat.>", "chat.room.*", false],
    ["*.room.1", "chat.room.*", false],
    ["chat.*.*", "chat.room.*", false],
    ["foo.>", "foo.*", false],
    ["foo.*", "foo.>", true],
    ["foo.*.>", "foo.>", true],
    ["foo.>", "foo.*.>", false],
    ["foo.a.>", "foo.*.>", true],
    [">", ">", true],
    ["a", ">", true],
    ["*", ">", true],
    ["foo", "foo.>", false],
    ["foo.bar", "foo.bar", true],
    ["foo.bar", "foo.baz", false],
    ["foo.bar.baz", "foo.*", false],
    ["*", "*", true],
    ["*", "a", false],
    ["user.>", "user.123.*", false],
    ["user.123.*", "user.123.*", true],
    ["$JS.API.INFO", ">", false],
    ["$JS.API.INFO", "*.API.INFO", false],
    ["$JS.API.INFO", "$JS.>", true],
    [">", "$JS.>", false],
    ["*.x", "*.x", true],
  ];
  for (const [r, g, want] of cases) assert.equal(isSubset(r, g), want, `${r} ⊆ ${g}`);
});

Deno.test("deliverableTo: leading-wildcard patterns never deliver $ subjects", () => {
  assert.equal(deliverableTo(tokenizePattern(">"), "$SYS.x"), false);
  assert.equal(deliverableTo(tokenizePattern("*.x"), "$SYS.x"), false);
  assert.equal(deliverableTo(tokenizePattern(">"), "a.x"), true);
  assert.equal(deliverableTo(tokenizePattern("$SYS.>"), "$SYS.x"), true);
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

Deno.test("property: subset implies coverage of every concrete subject (seeded)", () => {
  const rnd = _mulberry32(20261124);
  const literals = ["a", "b", "$x"];
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const pattern = (): string[] => {
    const n = 1 + Math.floor(rnd() * 4);
    const t: string[] = [];
    for (let i = 0; i < n; i++) {
      const last = i === n - 1;
      t.push(pick(last ? [...literals, "*", ">"] : [...literals, "*"]));
    }
    return t;
  };
  const subjects: string[][] = [];
  const grow = (prefix: string[]) => {
    if (prefix.length > 0) subjects.push(prefix);
    if (prefix.length === 5) return;
    for (const l of literals) grow([...prefix, l]);
  };
  grow([]);
  let subsets = 0;
  for (let i = 0; i < 3000; i++) {
    const r = pattern();
    const g = pattern();
    if (subsetTokens(r, g)) {
      subsets++;
      for (const s of subjects) {
        if (matchTokens(r, s)) {
          assert.ok(
            matchTokens(g, s),
            `${r.join(".")} ⊆ ${g.join(".")} but ${s.join(".")} escapes`,
          );
        }
      }
    } else {
      // Not a subset: some subject (up to 5 tokens) matched by r is not matched by g,
      // or r matches nothing at all under the $ rule.
      const escapes = subjects.some((s) => matchTokens(r, s) && !matchTokens(g, s));
      const empty = !subjects.some((s) => matchTokens(r, s));
      if (!escapes && !empty && !r.includes(">")) {
        assert.fail(`${r.join(".")} ⊄ ${g.join(".")} yet no escaping subject found`);
      }
    }
    const lit = r.filter((t) => t !== "*" && t !== ">");
    if (lit.length === r.length) {
      for (const s of subjects) {
        assert.equal(matchTokens(r, s), r.join(".") === s.join("."), "literal matches itself only");
      }
    }
  }
  assert.ok(subsets > 50, `the generator produced subsets (${subsets})`);
});
