/** The logger: internal errors keep their stack and causes; every write stays one clean line.
 * @module */

import assert from "node:assert/strict";
import { createLogger } from "./log.ts";

Deno.test("log: an error at level error is followed by its stack and causes, line by line", () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => void lines.push(l) });
  const err = new Error("boom \u001b[2J\r\nINFO forged", { cause: new TypeError("inner") });
  log.error("op failed", { session: "s1", error: err });
  assert.match(lines[0], /ERROR op failed session=s1 error="boom/);
  assert.ok(lines.length > 3, "stack lines follow the record");
  assert.ok(lines.slice(1).every((l) => l.startsWith("    ")), "indented: never a forged record");
  assert.ok(lines.some((l) => l.includes("caused by: TypeError: inner")));
  assert.ok(lines.some((l) => l.includes("log_test.ts")), "stack frames are there");
  for (const l of lines) {
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(l, /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/, l);
  }
});

Deno.test("log: below level error an Error prints as its message alone", () => {
  const lines: string[] = [];
  createLogger({ write: (l) => void lines.push(l) }).warn("retrying", { error: new Error("x") });
  assert.equal(lines.length, 1);
  assert.match(lines[0], /WARN {2}retrying error="x"$/);
});

Deno.test("log: json format carries the stack in <field>_stack", () => {
  const lines: string[] = [];
  const log = createLogger({ format: "json", write: (l) => void lines.push(l) });
  log.error("op failed", { error: new Error("boom", { cause: "why" }) });
  assert.equal(lines.length, 1);
  const rec = JSON.parse(lines[0]);
  assert.equal(rec.error, "boom");
  assert.match(rec.error_stack, /^Error: boom\n {4}at .*log_test\.ts/);
  assert.match(rec.error_stack, /caused by: why$/);
});
