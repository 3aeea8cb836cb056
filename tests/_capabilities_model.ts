/** Reference models of NATS subjects, names and capability checks, and the fast-check arbitraries
 * that feed them: shared by the property tests beside src/auth/capabilities.ts (pure) and the ones
 * against a real nats-server and gateway in tests/capabilities_property_test.ts. No nats-server here.
 * @module */

import fc from "fast-check";
import { type Capabilities, parseCapabilities } from "../src/auth/capabilities.ts";

// ---------------------------------------------------------------------------------------------
// References, written from nats-server's sublist.go and docs/protocol.md section 5, independent
// of src/protocol/subject.ts (regular expressions and Unicode properties instead of hand-rolled scanners).
// ---------------------------------------------------------------------------------------------

const _enc = new TextEncoder();
/** UTF-8 length of `s`. */
export const byteLength = (s: string) => _enc.encode(s).length;
/** Control characters and Unicode white space: never valid in subjects and names. */
const _CC_OR_SPACE = /[\p{Cc}\p{White_Space}]/u;

/** Subject (or subscription pattern) validity. */
export function refSubject(s: string, wildcards = true): boolean {
  if (typeof s !== "string" || s.length === 0 || !s.isWellFormed()) return false;
  if (byteLength(s) > 256 || _CC_OR_SPACE.test(s)) return false;
  const tokens = s.split(".");
  return tokens.every((t, i) => {
    if (t === "") return false;
    if (t === "*") return wildcards;
    if (t === ">") return wildcards && i === tokens.length - 1;
    return !t.includes("*") && !t.includes(">");
  });
}

/** Queue group names: one token, no wildcards. */
export function refQueue(q: string): boolean {
  return refSubject(q, false) && !q.includes(".");
}

/** KV keys (nats.js `validKeyRe` `[-/=.\w]`, ASCII) and, with wildcards, key patterns. */
export function refKvKey(k: string, wildcards = true): boolean {
  if (typeof k !== "string" || k.length === 0 || k.length > 256) return false;
  const tokens = k.split(".");
  return tokens.every((t, i) => {
    if (t === "*") return wildcards;
    if (t === ">") return wildcards && i === tokens.length - 1;
    return /^[-/=A-Za-z0-9_]+$/.test(t);
  });
}

/** Bucket names: nats.js `validBucketRe`; the stream `KV_<bucket>` must fit nats-server's 255. */
export function refBucket(b: string): boolean {
  return typeof b === "string" && /^[-A-Za-z0-9_]+$/.test(b) && byteLength(`KV_${b}`) <= 255;
}

/** Stream names: at most 255 bytes, no `. * > / \`, white space or controls. */
export function refStream(s: string): boolean {
  return typeof s === "string" && s.length > 0 && s.isWellFormed() && byteLength(s) <= 255 &&
    !_CC_OR_SPACE.test(s) && !/[.*>/\\]/.test(s);
}

const _matchers = new Map<string, RegExp>();

/** NATS matching (`*` one token, `>` one or more) plus the `$` rule, through a regular expression. */
export function refMatch(pattern: string, subject: string): boolean {
  const first = pattern.split(".")[0];
  if ((first === "*" || first === ">") && subject.startsWith("$")) return false;
  let re = _matchers.get(pattern);
  if (!re) {
    const body = pattern.split(".").map((t) =>
      t === ">"
        ? "[^.]+(?:\\.[^.]+)*"
        : t === "*"
        ? "[^.]+"
        : t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    ).join("\\.");
    re = new RegExp(`^${body}$`, "u");
    _matchers.set(pattern, re);
  }
  return re.test(subject);
}

/** Does a bucket or stream grant name cover `name`? Wildcard names never cover `$…` names. */
export function refScope(grant: string, name: string): boolean {
  return grant === "*" || grant === ">" ? !name.startsWith("$") : grant === name;
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/** Literal tokens of patterns; subjects also use `c`, which no pattern names. */
const LIT = ["a", "b", "$x", "é"];
const SUBJ_LIT = [...LIT, "c"];

/** Valid patterns of 1..3 tokens over {@link LIT}, `*` anywhere, `>` last. */
export const patternArb = fc.tuple(
  fc.array(fc.constantFrom(...LIT, "*"), { maxLength: 2 }),
  fc.constantFrom(...LIT, "*", ">"),
).map(([head, last]) => [...head, last].join("."));

/** A pattern that is often wider than `r`: some tokens become `*`, or a tail becomes `>`. */
const widenArb = (r: string) =>
  fc.tuple(fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), fc.nat({ max: 3 })).map(
    ([stars, cut]) => {
      const t = r.split(".").map((x, i) => stars[i] ? "*" : x);
      return cut > 0 && cut <= t.length ? [...t.slice(0, cut - 1), ">"].join(".") : t.join(".");
    },
  );

