/** A session's effective capabilities (docs/protocol.md section 5): the union of the user's own
 * grants and the grants of every role the session holds, templates expanded for this session.
 * One pure function of (user document, role documents, role policy, token claims, session id),
 * remembering where every grant came from so the CLI can explain a decision.
 * @module */

import {
  type Capabilities,
  type CapabilitySet,
  compileCapabilities,
  type CompileOptions,
  type Decision,
  type GRANT_FIELDS,
} from "./capabilities.ts";
import { type HeldRole, heldRoles, type RolePolicy, type RoleVia } from "./roles.ts";
import { expandPattern, hasPlaceholder, type TemplateContext } from "./templates.ts";
import { validateKvKey, validateSubject } from "../protocol/subject.ts";

/** The pattern a template expands to when it is still a valid pattern (a long value can make it
 * too long), else null: it grants nothing and is not shown. */
function _expand(
  template: string,
  ctx: TemplateContext,
  validate: (p: string) => string | null,
): string | null {
  const p = expandPattern(template, ctx);
  return p === null || (p !== template && validate(p) !== null) ? null : p;
}

const _kvKey = (p: string) => validateKvKey(p);

/** What effective capabilities are computed from. */
export interface EffectiveInput extends TemplateContext {
  /** The user's validated document, or null when there is none (or it is malformed). */
  userDoc: Capabilities | null;
  /** Role documents by name; a role absent or null (deleted, malformed) grants nothing. */
  roles: ReadonlyMap<string, Capabilities | null>;
  /** The gateway's default role and roles claim. */
  policy?: RolePolicy;
  /** Compile options (the reserved auth bucket). */
  compile?: CompileOptions;
}

/** Where a grant came from: the user's own document, or a role (held for `via` reasons). */
export type GrantSource = { kind: "own" } | { kind: "role"; role: string; via: RoleVia[] };

/** One granted pattern, expanded, with the template it came from and its source. */
export interface Grant {
  /** The document field. */
  field: (typeof GRANT_FIELDS)[number];
  /** Bucket or stream name (buckets and streams only). */
  scope?: string;
  /** The expanded pattern. */
  pattern: string;
  /** The pattern as written (with placeholders). */
  template: string;
  /** Where it came from. */
  source: GrantSource;
}

/** A session's effective capabilities. */
export interface EffectiveCapabilities {
  /** The expanded union (no `roles` field): what `cap_update` carries. */
  capabilities: Capabilities;
  /** Its compiled form, for the checks. */
  set: CapabilitySet;
  /** Roles the session holds, with how. */
  held: HeldRole[];
  /** Names of the held roles whose documents applied (existing and valid), in order. */
  roles: string[];
  /** Every grant with its source (a pattern granted twice appears twice). */
  grants: Grant[];
}

type _Lists = Pick<Capabilities, "subjects" | "publish" | "commands">;

function _addList(
  out: Capabilities,
  grants: Grant[],
  field: keyof _Lists,
  list: readonly string[] | undefined,
  ctx: TemplateContext,
  source: GrantSource,
): void {
  if (!Array.isArray(list)) return;
  const dst = out[field] ??= [];
  for (const template of list) {
    const pattern = _expand(template, ctx, validateSubject);
    if (pattern === null) continue;
    if (!dst.includes(pattern)) dst.push(pattern);
    grants.push({ field, pattern, template, source });
  }
}

