/** Tests of role names, keys and which roles a session holds.
 * @module */

import assert from "node:assert/strict";
import { heldRoles, roleFromKey, roleKey, rolesFromClaim, validateRoleName } from "./roles.ts";

Deno.test("validateRoleName: one plain token or an error", () => {
  const cases: [unknown, string | null][] = [
    ["staff", null],
    ["a_b-C9", null],
    ["x".repeat(64), null],
    ["x".repeat(65), "role name longer than 64 bytes"],
    ["", "empty role name"],
    ["a.b", "role names use only A-Z a-z 0-9 _ -"],
    ["*", "role names use only A-Z a-z 0-9 _ -"],
    [">", "role names use only A-Z a-z 0-9 _ -"],
    ["a b", "role names use only A-Z a-z 0-9 _ -"],
    ["é", "role names use only A-Z a-z 0-9 _ -"],
    [3, "role name must be a string"],
  ];
  for (const [n, want] of cases) assert.equal(validateRoleName(n), want, String(n));
});

Deno.test("roleKey and roleFromKey", () => {
  assert.equal(roleKey("staff"), "roles.staff");
  assert.throws(() => roleKey("a.b"));
  const cases: [string, string | null][] = [
    ["roles.staff", "staff"],
    ["roles.a.b", null],
    ["roles.", null],
    ["users.staff", null],
    ["roles.*", null],
  ];
  for (const [k, want] of cases) assert.equal(roleFromKey(k), want, k);
});

Deno.test("rolesFromClaim: arrays or one string, valid names only", () => {
  const cases: [Record<string, unknown> | undefined, string | undefined, string[]][] = [
    [{ roles: ["a", "b"] }, "roles", ["a", "b"]],
    [{ roles: "a" }, "roles", ["a"]],
    [{ roles: ["a", ">", "*", "x.y", 3, "", "b"] }, "roles", ["a", "b"]],
    [{ roles: { a: 1 } }, "roles", []],
    [{ roles: ["a"] }, undefined, []],
    [{}, "roles", []],
    [undefined, "roles", []],
    [{ roles: ["a"] }, "__proto__", []],
  ];
  for (const [claims, claim, want] of cases) {
    assert.deepEqual(rolesFromClaim(claims, claim), want, JSON.stringify([claims, claim]));
  }
});

Deno.test("heldRoles: user document, default role, claim; each once with every source", () => {
  assert.deepEqual(
    heldRoles(["staff", "bad.name", "staff"], { defaultRole: "base", rolesClaim: "r" }, {
      r: ["staff", "ops", "base"],
    }),
    [
      { name: "staff", via: ["user", "claim"] },
      { name: "base", via: ["default", "claim"] },
      { name: "ops", via: ["claim"] },
    ],
  );
  assert.deepEqual(heldRoles(undefined, {}, { r: ["x"] }), [], "no claim configured");
  assert.deepEqual(heldRoles(undefined, { defaultRole: "d" }), [{ name: "d", via: ["default"] }]);
});