/** A requested pattern with 1..3 granted patterns, a fair share of which cover it. */
export const requestArb = patternArb.chain((r) =>
  fc.tuple(
    fc.constant(r),
    fc.array(fc.oneof(patternArb, widenArb(r)), { minLength: 1, maxLength: 3 }),
  )
);

/** Every subject of 1..4 tokens over {@link SUBJ_LIT}: longer than any pattern, so `>` reaches past. */
export const UNIVERSE: string[] = [];
(function grow(prefix: string[]) {
  if (prefix.length > 0) UNIVERSE.push(prefix.join("."));
  if (prefix.length < 4) { for (const t of SUBJ_LIT) grow([...prefix, t]); }
})([]);

/** A concrete subject the pattern matches by NATS rules: `*` one token, `>` 1..4 tokens. */
export function instantiate(pattern: string, fill: string[], extra: number): string {
  let i = 0;
  const next = () => fill[i++ % fill.length];
  return pattern.split(".").flatMap((t) =>
    t === "*" ? [next()] : t === ">" ? Array.from({ length: extra }, next) : [t]
  ).join(".");
}

export const fillArb = fc.array(fc.constantFrom(...SUBJ_LIT, "d-1", "x_y"), {
  minLength: 1,
  maxLength: 8,
});

/** Characters that break naive validators: separators, wildcards, spaces, controls, odd Unicode. */
const TRICKY = [
  "a",
  "b",
  "Z",
  "0",
  "-",
  "_",
  "/",
  "=",
  ":",
  "#",
  "$",
  "@",
  "'",
  '"',
  "\\",
  ".",
  ".",
  "*",
  ">",
  " ",
  "\t",
  "\r",
  "\n",
  "\f",
  "\v",
  "\u0000",
  "\u0001",
  "\u001b",
  "\u007f",
  "\u0085",
  "\u009b",
  "\u00a0",
  "\u00ad",
  "\u1680",
  "\u180e",
  "\u2000",
  "\u200b",
  "\u2028",
  "\u2029",
  "\u202f",
  "\u205f",
  "\u2060",
  "\u3000",
  "\ufeff",
  "\ufffd",
  "é",
  "€",
  "中",
  "🦕",
  "\ud800",
  "\udc00",
  "\u{e0001}",
];

const trickyStr = (maxLength: number) =>
  fc.array(fc.constantFrom(...TRICKY), { maxLength }).map((a) => a.join(""));

/** Strings of `n` bytes around a limit, in 1-, 2-, 3- and 4-byte characters. */
export const nearLimitArb = (lo: number, hi: number) =>
  fc.tuple(fc.integer({ min: lo, max: hi }), fc.constantFrom("x", "é", "€", "🦕", "a.", "-")).map(
    ([n, c]) => c.repeat(Math.floor(n / byteLength(c))) + "x".repeat(n % byteLength(c)),
  );

/** Candidate subjects, queue names, keys and names: random, token-shaped, near length limits. */
export const candidateArb = fc.oneof(
  trickyStr(12),
  fc.array(
    fc.oneof(fc.constantFrom("*", ">", "a", "$x", "", "é", "KV_x", "user", "123"), trickyStr(3)),
    { minLength: 1, maxLength: 6 },
  ).map((t) => t.join(".")),
  nearLimitArb(240, 262),
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.string({ unit: "grapheme", maxLength: 8 }),
);

// ---------------------------------------------------------------------------------------------
// Pure properties
// ---------------------------------------------------------------------------------------------

/** Grant names for scopes; `__proto__` and `constructor` must stay plain data. */
export const SCOPE_NAMES = ["todos", "orders", "__proto__", "constructor", "*", ">"];

/** A bucket/stream map as JSON text (so `__proto__` is an own key), parsed like KV documents. */
export function scopedDoc(
  field: "buckets" | "streams",
  entries: Array<[string, string[]]>,
): Capabilities {
  const text = `{"${field}":{${
    entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")
  }}}`;
  const parsed = parseCapabilities(JSON.parse(text));
  if (!parsed.ok) throw new Error(`generated document refused: ${parsed.errors.join("; ")}`);
  return parsed.value;
}

const KV_LIT = ["user", "123", "x"];
export const kvPatternArb = fc.tuple(
  fc.array(fc.constantFrom(...KV_LIT, "*"), { maxLength: 2 }),
  fc.constantFrom(...KV_LIT, "*", ">"),
).map(([head, last]) => [...head, last].join("."));
export const KV_UNIVERSE: string[] = [];
(function grow(prefix: string[]) {
  if (prefix.length > 0) KV_UNIVERSE.push(prefix.join("."));
  if (prefix.length < 4) { for (const t of [...KV_LIT, "y"]) grow([...prefix, t]); }
})([]);
