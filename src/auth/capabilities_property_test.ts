/** Property tests (fast-check, seeded) of capability checks and name validation against the
 * reference models in tests/_capabilities_model.ts: subset soundness, literal exactness, KV/stream
 * scoping, validators. Pure; the same models against a real nats-server are in
 * tests/capabilities_property_test.ts.
 * @module */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type Capabilities,
  checkCommand,
  checkKv,
  checkPublish,
  checkStream,
  checkSubscribe,
  compileCapabilities,
  parseCapabilities,
} from "./capabilities.ts";
import {
  isLiteralSubject,
  validateBucketName,
  validateKvKey,
  validateQueueName,
  validateStreamName,
  validateSubject,
} from "../protocol/subject.ts";
import {
  candidateArb,
  fillArb,
  instantiate,
  KV_UNIVERSE,
  kvPatternArb,
  patternArb,
  refBucket,
  refKvKey,
  refMatch,
  refQueue,
  refScope,
  refStream,
  refSubject,
  requestArb,
  SCOPE_NAMES,
  scopedDoc,
  UNIVERSE,
} from "../../tests/_capabilities_model.ts";
import { seeded, testSeed } from "../../tests/_prng.ts";

/** One seed for every property in this file (NATSGATE_SEED to change it). */
const SEED = testSeed();

Deno.test("property: an allowed sub covers every concrete subject it can match", () => {
  let allowed = 0;
  fc.assert(
    fc.property(
      requestArb,
      fillArb,
      fc.integer({ min: 1, max: 4 }),
      ([requested, granted], fill, extra) => {
        const set = compileCapabilities({ subjects: granted });
        const d = checkSubscribe(set, requested);
        if (!d.allowed) return;
        allowed++;
        const covered = (s: string) => granted.some((g) => refMatch(g, s));
        for (const s of [...UNIVERSE, instantiate(requested, fill, extra)]) {
          if (refMatch(requested, s) && !covered(s)) {
            throw new Error(`${requested} allowed by ${granted.join(", ")}, yet ${s} escapes`);
          }
        }
        // The rule named in the verdict is a granted pattern.
        assert.ok(granted.some((g) => d.rule === `subjects: ${g}`), d.rule);
      },
    ),
    seeded(600, SEED),
  );
  assert.ok(allowed > 200, `the generator produced allowed subscriptions (${allowed})`);
});

Deno.test("property: a literal subject is allowed exactly when a granted pattern matches it", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.constantFrom(...UNIVERSE), fillArb.map((f) => f.slice(0, 5).join("."))),
      fc.array(patternArb, { maxLength: 3 }),
      (subject, granted) => {
        const want = granted.some((g) => refMatch(g, subject));
        const caps = { subjects: granted, publish: granted, commands: granted };
        const set = compileCapabilities(caps);
        assert.equal(checkSubscribe(set, subject).allowed, want, `sub ${subject} by ${granted}`);
        assert.equal(checkPublish(set, subject).allowed, want, `pub ${subject} by ${granted}`);
        assert.equal(checkCommand(set, subject).allowed, want, `cmd ${subject} by ${granted}`);
      },
    ),
    seeded(1500, SEED),
  );
});

Deno.test("property: wildcard requests are never publish or cmd targets; $ needs a literal grant", () => {
  fc.assert(
    fc.property(patternArb, fc.array(patternArb, { maxLength: 3 }), (target, granted) => {
      const set = compileCapabilities({ subjects: granted, publish: granted, commands: granted });
      if (!isLiteralSubject(target)) {
        assert.equal(checkPublish(set, target).allowed, false, `pub ${target}`);
        assert.equal(checkCommand(set, target).allowed, false, `cmd ${target}`);
      }
      // A request whose first token is `$…` is only ever granted by a literal first token.
      if (target.startsWith("$") && checkSubscribe(set, target).allowed) {
        assert.ok(granted.some((g) => g.split(".")[0] === target.split(".")[0]), target);
      }
    }),
    seeded(1000, SEED),
  );
});

Deno.test("property: kv_sub is allowed only when one bucket grant covers every key it can watch", () => {
  let allowed = 0;
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(
          fc.constantFrom(...SCOPE_NAMES),
          fc.array(kvPatternArb, { minLength: 1, maxLength: 3 }),
        ),
        { maxLength: 4 },
      ),
      fc.constantFrom("todos", "orders", "other", "__proto__", "constructor", "toString"),
      fc.oneof(kvPatternArb, fc.constantFrom(...KV_UNIVERSE)),
      (entries, bucket, pattern) => {
        const doc = scopedDoc("buckets", entries);
        const scopes = Object.entries(doc.buckets!).filter(([name]) => refScope(name, bucket));
        const covered = (k: string) => scopes.some(([, ps]) => ps.some((p) => refMatch(p, k)));
        const d = checkKv(compileCapabilities(doc), bucket, pattern);
        if (d.allowed) {
          allowed++;
          for (const k of KV_UNIVERSE) {
            if (refMatch(pattern, k) && !covered(k)) {
              throw new Error(`kv ${bucket} ${pattern} allowed, yet key ${k} escapes`);
            }
          }
        }
        if (!pattern.includes("*") && !pattern.includes(">")) {
          assert.equal(d.allowed, covered(pattern), `literal key ${bucket} ${pattern}`);
        }
      },
    ),
    seeded(1000, SEED),
  );
  assert.ok(allowed > 100, `the generator produced allowed watches (${allowed})`);
});

