/** Property tests (fast-check, seeded) of capability checks and name validation against references.
 * Subset soundness, literal exactness, KV/stream scoping, and validators checked on a real nats-server.
 * @module */

import assert from "node:assert/strict";
import fc from "fast-check";
import { Kvm } from "@nats-io/kv";
import { AckPolicy, jetstreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import {
  type Capabilities,
  checkCommand,
  checkKv,
  checkPublish,
  checkStream,
  checkSubscribe,
  compileCapabilities,
  parseCapabilities,
} from "../src/auth/capabilities.ts";
import {
  isLiteralSubject,
  validateBucketName,
  validateKvKey,
  validateQueueName,
  validateStreamName,
  validateSubject,
} from "../src/protocol/subject.ts";
import { Stack } from "./_harness.ts";

/** One seed for every property in this file: runs are deterministic and bounded. */
const SEED = 20261127;

// ---------------------------------------------------------------------------------------------
// References, written from nats-server's sublist.go and docs/protocol.md section 5, independent
// of src/protocol/subject.ts (regular expressions and Unicode properties instead of hand-rolled scanners).
// ---------------------------------------------------------------------------------------------

const _enc = new TextEncoder();
const _bytes = (s: string) => _enc.encode(s).length;
/** Control characters and Unicode white space: never valid in subjects and names. */
const _CC_OR_SPACE = /[\p{Cc}\p{White_Space}]/u;

/** Subject (or subscription pattern) validity. */
function refSubject(s: string, wildcards = true): boolean {
  if (typeof s !== "string" || s.length === 0 || !s.isWellFormed()) return false;
  if (_bytes(s) > 256 || _CC_OR_SPACE.test(s)) return false;
  const tokens = s.split(".");
  return tokens.every((t, i) => {
    if (t === "") return false;
    if (t === "*") return wildcards;
    if (t === ">") return wildcards && i === tokens.length - 1;
    return !t.includes("*") && !t.includes(">");
  });
}

/** Queue group names: one token, no wildcards. */
function refQueue(q: string): boolean {
  return refSubject(q, false) && !q.includes(".");
}

/** KV keys (nats.js `validKeyRe` `[-/=.\w]`, ASCII) and, with wildcards, key patterns. */
function refKvKey(k: string, wildcards = true): boolean {
  if (typeof k !== "string" || k.length === 0 || k.length > 256) return false;
  const tokens = k.split(".");
  return tokens.every((t, i) => {
    if (t === "*") return wildcards;
    if (t === ">") return wildcards && i === tokens.length - 1;
    return /^[-/=A-Za-z0-9_]+$/.test(t);
  });
}

/** Bucket names: nats.js `validBucketRe`; the stream `KV_<bucket>` must fit nats-server's 255. */
function refBucket(b: string): boolean {
  return typeof b === "string" && /^[-A-Za-z0-9_]+$/.test(b) && _bytes(`KV_${b}`) <= 255;
}

/** Stream names: at most 255 bytes, no `. * > / \`, white space or controls. */
function refStream(s: string): boolean {
  return typeof s === "string" && s.length > 0 && s.isWellFormed() && _bytes(s) <= 255 &&
    !_CC_OR_SPACE.test(s) && !/[.*>/\\]/.test(s);
}

const _matchers = new Map<string, RegExp>();

/** NATS matching (`*` one token, `>` one or more) plus the `$` rule, through a regular expression. */
function refMatch(pattern: string, subject: string): boolean {
  const first = pattern.split(".")[0];
  if ((first === "*" || first === ">") && subject.startsWith("$")) return false;
  let re = _matchers.get(pattern);
  if (!re) {
    const body = pattern.split(".").map((t) =>
      t === ">"
        ? "[^.]+(?:\\.[^.]+)*"
        : t === "*"
        ? "[^.]+"
        : t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    ).join("\\.");
    re = new RegExp(`^${body}$`, "u");
    _matchers.set(pattern, re);
  }
  return re.test(subject);
}

/** Does a bucket or stream grant name cover `name`? Wildcard names never cover `$…` names. */
function refScope(grant: string, name: string): boolean {
  return grant === "*" || grant === ">" ? !name.startsWith("$") : grant === name;
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/** Literal tokens of patterns; subjects also use `c`, which no pattern names. */
const LIT = ["a", "b", "$x", "é"];
const SUBJ_LIT = [...LIT, "c"];

/** Valid patterns of 1..3 tokens over {@link LIT}, `*` anywhere, `>` last. */
const patternArb = fc.tuple(
  fc.array(fc.constantFrom(...LIT, "*"), { maxLength: 2 }),
  fc.constantFrom(...LIT, "*", ">"),
).map(([head, last]) => [...head, last].join("."));

/** A pattern that is often wider than `r`: some tokens become `*`, or a tail becomes `>`. */
const widenArb = (r: string) =>
  fc.tuple(fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), fc.nat({ max: 3 })).map(
    ([stars, cut]) => {
      const t = r.split(".").map((x, i) => stars[i] ? "*" : x);
      return cut > 0 && cut <= t.length ? [...t.slice(0, cut - 1), ">"].join(".") : t.join(".");
    },
  );

/** A requested pattern with 1..3 granted patterns, a fair share of which cover it. */
const requestArb = patternArb.chain((r) =>
  fc.tuple(
    fc.constant(r),
    fc.array(fc.oneof(patternArb, widenArb(r)), { minLength: 1, maxLength: 3 }),
  )
);

/** Every subject of 1..4 tokens over {@link SUBJ_LIT}: longer than any pattern, so `>` reaches past. */
const UNIVERSE: string[] = [];
(function grow(prefix: string[]) {
  if (prefix.length > 0) UNIVERSE.push(prefix.join("."));
  if (prefix.length < 4) { for (const t of SUBJ_LIT) grow([...prefix, t]); }
})([]);

/** A concrete subject the pattern matches by NATS rules: `*` one token, `>` 1..4 tokens. */
function instantiate(pattern: string, fill: string[], extra: number): string {
  let i = 0;
  const next = () => fill[i++ % fill.length];
  return pattern.split(".").flatMap((t) =>
    t === "*" ? [next()] : t === ">" ? Array.from({ length: extra }, next) : [t]
  ).join(".");
}

const fillArb = fc.array(fc.constantFrom(...SUBJ_LIT, "d-1", "x_y"), {
  minLength: 1,
  maxLength: 8,
});

/** Characters that break naive validators: separators, wildcards, spaces, controls, odd Unicode. */
const TRICKY = [
  "a",
  "b",
  "Z",
  "0",
  "-",
  "_",
  "/",
  "=",
  ":",
  "#",
  "$",
  "@",
  "'",
  '"',
  "\\",
  ".",
  ".",
  "*",
  ">",
  " ",
  "\t",
  "\r",
  "\n",
  "\f",
  "\v",
  "\u0000",
  "\u0001",
  "\u001b",
  "\u007f",
  "\u0085",
  "\u009b",
  "\u00a0",
  "\u00ad",
  "\u1680",
  "\u180e",
  "\u2000",
  "\u200b",
  "\u2028",
  "\u2029",
  "\u202f",
  "\u205f",
  "\u2060",
  "\u3000",
  "\ufeff",
  "\ufffd",
  "é",
  "€",
  "中",
  "🦕",
  "\ud800",
  "\udc00",
  "\u{e0001}",
];

const trickyStr = (maxLength: number) =>
  fc.array(fc.constantFrom(...TRICKY), { maxLength }).map((a) => a.join(""));

/** Strings of `n` bytes around a limit, in 1-, 2-, 3- and 4-byte characters. */
const nearLimitArb = (lo: number, hi: number) =>
  fc.tuple(fc.integer({ min: lo, max: hi }), fc.constantFrom("x", "é", "€", "🦕", "a.", "-")).map(
    ([n, c]) => c.repeat(Math.floor(n / _bytes(c))) + "x".repeat(n % _bytes(c)),
  );

/** Candidate subjects, queue names, keys and names: random, token-shaped, near length limits. */
const candidateArb = fc.oneof(
  trickyStr(12),
  fc.array(
    fc.oneof(fc.constantFrom("*", ">", "a", "$x", "", "é", "KV_x", "user", "123"), trickyStr(3)),
    { minLength: 1, maxLength: 6 },
  ).map((t) => t.join(".")),
  nearLimitArb(240, 262),
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.string({ unit: "grapheme", maxLength: 8 }),
);

// ---------------------------------------------------------------------------------------------
// Pure properties
// ---------------------------------------------------------------------------------------------

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
    { seed: SEED, numRuns: 600 },
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
    { seed: SEED, numRuns: 1500 },
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
    { seed: SEED, numRuns: 1000 },
  );
});

