/** Tests of template expansion: each placeholder is exactly one literal token, hostile values are
 * encoded, and nothing that cannot expand grants anything. Includes a seeded property test that
 * no expansion matches a subject outside its literal expansion.
 * @module */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeTemplateValue,
  expandPattern,
  hasPlaceholder,
  parsePlaceholder,
  templateError,
  templateStandIn,
} from "./templates.ts";
import { checkSubscribe, compileCapabilities } from "./capabilities.ts";
import { decodeUserId } from "./user_key.ts";
import { isSubset, patternMatches, validateSubject } from "../protocol/subject.ts";

const SEED = 20261130;
const LONG = "x".repeat(300);

Deno.test("parsePlaceholder: whole tokens only", () => {
  const cases: [string, unknown][] = [
    ["{user}", { kind: "user" }],
    ["{session}", { kind: "session" }],
    ["{claim:org}", { kind: "claim", name: "org" }],
    ["{claim:https://x/org}", { kind: "claim", name: "https://x/org" }],
    ["{claim:}", null],
    ["{claim:a b}", null],
    ["a{user}", null],
    ["{user}b", null],
    ["{User}", null],
    ["{foo}", null],
    ["user", null],
  ];
  for (const [t, want] of cases) assert.deepEqual(parsePlaceholder(t), want, t);
});

Deno.test("templateError and templateStandIn", () => {
  const cases: [string, string | null, string][] = [
    ["a.b", null, "a.b"],
    ["session.{user}.{session}.state", null, "session.x.x.state"],
    ["org.{claim:org}.>", null, "org.x.>"],
    ["chat.a{user}b", "placeholder must be a whole token: a{user}b", "chat.a{user}b"],
    ["x.{session}y", "placeholder must be a whole token: {session}y", "x.{session}y"],
    ["x.{claim:}", "placeholder must be a whole token: {claim:}", "x.{claim:}"],
    ["x.{foo}", null, "x.{foo}"],
  ];
  for (const [p, err, stand] of cases) {
    assert.equal(templateError(p), err, p);
    assert.equal(templateStandIn(p), stand, p);
  }
});

Deno.test("encodeTemplateValue: one token, encoded like user keys, or nothing", () => {
  const cases: [unknown, string | null][] = [
    ["bob", "bob"],
    ["bob.x", "bob=2Ex"],
    ["*", "=2A"],
    [">", "=3E"],
    ["a b", "a=20b"],
    ["é", "=C3=A9"],
    ["$SYS", "=24SYS"],
    ["", null],
    [LONG, null],
    ["\ud800", null],
    [42, null],
    [null, null],
    [["a"], null],
  ];
  for (const [v, want] of cases) assert.equal(encodeTemplateValue(v), want, String(v));
});

Deno.test("expandPattern: hostile ids and claims stay one literal token", () => {
  const ctx = (user: string, claims: Record<string, unknown> = {}) => ({
    user,
    session: "s1",
    claims,
  });
  const cases: [string, ReturnType<typeof ctx>, string | null][] = [
    ["plain.subject", ctx("u"), "plain.subject"],
    ["session.{user}.{session}.state", ctx("bob"), "session.bob.s1.state"],
    ["session.{user}.{session}.state", ctx("a.b"), "session.a=2Eb.s1.state"],
    ["user.{user}.>", ctx(">"), "user.=3E.>"],
    ["user.{user}", ctx("*"), "user.=2A"],
    ["user.{user}", ctx("a b"), "user.a=20b"],
    ["user.{user}", ctx("ü"), "user.=C3=BC"],
    ["org.{claim:org}.*", ctx("u", { org: "acme" }), "org.acme.*"],
    ["org.{claim:org}.*", ctx("u", { org: "a.>" }), "org.a=2E=3E.*"],
    ["org.{claim:org}", ctx("u", { org: "" }), null],
    ["org.{claim:org}", ctx("u", { org: LONG }), null],
    ["org.{claim:org}", ctx("u", { org: 7 }), null],
    ["org.{claim:org}", ctx("u", { org: ["a"] }), null],
    ["org.{claim:org}", ctx("u"), null],
    ["org.{claim:__proto__}", ctx("u"), null],
    ["chat.a{user}b", ctx("u"), null],
    ["x.{foo}", ctx("u"), "x.{foo}"],
  ];
  for (const [p, c, want] of cases) assert.equal(expandPattern(p, c), want, `${p} ${c.user}`);
  assert.equal(hasPlaceholder("x.{foo}"), false);
});