Deno.test("property: js_sub is allowed only when one stream grant covers every subject of the filter", () => {
  let allowed = 0;
  fc.assert(
    fc.property(
      requestArb.chain(([filter, grants]) =>
        fc.tuple(
          fc.constant(filter),
          fc.array(
            fc.tuple(
              fc.constantFrom(...SCOPE_NAMES, "$SYS", "KV_auth"),
              fc.oneof(fc.constant(grants), fc.array(patternArb, { minLength: 1, maxLength: 3 })),
            ),
            { maxLength: 4 },
          ),
        )
      ),
      fc.constantFrom("todos", "orders", "$SYS", "KV_auth", "__proto__", "constructor", "valueOf"),
      fillArb,
      ([filter, entries], stream, fill) => {
        const doc = scopedDoc("streams", entries);
        const scopes = Object.entries(doc.streams!).filter(([name]) => refScope(name, stream));
        const covered = (s: string) => scopes.some(([, ps]) => ps.some((p) => refMatch(p, s)));
        const d = checkStream(compileCapabilities(doc), stream, filter);
        if (d.allowed) {
          allowed++;
          for (const s of [...UNIVERSE, instantiate(filter, fill, 3)]) {
            if (refMatch(filter, s) && !covered(s)) {
              throw new Error(`js ${stream} ${filter} allowed, yet ${s} escapes`);
            }
          }
        }
        if (isLiteralSubject(filter)) {
          assert.equal(d.allowed, covered(filter), `literal filter ${stream} ${filter}`);
        }
      },
    ),
    seeded(1000, SEED),
  );
  assert.ok(allowed > 100, `the generator produced allowed stream reads (${allowed})`);
});

Deno.test("property: validators accept nothing the NATS reference rejects", () => {
  const accepted = { subject: 0, literal: 0, queue: 0, kv: 0, kvLiteral: 0, bucket: 0, stream: 0 };
  fc.assert(
    fc.property(candidateArb, (s) => {
      const shown = JSON.stringify(s.length > 40 ? `${s.slice(0, 20)}…(${s.length})` : s);
      const rows: Array<[keyof typeof accepted, (s: string) => string | null, boolean]> = [
        ["subject", (x) => validateSubject(x), refSubject(s)],
        ["literal", (x) => validateSubject(x, { wildcards: false }), refSubject(s, false)],
        ["queue", validateQueueName, refQueue(s)],
        ["kv", (x) => validateKvKey(x), refKvKey(s)],
        ["kvLiteral", (x) => validateKvKey(x, { wildcards: false }), refKvKey(s, false)],
        ["bucket", validateBucketName, refBucket(s)],
        ["stream", validateStreamName, refStream(s)],
      ];
      for (const [what, validate, ref] of rows) {
        const verdict = validate(s);
        if (verdict === null) {
          accepted[what]++;
          assert.ok(ref, `${what} ${shown} accepted by the gateway, refused by the reference`);
        } else {
          assert.equal(typeof verdict, "string", `${what} ${shown}: a reason`);
        }
      }
      // KV keys and bucket names are plain ASCII rules: the gateway matches them exactly.
      assert.equal(validateKvKey(s) === null, refKvKey(s), `kv ${shown} exact`);
      assert.equal(validateBucketName(s) === null, refBucket(s), `bucket ${shown} exact`);
    }),
    seeded(4000, SEED),
  );
  for (const [what, n] of Object.entries(accepted)) {
    assert.ok(n >= 40, `the generator produced accepted ${what} samples (${n})`);
  }
});

Deno.test("property: capability parsing and compiling never throw, whatever the document", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.anything({
          withNullPrototype: true,
          withSparseArray: true,
          withMap: true,
          withDate: true,
          withBoxedValues: true,
          key: fc.constantFrom("subjects", "publish", "buckets", "streams", "__proto__", "x"),
        }),
        fc.record({
          subjects: fc.array(candidateArb, { maxLength: 3 }),
          buckets: fc.dictionary(candidateArb, fc.array(candidateArb, { maxLength: 2 }), {
            maxKeys: 3,
          }),
          streams: fc.dictionary(candidateArb, fc.array(candidateArb, { maxLength: 2 }), {
            maxKeys: 3,
          }),
        }),
      ),
      candidateArb,
      (doc, target) => {
        const parsed = parseCapabilities(doc);
        if (!parsed.ok) assert.ok(parsed.errors.length > 0);
        // compileCapabilities takes documents (objects); whatever they hold must not throw.
        if (typeof doc !== "object" || doc === null) return;
        const set = compileCapabilities(doc as Capabilities);
        for (const check of [checkSubscribe, checkPublish, checkCommand]) {
          const d = check(set, target);
          if (d.allowed) assert.ok(refSubject(target), `granted an invalid subject ${target}`);
        }
        const kv = checkKv(set, target, target);
        if (kv.allowed) assert.ok(refBucket(target) && refKvKey(target), `kv ${target}`);
        const js = checkStream(set, target, target);
        if (js.allowed) assert.ok(refStream(target) && refSubject(target), `js ${target}`);
      },
    ),
    seeded(1500, SEED),
  );
  assert.equal(({} as Record<string, unknown>).subjects, undefined, "Object.prototype clean");
});
