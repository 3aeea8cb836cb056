import assert from "node:assert/strict";
import { cycles, importGraph } from "./import_cycles.ts";

const g = (edges: Record<string, string[]>) =>
  new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));

Deno.test("cycles: table", () => {
  const cases: Array<[string, Record<string, string[]>, string[][]]> = [
    ["none", { a: ["b"], b: ["c"], c: [] }, []],
    ["two", { a: ["b"], b: ["a"] }, [["a", "b"]]],
    ["three, with a tail", { x: ["a"], a: ["b"], b: ["c"], c: ["a"] }, [["a", "b", "c"]]],
    ["self import", { a: ["a"] }, [["a"]]],
    ["two separate", { a: ["b"], b: ["a"], c: ["d"], d: ["c"] }, [["a", "b"], ["c", "d"]]],
  ];
  for (const [name, edges, want] of cases) {
    assert.deepEqual(cycles(g(edges)).sort(), want, name);
  }
});

Deno.test("the project has no import cycle", async () => {
  const graph = await importGraph();
  assert.ok(graph.size > 20, `the graph covers the project (${graph.size} modules)`);
  assert.deepEqual(cycles(graph), []);
});
