/** Tests of the user id → KV key encoding: reversible, one token, never a pattern.
 * Ids that look like patterns or paths must stay their own literal key.
 * @module */

import assert from "node:assert/strict";
import { decodeUserId, encodeUserId, userFromKey, userKey } from "../src/user_key.ts";
import { validateKvKey } from "../src/subject.ts";

Deno.test("encodeUserId: examples and round trips", () => {
  const cases: Array<[string, string]> = [
    ["alice", "alice"],
    ["a-b_c9", "a-b_c9"],
    ["bob.x", "bob=2Ex"],
    ["*", "=2A"],
    [">", "=3E"],
    ["=", "=3D"],
    ["a b", "a=20b"],
    ["é", "=C3=A9"],
    ["users.victim", "users=2Evictim"],
    ["\u0000", "=00"],
    ["🦕", "=F0=9F=A6=95"],
  ];
  for (const [id, enc] of cases) {
    assert.equal(encodeUserId(id), enc, id);
    assert.equal(decodeUserId(enc), id, enc);
    assert.equal(validateKvKey(enc, { wildcards: false }), null, `${enc} is one valid key token`);
    assert.equal(userFromKey(userKey(id)), id);
  }
  assert.throws(() => encodeUserId(""));
});

Deno.test("decodeUserId: malformed and non-canonical input is refused", () => {
  for (const bad of ["", "=", "=4", "=ZZ", "=2a", "a.b", "a*", "=61"]) {
    assert.throws(() => decodeUserId(bad), `decode ${JSON.stringify(bad)}`);
  }
  assert.equal(userFromKey("other.alice"), null);
  assert.equal(userFromKey("users.=ZZ"), null);
});
