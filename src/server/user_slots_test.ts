/** Per-user connection slots.
 * @module */

import assert from "node:assert/strict";
import { UserSlots } from "./user_slots.ts";

Deno.test("user slots: up to the limit per user, independent users, given back", () => {
  const slots = new UserSlots(2);
  assert.equal(slots.acquire("a"), true);
  assert.equal(slots.acquire("a"), true);
  assert.equal(slots.acquire("a"), false, "third connection of a refused");
  assert.equal(slots.acquire("b"), true, "b has its own count");
  assert.deepEqual([...slots.counts()].sort(), [1, 2]);
  slots.release("a");
  assert.equal(slots.held("a"), 1);
  assert.equal(slots.acquire("a"), true, "a slot given back can be taken again");
  slots.release("b");
  assert.equal(slots.held("b"), 0);
  assert.deepEqual([...slots.counts()], [2], "a user with no slot is forgotten");
  slots.release("nobody");
  assert.equal(slots.held("nobody"), 0, "releasing what is not held never goes negative");
});
