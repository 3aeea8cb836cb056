import assert from "node:assert/strict";
import { coalesce } from "./outbox.ts";

Deno.test("coalesce: lines share frames up to the limit; a long line goes alone", () => {
  assert.deepEqual(coalesce([], 10), []);
  assert.deepEqual(coalesce(["a", "b", "c"], 10), ["a\nb\nc"]);
  assert.deepEqual(coalesce(["aaaa", "bbbb", "cc"], 9), ["aaaa\nbbbb", "cc"]);
  assert.deepEqual(coalesce(["x".repeat(20), "y"], 9), ["x".repeat(20), "y"]);
});