function _addScoped(
  out: Capabilities,
  grants: Grant[],
  field: "buckets" | "streams",
  map: Record<string, string[]> | undefined,
  ctx: TemplateContext,
  source: GrantSource,
): void {
  if (typeof map !== "object" || map === null) return;
  const dst = out[field] ??= {};
  for (const [scope, list] of Object.entries(map)) {
    if (!Object.hasOwn(dst, scope)) {
      // Defined, not assigned: a `__proto__` bucket name stays data.
      Object.defineProperty(dst, scope, {
        value: [],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    const pats = dst[scope];
    for (const template of Array.isArray(list) ? list : []) {
      const pattern = _expand(template, ctx, field === "buckets" ? _kvKey : validateSubject);
      if (pattern === null) continue;
      if (!pats.includes(pattern)) pats.push(pattern);
      grants.push({ field, scope, pattern, template, source });
    }
  }
}

function _add(
  out: Capabilities,
  grants: Grant[],
  doc: Capabilities,
  ctx: TemplateContext,
  source: GrantSource,
): void {
  _addList(out, grants, "subjects", doc.subjects, ctx, source);
  _addList(out, grants, "publish", doc.publish, ctx, source);
  _addList(out, grants, "commands", doc.commands, ctx, source);
  _addScoped(out, grants, "buckets", doc.buckets, ctx, source);
  _addScoped(out, grants, "streams", doc.streams, ctx, source);
}

/**
 * Computes a session's effective capabilities: the user's own grants, then each held role's
 * (user document order, then the default role, then the claim's), templates expanded for this
 * session; patterns that cannot expand grant nothing, and so do missing or malformed roles.
 *
 * @example
 * ```ts
 * const eff = effectiveCapabilities({
 *   user: "bob", session: "s1",
 *   userDoc: { roles: ["viewer"] },
 *   roles: new Map([["viewer", { subjects: ["session.{user}.{session}.state"] }]]),
 * });
 * eff.capabilities; // { subjects: ["session.bob.s1.state"] }
 * eff.roles; // ["viewer"]
 * ```
 */
export function effectiveCapabilities(input: EffectiveInput): EffectiveCapabilities {
  const ctx: TemplateContext = { user: input.user, session: input.session, claims: input.claims };
  const out: Capabilities = {};
  const grants: Grant[] = [];
  if (input.userDoc) _add(out, grants, input.userDoc, ctx, { kind: "own" });
  const held = heldRoles(input.userDoc?.roles, input.policy ?? {}, input.claims);
  const applied: string[] = [];
  for (const h of held) {
    const doc = input.roles.get(h.name);
    if (!doc) continue;
    applied.push(h.name);
    _add(out, grants, doc, ctx, { kind: "role", role: h.name, via: h.via });
  }
  return {
    capabilities: out,
    set: compileCapabilities(out, input.compile),
    held,
    roles: applied,
    grants,
  };
}

/**
 * The grants behind an allowed decision (its rule names a field, maybe a scope, and the expanded
 * pattern); empty for a denial.
 */
export function decisionGrants(eff: EffectiveCapabilities, decision: Decision): Grant[] {
  if (!decision.allowed) return [];
  const at = decision.rule.indexOf(": ");
  if (at < 0) return [];
  const head = decision.rule.slice(0, at);
  const pattern = decision.rule.slice(at + 2);
  const dot = head.indexOf(".");
  const field = dot < 0 ? head : head.slice(0, dot);
  const scope = dot < 0 ? undefined : head.slice(dot + 1);
  return eff.grants.filter((g) => g.field === field && g.scope === scope && g.pattern === pattern);
}

/** A source in words: `own grant`, `role staff (default role)`, `role ops (token claim)`. */
export function describeSource(source: GrantSource): string {
  if (source.kind === "own") return "own grant";
  const how = source.via.map((v) =>
    v === "user" ? "user document" : v === "default" ? "default role" : "token claim"
  );
  return `role ${source.role} (${how.join(", ")})`;
}

const _NO_DOC: Capabilities = Object.freeze({});

/** Whether a document holds a placeholder anywhere (so its expansion differs per session). */
function _templated(doc: Capabilities): boolean {
  const lists = [doc.subjects, doc.publish, doc.commands];
  for (const m of [doc.buckets, doc.streams]) {
    if (m && typeof m === "object") lists.push(...Object.values(m));
  }
  return lists.some((l) =>
    Array.isArray(l) && l.some((p) => typeof p === "string" && hasPlaceholder(p))
  );
}

interface _Cached {
  docs: ReadonlyArray<Capabilities | null | undefined>;
  compile: CompileOptions | undefined;
  eff: EffectiveCapabilities;
}

/**
 * Shares effective capabilities between sessions whose inputs are the same documents and hold no
 * template (then the result does not depend on the user or the session): a role edit reaching
 * thousands of sessions computes it once. Documents are compared by identity, so a store that
 * replaces a document on every change never gets a stale answer. Templated inputs are computed
 * per call.
 *
 * @example
 * ```ts
 * const cache = new EffectiveCache();
 * const roles = new Map([["viewer", { subjects: ["news.>"] }]]);
 * const a = cache.get({ user: "a", session: "1", userDoc: null, roles, policy: { defaultRole: "viewer" } });
 * const b = cache.get({ user: "b", session: "2", userDoc: null, roles, policy: { defaultRole: "viewer" } });
 * a === b; // true
 * ```
 */
export class EffectiveCache {
  #templated = new WeakMap<Capabilities, boolean>();
  #byDoc = new WeakMap<Capabilities, Map<string, _Cached>>();

  #isTemplated(doc: Capabilities | null | undefined): boolean {
    if (!doc) return false;
    let t = this.#templated.get(doc);
    if (t === undefined) this.#templated.set(doc, t = _templated(doc));
    return t;
  }

  /** {@link effectiveCapabilities} of `input`, shared when it holds no template. */
  get(input: EffectiveInput): EffectiveCapabilities {
    const held = heldRoles(input.userDoc?.roles, input.policy ?? {}, input.claims);
    const docs = held.map((h) => input.roles.get(h.name));
    if (this.#isTemplated(input.userDoc) || docs.some((d) => this.#isTemplated(d))) {
      return effectiveCapabilities(input);
    }
    const owner = input.userDoc ?? _NO_DOC;
    const key = held.map((h) => `${h.name}:${h.via.join("+")}`).join(",");
    let byKey = this.#byDoc.get(owner);
    if (!byKey) this.#byDoc.set(owner, byKey = new Map());
    const hit = byKey.get(key);
    if (
      hit && hit.compile === input.compile && hit.docs.length === docs.length &&
      hit.docs.every((d, i) => d === docs[i])
    ) return hit.eff;
    const eff = effectiveCapabilities(input);
    byKey.set(key, { docs, compile: input.compile, eff });
    return eff;
  }
}