/** Grant names for scopes; `__proto__` and `constructor` must stay plain data. */
const SCOPE_NAMES = ["todos", "orders", "__proto__", "constructor", "*", ">"];

/** A bucket/stream map as JSON text (so `__proto__` is an own key), parsed like KV documents. */
function scopedDoc(field: "buckets" | "streams", entries: Array<[string, string[]]>): Capabilities {
  const text = `{"${field}":{${
    entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")
  }}}`;
  const parsed = parseCapabilities(JSON.parse(text));
  if (!parsed.ok) throw new Error(`generated document refused: ${parsed.errors.join("; ")}`);
  return parsed.value;
}

const KV_LIT = ["user", "123", "x"];
const kvPatternArb = fc.tuple(
  fc.array(fc.constantFrom(...KV_LIT, "*"), { maxLength: 2 }),
  fc.constantFrom(...KV_LIT, "*", ">"),
).map(([head, last]) => [...head, last].join("."));
const KV_UNIVERSE: string[] = [];
(function grow(prefix: string[]) {
  if (prefix.length > 0) KV_UNIVERSE.push(prefix.join("."));
  if (prefix.length < 4) { for (const t of [...KV_LIT, "y"]) grow([...prefix, t]); }
})([]);

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
    { seed: SEED, numRuns: 1000 },
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
    { seed: SEED, numRuns: 1000 },
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
    { seed: SEED, numRuns: 4000 },
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
    { seed: SEED, numRuns: 1500 },
  );
  assert.equal(({} as Record<string, unknown>).subjects, undefined, "Object.prototype clean");
});

