/** Tests of the user id → KV key encoding: reversible, one token, never a pattern.
 * Ids that look like patterns or paths must stay their own literal key.
 * @module */

import assert from "node:assert/strict";
import {
  decodeUserId,
  encodeUserId,
  MAX_ENCODED_USER_ID,
  userFromKey,
  userKey,
  USERS_PREFIX,
  validateUserId,
} from "./user_key.ts";
import { isLiteralSubject, validateKvKey } from "../protocol/subject.ts";

Deno.test("encodeUserId: examples and round trips", () => {
  const cases: Array<[string, string]> = [
    ["alice", "alice"],
    ["a-b_c9", "a-b_c9"],
    ["ALICE", "ALICE"],
    ["bob.x", "bob=2Ex"],
    ["a.b", "a=2Eb"],
    ["*", "=2A"],
    [">", "=3E"],
    ["=", "=3D"],
    ["=2A", "=3D2A"],
    ["a b", "a=20b"],
    ["a/b", "a=2Fb"],
    ["$SYS", "=24SYS"],
    ["users.x", "users=2Ex"],
    ["users.victim", "users=2Evictim"],
    ["auth0|5f7c", "auth0=7C5f7c"],
    ["alice@example.com", "alice=40example=2Ecom"],
    ["\u0000", "=00"],
    ["\r\n", "=0D=0A"],
    ["é", "=C3=A9"],
    ["e\u0301", "e=CC=81"],
    ["日本", "=E6=97=A5=E6=9C=AC"],
    ["🦕", "=F0=9F=A6=95"],
    ["\ufeffa", "=EF=BB=BFa"],
    ["\ufffd", "=EF=BF=BD"],
    ["__proto__", "__proto__"],
  ];
  for (const [id, enc] of cases) {
    const name = JSON.stringify(id);
    assert.equal(encodeUserId(id), enc, `encode ${name}`);
    assert.equal(decodeUserId(enc), id, `decode ${enc}`);
    assert.equal(validateUserId(id), null, `valid ${name}`);
    assert.equal(validateKvKey(enc, { wildcards: false }), null, `${enc} is one valid key token`);
    assert.equal(userKey(id), USERS_PREFIX + enc, `key of ${name}`);
    assert.equal(validateKvKey(userKey(id), { wildcards: false }), null, `key of ${name} valid`);
    assert.equal(userFromKey(userKey(id)), id, `user of key of ${name}`);
  }
});

Deno.test("encodeUserId: ids it refuses", () => {
  const long = "x".repeat(MAX_ENCODED_USER_ID);
  const cases: Array<[string, string, RegExp]> = [
    ["empty", "", /empty/],
    ["lone high surrogate", "a\ud800", /well-formed/],
    ["lone low surrogate", "\udc00b", /well-formed/],
    ["too long", long + "x", /longer than/],
    ["too long once encoded", ".".repeat(Math.floor(MAX_ENCODED_USER_ID / 3) + 1), /longer than/],
  ];
  for (const [what, id, re] of cases) {
    assert.throws(() => encodeUserId(id), re, what);
    assert.throws(() => userKey(id), re, `userKey: ${what}`);
    assert.match(validateUserId(id) ?? "", re, `validateUserId: ${what}`);
  }
  // The longest acceptable ids.
  assert.equal(encodeUserId(long), long);
  const dots = ".".repeat(Math.floor(MAX_ENCODED_USER_ID / 3));
  assert.equal(decodeUserId(encodeUserId(dots)), dots);
  assert.equal(validateKvKey(userKey(long), { wildcards: false }), null, "longest key is valid");
  assert.equal(validateUserId(1 as unknown as string), "user id must be a string");
});

Deno.test("decodeUserId: malformed and non-canonical input is refused", () => {
  const bad: Array<[string, string]> = [
    ["empty", ""],
    ["lone =", "="],
    ["half escape", "=4"],
    ["half escape then text", "=4x"],
    ["not hex", "=ZZ"],
    ["lower-case hex", "=2a"],
    ["escaped kept char", "=61"],
    ["escaped dash", "=2D"],
    ["dot", "a.b"],
    ["star", "a*"],
    ["gt", ">"],
    ["space", "a b"],
    ["non-ASCII", "é"],
    ["truncated UTF-8", "=C3"],
    ["overlong UTF-8", "=C0=AF"],
    ["encoded surrogate", "=ED=A0=80"],
    ["beyond U+10FFFF", "=F4=90=80=80"],
    ["stray continuation", "=80"],
    ["too long", "x".repeat(MAX_ENCODED_USER_ID + 1)],
  ];
  for (const [what, enc] of bad) {
    assert.throws(() => decodeUserId(enc), `decode ${what} ${JSON.stringify(enc)}`);
    assert.equal(userFromKey(USERS_PREFIX + enc), null, `userFromKey ${what}`);
  }
});

Deno.test("userFromKey: only well-formed users. keys", () => {
  const cases: Array<[string, string | null]> = [
    ["users.alice", "alice"],
    ["users.=2A", "*"],
    ["users.bob=2Ex", "bob.x"],
    ["users.", null],
    ["users", null],
    ["other.alice", null],
    ["Users.alice", null],
    ["users.a.b", null],
    ["users.users.alice", null],
    ["users.=ZZ", null],
    ["", null],
  ];
  for (const [key, want] of cases) assert.equal(userFromKey(key), want, key);
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

Deno.test("property: random ids round-trip into one literal token, distinct ids stay distinct", () => {
  const rnd = _mulberry32(7);
  const alphabet = [..."aZ09_-.=*> $/\\\t\n\u0000é€日🦕\u2028\ufeff\ufffd"];
  const seen = new Map<string, string>();
  for (let i = 0; i < 3000; i++) {
    const n = 1 + Math.floor(rnd() * 12);
    let id = "";
    for (let j = 0; j < n; j++) id += alphabet[Math.floor(rnd() * alphabet.length)];
    const enc = encodeUserId(id);
    const name = JSON.stringify(id);
    assert.equal(validateKvKey(enc, { wildcards: false }), null, `token ${name}`);
    assert.ok(isLiteralSubject(userKey(id)), `literal ${name}`);
    assert.equal(userKey(id).split(".").length, 2, `two tokens ${name}`);
    assert.equal(decodeUserId(enc), id, `round trip ${name}`);
    const prev = seen.get(enc);
    assert.ok(prev === undefined || prev === id, `collision ${name} / ${JSON.stringify(prev)}`);
    seen.set(enc, id);
  }
});
