import assert from "node:assert/strict";
import { changesJson, diffCapabilities, formatChange } from "./_diff.ts";

Deno.test("diffCapabilities: pattern by pattern, per field and per bucket/stream", () => {
  const table: Array<[string, unknown, unknown, string[]]> = [
    ["no change", { subjects: ["a", "b"] }, { subjects: ["b", "a"] }, []],
    ["added pattern", { subjects: ["a"] }, { subjects: ["a", "b"] }, ["+ subjects b"]],
    ["removed pattern", { publish: ["a", "b"] }, { publish: ["a"] }, ["- publish b"]],
    ["from nothing", null, { subjects: ["a"], commands: ["c"] }, [
      "+ commands c",
      "+ subjects a",
    ]],
    ["to nothing (deleted)", { subjects: ["a"] }, null, ["- subjects a"]],
    ["field dropped", { subjects: ["a"], publish: ["p"] }, { subjects: ["a"] }, ["- publish p"]],
    [
      "bucket keys",
      { buckets: { todos: ["user.a.>"], notes: [">"] } },
      { buckets: { todos: ["user.a.>", "shared.>"] } },
      ["- buckets notes=>", "+ buckets todos=shared.>"],
    ],
    ["stream added", {}, { streams: { CHAT: ["chat.>"] } }, ["+ streams CHAT=chat.>"]],
    ["replace then remove", { subjects: ["a"] }, { subjects: ["b"] }, [
      "- subjects a",
      "+ subjects b",
    ]],
    ["unknown scalar field", { role: "x" }, { role: "y" }, ['~ role: "x" → "y"']],
    ["scalar field appears", {}, { role: "x" }, ['~ role: (none) → "x"']],
    ["not an object", "garbage", { subjects: ["a"] }, ["+ subjects a"]],
  ];
  for (const [name, before, after, want] of table) {
    assert.deepEqual(diffCapabilities(before, after).map(formatChange), want, name);
  }
});

Deno.test("changesJson groups added and removed like a capabilities document", () => {
  const changes = diffCapabilities(
    { subjects: ["a"], buckets: { todos: ["x"] }, role: 1 },
    { subjects: ["b"], buckets: { todos: ["x", "y"] }, role: 2 },
  );
  assert.deepEqual(changesJson(changes), {
    added: { buckets: { todos: ["y"] }, subjects: ["b"] },
    removed: { subjects: ["a"] },
    replaced: { role: { old: 1, new: 2 } },
  });
  assert.deepEqual(changesJson([]), { added: {}, removed: {} });
});