// ---------------------------------------------------------------------------------------------
// Against a real nats-server
// ---------------------------------------------------------------------------------------------

/** A raw, verbose NATS protocol connection: every command gets `+OK` or `-ERR`. */
class RawNats implements Disposable {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(64 * 1024);
  #pending = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async open(url: string): Promise<RawNats> {
    const u = new URL(url);
    const raw = new RawNats(await Deno.connect({ hostname: u.hostname, port: Number(u.port) }));
    await raw.untilPong('CONNECT {"verbose":true,"pedantic":false,"echo":true}\r\nPING\r\n');
    return raw;
  }

  /** Writes `cmds` plus a PING and returns every line the server sent up to the PONG. */
  async untilPong(cmds: string): Promise<string> {
    await this.#conn.write(_enc.encode(cmds.endsWith("PING\r\n") ? cmds : `${cmds}PING\r\n`));
    const dec = new TextDecoder();
    while (true) {
      const text = dec.decode(this.#pending);
      const at = text.indexOf("PONG\r\n");
      if (at >= 0) {
        this.#pending = this.#pending.subarray(_bytes(text.slice(0, at + 6)));
        return text.slice(0, at);
      }
      const n = await this.#conn.read(this.#buf);
      if (n === null) throw new Error(`connection closed; got ${JSON.stringify(text)}`);
      const merged = new Uint8Array(this.#pending.length + n);
      merged.set(this.#pending);
      merged.set(this.#buf.subarray(0, n), this.#pending.length);
      this.#pending = merged;
    }
  }

  [Symbol.dispose](): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/** Errors nats.js reports for a connection (a server `-ERR` becomes a status `error`). */
function watchErrors(nc: NatsConnection): string[] {
  const errors: string[] = [];
  (async () => {
    for await (const st of nc.status()) {
      if (st.type === "error") errors.push(String((st as { error?: unknown }).error));
    }
  })().catch(() => {});
  return errors;
}

const liveSubjectArb = candidateArb.filter((s) => validateSubject(s) === null);

Deno.test("real nats-server: subjects and queues the gateway accepts never get -ERR", async () => {
  await using stack = await Stack.start();
  using raw = await RawNats.open(stack.nats.url);
  const subjects = fc.sample(liveSubjectArb, { seed: SEED, numRuns: 150 });
  const queues = fc.sample(candidateArb.filter((q) => validateQueueName(q) === null), {
    seed: SEED,
    numRuns: 40,
  });
  assert.ok(subjects.length === 150 && queues.length === 40);
  let sid = 0;
  let literals = 0;
  for (const [i, s] of subjects.entries()) {
    const q = i < queues.length ? ` ${queues[i]}` : "";
    const literal = validateSubject(s, { wildcards: false }) === null;
    const id = ++sid;
    const n = _bytes("hi");
    const pub = literal ? `PUB ${s} ${n}\r\nhi\r\n` : "";
    const out = await raw.untilPong(`SUB ${s}${q} ${id}\r\n${pub}UNSUB ${id}\r\n`);
    const shown = JSON.stringify(s);
    assert.ok(!out.includes("-ERR"), `${shown}${q}: ${JSON.stringify(out)}`);
    assert.equal(out.split("+OK\r\n").length - 1, literal ? 3 : 2, `${shown}: ${out}`);
    if (literal) {
      literals++;
      assert.ok(out.includes(`MSG ${s} ${id} ${n}\r\nhi\r\n`), `${shown} round trip: ${out}`);
    }
  }
  assert.ok(literals > 30, `enough literal subjects (${literals})`);

  // The same subjects through nats.js, the client the gateway itself uses.
  const errors = watchErrors(stack.nc);
  const got: string[] = [];
  const subs = subjects.map((s) =>
    stack.nc.subscribe(s, { callback: (_e, m: Msg) => void got.push(m.subject) })
  );
  const literalSubjects = subjects.filter((s) => validateSubject(s, { wildcards: false }) === null);
  for (const s of literalSubjects) stack.nc.publish(s, "x");
  await stack.nc.flush();
  for (const s of literalSubjects) assert.ok(got.includes(s), `nats.js round trip ${s}`);
  for (const sub of subs) sub.unsubscribe();
  await stack.nc.flush();
  assert.deepEqual(errors, [], "no -ERR reached nats.js");
});

Deno.test("real JetStream: accepted buckets, keys, key patterns and stream names all work", async () => {
  await using stack = await Stack.start();
  const errors = watchErrors(stack.nc);
  const kvm = new Kvm(stack.nc);
  const jsm = await jetstreamManager(stack.nc);
  const bucketArb = fc.oneof(
    candidateArb,
    fc.integer({ min: 245, max: 256 }).map((n) => "b".repeat(n)),
    fc.stringMatching(/^[-_A-Za-z0-9]{1,12}$/),
  ).filter((b) => validateBucketName(b) === null);
  const buckets = [...new Set(fc.sample(bucketArb, { seed: SEED, numRuns: 16 }))];
  for (const b of buckets) {
    const kv = await kvm.create(b).catch((e) => {
      throw new Error(`bucket ${b.length > 40 ? `${b.slice(0, 10)}…(${b.length})` : b}: ${e}`);
    });
    await kv.destroy();
  }
  const kv = await kvm.create("fuzz");
  const keyArb = fc.oneof(
    candidateArb,
    fc.stringMatching(/^[-/=_A-Za-z0-9]{1,8}(\.[-/=_A-Za-z0-9]{1,8}){0,3}$/),
  );
  const keys = fc.sample(keyArb.filter((k) => validateKvKey(k, { wildcards: false }) === null), {
    seed: SEED,
    numRuns: 40,
  });
  for (const k of keys) {
    await kv.put(k, "v").catch((e) => {
      throw new Error(`key ${JSON.stringify(k)}: ${e}`);
    });
    assert.equal((await kv.get(k))?.string(), "v", `key ${k} reads back`);
  }
  const patterns = fc.sample(
    fc.oneof(keyArb, kvPatternArb).filter((k) => validateKvKey(k) === null),
    { seed: SEED, numRuns: 20 },
  );
  for (const p of patterns) {
    // What a kv_sub sends NATS: a consumer on `$KV.<bucket>.<pattern>`.
    const ci = await jsm.consumers.add("KV_fuzz", {
      filter_subject: `$KV.fuzz.${p}`,
      ack_policy: AckPolicy.None,
    }).catch((e) => {
      throw new Error(`key pattern ${JSON.stringify(p)}: ${e}`);
    });
    await jsm.consumers.delete("KV_fuzz", ci.name);
  }
  const streams = [
    ...new Set(fc.sample(
      fc.oneof(candidateArb, nearLimitArb(250, 256)).filter((s) => validateStreamName(s) === null),
      { seed: SEED, numRuns: 16 },
    )),
  ];
  for (const [i, name] of streams.entries()) {
    await jsm.streams.add({ name, subjects: [`fuzz.stream.${i}`] }).catch((e) => {
      throw new Error(`stream ${JSON.stringify(name.slice(0, 40))} (${_bytes(name)} B): ${e}`);
    });
    await jsm.streams.delete(name);
  }
  assert.deepEqual(errors, [], "no -ERR reached nats.js");
});

Deno.test("gateway end to end: an allowed subscription delivers only granted subjects", async () => {
  await using stack = await Stack.start();
  const runs = fc.sample(fc.tuple(requestArb, fillArb), { seed: SEED, numRuns: 40 });
  let allowedRuns = 0;
  for (const [i, [[requested, granted], fill]] of runs.entries()) {
    const user = `prop${i}`;
    await stack.setCaps(user, { subjects: granted });
    const c = await stack.client(user);
    const r = await c.request({ op: "sub", target: requested });
    const want = checkSubscribe(compileCapabilities({ subjects: granted }), requested).allowed;
    assert.equal(r.op === "reply", want, `${requested} by ${granted}: ${JSON.stringify(r)}`);
    if (r.op === "reply") {
      allowedRuns++;
      const sid = r.data.id as string;
      const published = [
        ...UNIVERSE.filter((_, j) => j % 37 === i % 37),
        instantiate(requested, fill, 1),
        instantiate(requested, fill, 3),
      ];
      for (const s of published) stack.nc.publish(s, JSON.stringify(s));
      // Last, a subject the subscription matches: once it arrives, everything before it has.
      const marker = instantiate(requested, ["a"], 1);
      assert.ok(refMatch(requested, marker), marker);
      stack.nc.publish(marker, '"end"');
      await c.next((e) => e.sid === sid && e.data?.payload === "end", 5000, "end marker");
      for (const m of c.msgs(sid)) {
        const s = m.target!;
        assert.ok(refMatch(requested, s), `${s} delivered on ${requested}`);
        assert.ok(granted.some((g) => refMatch(g, s)), `${s} escaped ${granted} via ${requested}`);
      }
      for (const s of published) {
        if (refMatch(requested, s)) {
          assert.ok(c.msgs(sid).some((m) => m.target === s), `${s} not delivered on ${requested}`);
        }
      }
    }
    await c.close();
  }
  assert.ok(allowedRuns >= 8, `enough allowed runs (${allowedRuns})`);
});

Deno.test("$ rule: a `>` subscriber never sees the gateway's own inbox traffic", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("victim", { commands: ["svc.secret"], subjects: ["victim.>"] });
  await stack.setCaps("eve", { subjects: [">"] });
  stack.nc.subscribe("svc.secret", { callback: (_e, m) => void m.respond('"the-secret-reply"') });
  await stack.nc.flush();
  const eve = await stack.client("eve");
  const all = await eve.sub(">");
  // The victim's capability document is read from KV now, and its cmd answered on an inbox.
  const victim = await stack.client("victim");
  const r = await victim.request({ op: "cmd", target: "svc.secret", data: 1 });
  assert.equal(r.data, "the-secret-reply");
  assert.equal((await victim.request({ op: "kv_sub", target: "nope" })).data.code, "forbidden");
  // Published last on the same connection: once eve has it, she has had everything before it.
  stack.nc.publish("marker", '"end"');
  await eve.next((e) => e.sid === all && e.data?.payload === "end", 5000, "marker");
  const seen = eve.msgs(all);
  assert.deepEqual(
    seen.map((m) => m.target).filter((t) => t !== "svc.secret" && t !== "marker"),
    [],
    "only the request itself and the marker",
  );
  const text = JSON.stringify(seen);
  assert.ok(!text.includes("the-secret-reply"), "another user's cmd reply leaked");
  assert.ok(!text.includes("victim.>"), "a capability document leaked");
});