Deno.test("compileCapabilities: an unexpanded template grants nothing", () => {
  const set = compileCapabilities({ subjects: ["session.{user}.>", "a.>"] });
  assert.deepEqual(set.subjects.map((p) => p.text), ["a.>"]);
  assert.equal(checkSubscribe(set, "session.{user}.x").allowed, false);
});

// Values a hostile IdP or user could pick: dots, wildcards, whitespace, empties, long, unicode.
const _hostile = fc.oneof(
  fc.constantFrom("a.b", "*", ">", "a b", "", LONG, "ü", "$SYS", "a.*", "a.>", "..", "{user}"),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: "grapheme", maxLength: 8 }),
  fc.array(fc.constantFrom("a", ".", "*", ">", " ", "\t", "é", "=", "{", "}"), { maxLength: 12 })
    .map((a) => a.join("")),
);

const _templateToken = fc.constantFrom("{user}", "{session}", "{claim:c}", "lit", "*", "x1");

Deno.test("property: no expansion matches a subject outside its literal expansion", () => {
  fc.assert(
    fc.property(
      fc.array(_templateToken, { minLength: 1, maxLength: 5 }),
      fc.boolean(),
      _hostile,
      _hostile,
      _hostile,
      fc.array(_hostile.map((v) => v.split(".")[0].replace(/^\$/, "") || "t"), {
        minLength: 1,
        maxLength: 6,
      }),
      (tokens, tail, user, session, claim, probe) => {
        const template = [...tokens, ...(tail ? [">"] : [])].join(".");
        const ctx = { user, session, claims: { c: claim } };
        const expanded = expandPattern(template, ctx);
        const values = [user, session, claim];
        if (tokens.some((t) => t.startsWith("{"))) {
          // Any placeholder with a value that is not one token makes the pattern grant nothing.
          const used = tokens.filter((t) => t.startsWith("{")).map((t) =>
            t === "{user}" ? user : t === "{session}" ? session : claim
          );
          if (used.some((v) => encodeTemplateValue(v) === null)) {
            assert.equal(expanded, null);
            return;
          }
        }
        assert.notEqual(expanded, null);
        const out = expanded!.split(".");
        const tpl = template.split(".");
        // Same shape: one token per template token, wildcards only where the template has them.
        assert.equal(out.length, tpl.length);
        tpl.forEach((t, i) => {
          const p = parsePlaceholder(t);
          if (p === null) return assert.equal(out[i], t);
          const v = p.kind === "user" ? user : p.kind === "session" ? session : claim;
          assert.equal(out[i], encodeTemplateValue(v));
          assert.equal(decodeUserId(out[i]), v, "reversible");
          assert.ok(out[i] !== "*" && out[i] !== ">" && !out[i].startsWith("$"));
        });
        if (validateSubject(expanded!) !== null) return; // too long: grants nothing when compiled
        // A probe subject is matched only if it equals the literal expansion at every literal
        // position; in particular the raw (unencoded) values never match unless they are tokens.
        const subject = tpl.map((t, i) => t === "*" || t === ">" ? probe[i % probe.length] : out[i])
          .join(".");
        if (validateSubject(subject, { wildcards: false }) === null) {
          assert.ok(patternMatches(expanded!, subject), `${expanded} ~ ${subject}`);
        }
        // The raw (unencoded) values never match, unless each one is its own encoding.
        const raw = tpl.map((t, i) => {
          const p = parsePlaceholder(t);
          return p === null
            ? out[i]
            : p.kind === "user"
            ? user
            : p.kind === "session"
            ? session
            : claim;
        }).join(".");
        if (
          validateSubject(raw) === null &&
          (patternMatches(expanded!, raw) || isSubset(raw, expanded!))
        ) {
          tpl.forEach((t, i) => {
            if (parsePlaceholder(t)) assert.ok(values.includes(out[i]), `${raw} ~ ${expanded}`);
          });
          assert.equal(raw, expanded);
        }
      },
    ),
    { seed: SEED, numRuns: 3000 },
  );
});
