/** Tests of capability documents and checks: strict parsing, subset rules, bucket/stream scoping.
 * Each denial names why; each grant names the pattern that granted it.
 * @module */

import assert from "node:assert/strict";
import {
  checkCommand,
  checkKv,
  checkPublish,
  checkStream,
  checkSubscribe,
  compileCapabilities,
  EMPTY_CAPABILITIES,
  parseCapabilities,
  parseCapabilitiesJson,
  summarizeCapabilities,
} from "../src/capabilities.ts";

const DOC = {
  subjects: ["chat.room.*", "articles.>"],
  publish: ["chat.room.*"],
  commands: ["articles.create", "todos.add"],
  buckets: { todos: ["user.123.*"], articles: [">"], "*": ["public.>"] },
  streams: { CHAT: ["chat.room.123"], AUDIT: [">"] },
};

Deno.test("parseCapabilities: valid documents", () => {
  const ok = [{}, DOC, { subjects: [] }, { buckets: {} }, { streams: { ">": [">"] } }];
  for (const d of ok) assert.ok(parseCapabilities(d).ok, JSON.stringify(d));
  const r = parseCapabilities(DOC);
  assert.ok(r.ok);
  assert.deepEqual(JSON.parse(JSON.stringify(r.value)), DOC);
});

Deno.test("parseCapabilities: strict, errors name the field", () => {
  const cases: Array<[unknown, RegExp]> = [
    [null, /JSON object/],
    [[], /JSON object/],
    ["x", /JSON object/],
    [{ admin: true }, /^admin: unknown field/],
    [{ subjects: "x" }, /^subjects: must be an array/],
    [{ subjects: [1] }, /^subjects\[0\]: must be a string/],
    [{ subjects: [["a"]] }, /^subjects\[0\]/],
    [{ subjects: ["a..b"] }, /^subjects\[0\]: empty token/],
    [{ publish: ["a b"] }, /^publish\[0\]/],
    [{ commands: ["a.>.b"] }, /^commands\[0\]/],
    [{ buckets: [] }, /^buckets: must be an object/],
    [{ buckets: { "a.b": [">"] } }, /^buckets\.a\.b/],
    [{ buckets: { todos: "x" } }, /^buckets\.todos: must be an array/],
    [{ buckets: { todos: ["a b"] } }, /^buckets\.todos\[0\]/],
    [{ streams: { "A.B": [">"] } }, /^streams\.A\.B/],
    [{ streams: { A: [null] } }, /^streams\.A\[0\]/],
    [{ subjects: null }, /^subjects: must be an array/],
  ];
  for (const [doc, re] of cases) {
    const r = parseCapabilities(doc);
    assert.ok(!r.ok, JSON.stringify(doc));
    assert.match(r.errors[0], re, JSON.stringify(doc));
  }
  const json = parseCapabilitiesJson("{nope");
  assert.ok(!json.ok);
  assert.match(json.errors[0], /invalid JSON/);
});

Deno.test("parseCapabilities: __proto__ keys are data, never prototypes", () => {
  const top = parseCapabilitiesJson('{"__proto__":{"subjects":[">"]}}');
  assert.ok(!top.ok, "an unknown top-level __proto__ field is an error");
  // `__proto__` is a valid bucket name ([A-Za-z0-9_-]+): it must stay a plain key.
  const inner = parseCapabilitiesJson('{"buckets":{"__proto__":[">"]}}');
  assert.ok(inner.ok);
  const buckets = inner.value.buckets!;
  assert.ok(Object.hasOwn(buckets, "__proto__"), "kept as an own key");
  assert.equal(Object.getPrototypeOf(buckets), Object.prototype, "prototype untouched");
  const set = compileCapabilities(inner.value);
  assert.equal(checkKv(set, "__proto__").allowed, true);
  assert.equal(checkKv(set, "other").allowed, false, "no other bucket granted");
  assert.equal(({} as Record<string, unknown>).subjects, undefined);
});

Deno.test("checks: subjects, publish, commands", () => {
  const set = compileCapabilities(DOC);
  const cases: Array<[string, (s: string) => ReturnType<typeof checkSubscribe>, string, boolean]> =
    [
      ["sub", (s) => checkSubscribe(set, s), "chat.room.1", true],
      ["sub", (s) => checkSubscribe(set, s), "chat.room.*", true],
      ["sub", (s) => checkSubscribe(set, s), "chat.>", false],
      ["sub", (s) => checkSubscribe(set, s), "*.room.1", false],
      ["sub", (s) => checkSubscribe(set, s), "chat.*.*", false],
      ["sub", (s) => checkSubscribe(set, s), "articles.x.y", true],
      ["sub", (s) => checkSubscribe(set, s), "a b", false],
      ["pub", (s) => checkPublish(set, s), "chat.room.1", true],
      ["pub", (s) => checkPublish(set, s), "chat.room.*", false],
      ["pub", (s) => checkPublish(set, s), "articles.x", false],
      ["cmd", (s) => checkCommand(set, s), "articles.create", true],
      ["cmd", (s) => checkCommand(set, s), "articles.delete", false],
      ["cmd", (s) => checkCommand(set, s), "todos.*", false],
    ];
  for (const [op, check, target, want] of cases) {
    assert.equal(check(target).allowed, want, `${op} ${target}`);
  }
  const granted = checkSubscribe(set, "chat.room.1");
  assert.deepEqual(granted, { allowed: true, rule: "subjects: chat.room.*" });
  const denied = checkSubscribe(set, "chat.>");
  assert.ok(!denied.allowed && /no pattern in subjects covers chat\.>/.test(denied.reason));
  const wild = checkPublish(set, "chat.room.*");
  assert.ok(!wild.allowed && /literal/.test(wild.reason));
});

Deno.test("checks: buckets and streams are scoped to their own patterns", () => {
  const set = compileCapabilities(DOC);
  const kv: Array<[string, string | undefined, boolean]> = [
    ["todos", "user.123.*", true],
    ["todos", "user.123.name", true],
    ["todos", "user.>", false],
    ["todos", undefined, false],
    ["todos", "user.456.name", false],
    ["articles", undefined, true],
    ["other", "public.x", true],
    ["other", "user.123.name", false],
    ["todos", "public.x", true],
  ];
  for (const [bucket, key, want] of kv) {
    assert.equal(checkKv(set, bucket, key).allowed, want, `kv ${bucket} ${key}`);
  }
  const js: Array<[string, string | undefined, boolean]> = [
    ["CHAT", "chat.room.123", true],
    ["CHAT", undefined, false],
    ["CHAT", "chat.room.*", false],
    ["AUDIT", undefined, true],
    ["OTHER", ">", false],
    ["$SYS", ">", false],
  ];
  for (const [stream, filter, want] of js) {
    assert.equal(checkStream(set, stream, filter).allowed, want, `js ${stream} ${filter}`);
  }
  const r = checkKv(set, "todos", "user.123.*");
  assert.deepEqual(r, { allowed: true, rule: "buckets.todos: user.123.*" });
  const none = checkStream(set, "OTHER");
  assert.ok(!none.allowed && /no stream pattern matches OTHER/.test(none.reason));
});

Deno.test("EMPTY_CAPABILITIES grants nothing; summary", () => {
  assert.equal(checkSubscribe(EMPTY_CAPABILITIES, "a").allowed, false);
  assert.equal(checkKv(EMPTY_CAPABILITIES, "a").allowed, false);
  assert.equal(
    summarizeCapabilities(DOC),
    "subjects 2, publish 1, commands 2, buckets 3, streams 2",
  );
});
