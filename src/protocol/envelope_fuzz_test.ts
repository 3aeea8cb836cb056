/** Fuzzing of inbound frames (fast-check, seeded) against the reference in
 * tests/_envelope_model.ts: the parser never throws and every line earns a documented result.
 * The same frames against a real gateway are in tests/envelope_fuzz_test.ts.
 * @module */

import assert from "node:assert/strict";
import fc from "fast-check";
import { isFailure, parseFrame, validateEnvelope } from "./envelope.ts";
import { errorFrame } from "./frames.ts";
import {
  CODES,
  DATA_KEYS,
  expected,
  frameArb,
  frameLines,
  KEYS,
  type Obj,
  OPS,
} from "../../tests/_envelope_model.ts";
import { seeded, testSeed } from "../../tests/_prng.ts";

/** One seed for every property in this file (NATSGATE_SEED to change it). */
const SEED = testSeed();

Deno.test("fuzz parseFrame: never throws; every line is an envelope or a documented error", () => {
  const protoBefore = Object.getOwnPropertyNames(Object.prototype).join();
  const seen = { ok: 0, failed: 0 };
  fc.assert(
    fc.property(frameArb, (frame) => {
      const text = frame.replaceAll("%TOKEN%", "x.y.z");
      const results = parseFrame(text);
      const lines = frameLines(text);
      assert.equal(results.length, lines.length, "one result per non-blank line");
      results.forEach((r, i) => {
        const want = expected(lines[i]);
        const shown = JSON.stringify(lines[i].slice(0, 120));
        if (isFailure(r)) {
          seen.failed++;
          // Hostile lines cost no Error (no stack capture): failures are shared frozen values.
          assert.ok(!(r.error instanceof Error) && Object.isFrozen(r.error), shown);
          assert.ok(want !== "ok" && want.has(r.error.code), `${shown}: ${r.error.code}`);
          assert.equal(typeof r.error.message, "string");
          assert.ok(r.error.message.length < 200, `short message: ${r.error.message}`);
          const { op, target, inbox } = r.context;
          for (const v of [op, target, inbox]) assert.ok(v === undefined || typeof v === "string");
          if (inbox !== undefined) assert.ok(inbox.length >= 1 && inbox.length <= 128);
          const out = errorFrame(r.error, r.context);
          assert.ok(!out.includes("\n"), "an error envelope is one NDJSON line");
          assert.equal(JSON.parse(out).data.code, r.error.code);
        } else {
          seen.ok++;
          assert.equal(want, "ok", `${shown} accepted; the reference expects ${[...want]}`);
          assert.ok(OPS.includes(r.op), r.op);
          assert.ok(r.target === undefined || typeof r.target === "string");
          assert.ok(r.sid === undefined || typeof r.sid === "string");
          assert.ok(r.inbox === undefined || (r.inbox.length >= 1 && r.inbox.length <= 128));
          assert.ok(r.timeout_ms === undefined || Number.isSafeInteger(r.timeout_ms));
        }
      });
    }),
    seeded(3000, SEED),
  );
  assert.ok(seen.ok > 500 && seen.failed > 500, `both outcomes exercised: ${JSON.stringify(seen)}`);
  assert.equal(Object.getOwnPropertyNames(Object.prototype).join(), protoBefore, "no pollution");
  assert.equal(({} as Obj).polluted, undefined);
  assert.equal(({} as Obj).op, undefined);
});

Deno.test("fuzz validateEnvelope: any value, even non-JSON ones, gives a result, never a throw", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.anything({
          withNullPrototype: true,
          withSparseArray: true,
          withMap: true,
          withSet: true,
          withDate: true,
          withBigInt: true,
          withTypedArray: true,
          withBoxedValues: true,
          key: fc.constantFrom(...KEYS, ...DATA_KEYS),
        }),
        fc.record({ op: fc.constantFrom(...OPS), headers: fc.anything() }),
      ),
      (v) => {
        const r = validateEnvelope(v);
        if (isFailure(r)) assert.ok(CODES.has(r.error.code), r.error.code);
        else assert.ok(OPS.includes(r.op));
      },
    ),
    seeded(2000, SEED),
  );
});
