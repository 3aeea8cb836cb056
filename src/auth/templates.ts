/** Capability templates (docs/protocol.md section 5): `{user}`, `{session}` and `{claim:NAME}`
 * in patterns, each a whole token expanding to exactly one literal token, encoded the way user
 * ids are encoded for keys. Anything that cannot expand that way makes its pattern grant nothing.
 * @module */

import { encodeUserId, validateUserId } from "./user_key.ts";

/** What a template expands with: the session's identity and its token's claims. */
export interface TemplateContext {
  /** The user id (`sub`). */
  user: string;
  /** This session's id. */
  session: string;
  /** The token's claims (`{claim:NAME}` reads string claims only). */
  claims?: Readonly<Record<string, unknown>>;
}

/** A whole-token placeholder. */
export type Placeholder =
  | { kind: "user" }
  | { kind: "session" }
  | { kind: "claim"; name: string };

/** A placeholder anywhere in a text (whole token or not). */
const _ANY = /\{(?:user|session|claim:[^{}]*)\}/;
/** Claim names: letters, digits and `_ : / # @ + ~ -` (so `https://x/org` works, spaces do not). */
const _CLAIM = /^\{claim:([A-Za-z0-9_:/#@+~-]+)\}$/;

/** The placeholder a whole token is, or null when it is none. */
export function parsePlaceholder(token: string): Placeholder | null {
  if (token === "{user}") return { kind: "user" };
  if (token === "{session}") return { kind: "session" };
  const m = _CLAIM.exec(token);
  return m ? { kind: "claim", name: m[1] } : null;
}

/** True when `pattern` contains a placeholder anywhere (so it needs expanding before use). */
export function hasPlaceholder(pattern: string): boolean {
  return typeof pattern === "string" && pattern.includes("{") && _ANY.test(pattern);
}

/**
 * Why `pattern`'s placeholders can never expand, or null when they can: a placeholder inside a
 * token (`a{user}b`) or an empty claim name. Such a pattern grants nothing; the CLI refuses it.
 *
 * @example
 * ```ts
 * templateError("session.{user}.{session}.state"); // null
 * templateError("chat.a{user}b"); // "placeholder must be a whole token: a{user}b"
 * ```
 */
export function templateError(pattern: string): string | null {
  if (!hasPlaceholder(pattern)) return null;
  for (const t of pattern.split(".")) {
    if (parsePlaceholder(t) !== null) continue;
    if (_ANY.test(t)) return `placeholder must be a whole token: ${t}`;
  }
  return null;
}

/**
 * `pattern` with every whole-token placeholder replaced by a stand-in literal token (`x`), so the
 * ordinary subject or key validation can check the rest of its shape.
 */
export function templateStandIn(pattern: string): string {
  if (!hasPlaceholder(pattern)) return pattern;
  return pattern.split(".").map((t) => parsePlaceholder(t) === null ? t : "x").join(".");
}

/**
 * The single literal token a value expands to: the value encoded as user ids are for keys
 * (`bob.x` → `bob=2Ex`), or null when it cannot be one (not a string, empty, ill-formed Unicode,
 * too long once encoded).
 *
 * @example
 * ```ts
 * encodeTemplateValue("bob.x"); // "bob=2Ex"
 * encodeTemplateValue(">"); // "=3E"
 * encodeTemplateValue(""); // null
 * ```
 */
export function encodeTemplateValue(value: unknown): string | null {
  if (typeof value !== "string" || validateUserId(value) !== null) return null;
  return encodeUserId(value);
}

function _value(p: Placeholder, ctx: TemplateContext): unknown {
  switch (p.kind) {
    case "user":
      return ctx.user;
    case "session":
      return ctx.session;
    case "claim":
      return ctx.claims && Object.hasOwn(ctx.claims, p.name) ? ctx.claims[p.name] : undefined;
  }
}

/**
 * Expands `pattern`'s placeholders; null when the pattern must grant nothing (a placeholder inside
 * a token, a missing or non-string claim, a value that cannot be one token). Patterns without
 * placeholders come back unchanged.
 *
 * @example
 * ```ts
 * const ctx = { user: "a.b", session: "s1", claims: { org: "acme" } };
 * expandPattern("session.{user}.{session}.state", ctx); // "session.a=2Eb.s1.state"
 * expandPattern("org.{claim:org}.>", ctx); // "org.acme.>"
 * expandPattern("org.{claim:team}.>", ctx); // null
 * ```
 */
export function expandPattern(pattern: string, ctx: TemplateContext): string | null {
  if (!hasPlaceholder(pattern)) return pattern;
  const out: string[] = [];
  for (const t of pattern.split(".")) {
    const p = parsePlaceholder(t);
    if (p === null) {
      if (_ANY.test(t)) return null; // a placeholder inside a token
      out.push(t);
      continue;
    }
    const v = encodeTemplateValue(_value(p, ctx));
    if (v === null) return null;
    out.push(v);
  }
  return out.join(".");
}
