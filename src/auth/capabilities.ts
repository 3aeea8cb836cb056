/** The capability document (docs/protocol.md section 5): strict parsing, compilation and checks.
 * Every check answers with the rule that decided, so the CLI can explain the gateway's verdicts.
 * @module */

import {
  isLiteralSubject,
  matchTokens,
  subsetTokens,
  tokenizePattern,
  validateBucketName,
  validateKvKey,
  validateStreamName,
  validateSubject,
} from "../protocol/subject.ts";
import type { Capabilities as WireCapabilities } from "../protocol/types.ts";
import { hasPlaceholder, templateError, templateStandIn } from "./templates.ts";
import { validateRoleName } from "./roles.ts";

/**
 * A user's capabilities as stored in KV (every field optional): the wire shape of
 * docs/protocol.md section 5 (`src/protocol/types.ts`, shared with the SDK) plus `roles`.
 */
export interface Capabilities extends WireCapabilities {
  /** Roles whose grants the user holds too (user documents only; see roles.ts). */
  roles?: string[];
}

/** Options of {@link parseCapabilities}. */
export interface ParseOptions {
  /** `role`: a role document, which may not list `roles` itself. Default `user`. */
  kind?: "user" | "role";
  /**
   * Also refuse patterns whose placeholders can never expand (`a{user}b`): the CLI's check before
   * a write. The gateway parses without it, so such a pattern grants nothing and the rest applies.
   */
  strictTemplates?: boolean;
}

/** Capabilities compiled for fast checks (opaque: build it with {@link compileCapabilities}). */
export interface CapabilitySet {
  /** Subscribe patterns. */
  readonly subjects: ReadonlyArray<CompiledPattern>;
  /** Publish patterns. */
  readonly publish: ReadonlyArray<CompiledPattern>;
  /** Command patterns. */
  readonly commands: ReadonlyArray<CompiledPattern>;
  /** Bucket grants. */
  readonly buckets: ReadonlyArray<CompiledScope>;
  /** Stream grants. */
  readonly streams: ReadonlyArray<CompiledScope>;
  /** Buckets only a literal grant reaches (`*`/`>` bucket grants skip them): the auth bucket. */
  readonly reservedBuckets: ReadonlySet<string>;
  /** Streams only a literal grant reaches: the reserved buckets' streams (`KV_<bucket>`). */
  readonly reservedStreams: ReadonlySet<string>;
}

/** Options of {@link compileCapabilities}. */
export interface CompileOptions {
  /**
   * Buckets that wildcard bucket grants never cover (and whose `KV_<bucket>` streams wildcard
   * stream grants never cover): the gateway passes its auth bucket, so a grant of every bucket
   * does not hand out every user's capabilities. A literal grant still reaches them.
   */
  reservedBuckets?: readonly string[];
}

/** A pattern with its tokens, split once at compile time. */
export interface CompiledPattern {
  /** The pattern text. */
  readonly text: string;
  /** Its tokens. */
  readonly tokens: readonly string[];
}

/** A bucket or stream pattern with its key or filter patterns. */
export interface CompiledScope {
  /** `*`, `>` or a name. */
  readonly name: string;
  /** True when `name` is `*` or `>` (matches any name not starting with `$`). */
  readonly any: boolean;
  /** Key or filter patterns. */
  readonly patterns: ReadonlyArray<CompiledPattern>;
}

/** A check's verdict, with the granting rule or the reason for denial. */
export type Decision = { allowed: true; rule: string } | { allowed: false; reason: string };

/** Capabilities that grant nothing. */
export const EMPTY_CAPABILITIES: CapabilitySet = Object.freeze({
  subjects: Object.freeze([]),
  publish: Object.freeze([]),
  commands: Object.freeze([]),
  buckets: Object.freeze([]),
  streams: Object.freeze([]),
  reservedBuckets: new Set<string>(),
  reservedStreams: new Set<string>(),
});

/** The result of {@link parseCapabilities}: the validated document, or every error found. */
export type CapabilitiesParseResult =
  | { ok: true; value: Capabilities }
  | { ok: false; errors: string[] };

const _FIELDS = new Set(["subjects", "publish", "commands", "buckets", "streams"]);
/** The grant fields, in document order (everything but `roles`). */
export const GRANT_FIELDS = ["subjects", "publish", "commands", "buckets", "streams"] as const;
const _PLAIN_KEY = /^[A-Za-z0-9_$*>-]+$/;

function _isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** `a.b` for plain keys, `a["x y"]` otherwise, so odd names cannot garble an error line. */
function _path(base: string, key: string): string {
  const k = _PLAIN_KEY.test(key) ? key : JSON.stringify(key);
  if (base === "") return k;
  return _PLAIN_KEY.test(key) ? `${base}.${key}` : `${base}[${k}]`;
}

function _patterns(
  v: unknown,
  path: string,
  validate: (p: string) => string | null,
  errors: string[],
): string[] | undefined {
  if (!Array.isArray(v)) {
    errors.push(`${path}: must be an array of strings`);
    return undefined;
  }
  const out: string[] = [];
  // An index loop, not forEach: holes in a sparse array must be errors, not skipped.
  for (let i = 0; i < v.length; i++) {
    const p: unknown = v[i];
    if (typeof p !== "string") {
      errors.push(`${path}[${i}]: must be a string`);
      continue;
    }
    const err = validate(p);
    if (err !== null) errors.push(`${path}[${i}]: ${err}`);
    else out.push(p);
  }
  return out;
}

function _scoped(
  v: unknown,
  path: string,
  validateName: (n: string) => string | null,
  validatePattern: (p: string) => string | null,
  errors: string[],
): Record<string, string[]> | undefined {
  if (!_isPlainObject(v)) {
    errors.push(`${path}: must be an object of name → array of patterns`);
    return undefined;
  }
  // Entries collected first, then defined as own data properties: a `__proto__` key stays data.
  const out: Record<string, string[]> = {};
  for (const [name, pats] of Object.entries(v)) {
    const at = _path(path, name);
    const nameErr = name === "*" || name === ">" ? null : validateName(name);
    if (nameErr !== null) {
      errors.push(`${at}: ${nameErr}`);
      continue;
    }
    const list = _patterns(pats, at, validatePattern, errors);
    if (list) {
      Object.defineProperty(out, name, {
        value: list,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return out;
}

const _subject = (p: string) => validateSubject(p);
const _kvKey = (p: string) => validateKvKey(p);
/** Validation of a stored pattern: placeholders stand in for one literal token. */
const _templated = (validate: (p: string) => string | null, strict: boolean) => (p: string) =>
  (strict ? templateError(p) : null) ?? validate(templateStandIn(p));

/**
 * Validates a decoded document strictly: it must be a plain object; unknown fields, wrong types
 * and invalid patterns are errors naming the field path (e.g. `buckets.todos[1]: empty token`).
 * `{}` is valid and grants nothing.
 */
export function parseCapabilities(
  input: unknown,
  opts: ParseOptions = {},
): CapabilitiesParseResult {
  if (!_isPlainObject(input)) return { ok: false, errors: ["capabilities must be a JSON object"] };
  const errors: string[] = [];
  const value: Capabilities = {};
  const isRole = opts.kind === "role";
  for (const key of Object.keys(input)) {
    if (key === "roles" && isRole) errors.push("roles: a role cannot list roles");
    else if (!_FIELDS.has(key) && key !== "roles") errors.push(`${_path("", key)}: unknown field`);
  }
  const strict = opts.strictTemplates ?? false;
  const subject = _templated(_subject, strict);
  const kvKey = _templated(_kvKey, strict);
  if (Object.hasOwn(input, "subjects")) {
    value.subjects = _patterns(input.subjects, "subjects", subject, errors);
  }
  if (Object.hasOwn(input, "publish")) {
    value.publish = _patterns(input.publish, "publish", subject, errors);
  }
  if (Object.hasOwn(input, "commands")) {
    value.commands = _patterns(input.commands, "commands", subject, errors);
  }
  if (Object.hasOwn(input, "buckets")) {
    value.buckets = _scoped(input.buckets, "buckets", validateBucketName, kvKey, errors);
  }
  if (Object.hasOwn(input, "streams")) {
    value.streams = _scoped(input.streams, "streams", validateStreamName, subject, errors);
  }
  if (Object.hasOwn(input, "roles") && !isRole) {
    value.roles = _patterns(input.roles, "roles", validateRoleName, errors);
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value };
}

/** Parses JSON text, then {@link parseCapabilities}; invalid JSON is an error too. */
export function parseCapabilitiesJson(
  text: string,
  opts: ParseOptions = {},
): CapabilitiesParseResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, errors: [`invalid JSON: ${(err as Error).message}`] };
  }
  return parseCapabilities(doc, opts);
}

function _compile(
  list: readonly string[] | undefined,
  validate: (p: string) => string | null,
): ReadonlyArray<CompiledPattern> {
  const out: CompiledPattern[] = [];
  for (const text of Array.isArray(list) ? list : []) {
    // Fail closed: an invalid pattern grants nothing, nor does an unexpanded template.
    if (validate(text) !== null || hasPlaceholder(text)) continue;
    out.push(Object.freeze({ text, tokens: Object.freeze(tokenizePattern(text)) }));
  }
  return Object.freeze(out);
}

function _compileScoped(
  m: Record<string, string[]> | undefined,
  validateName: (n: string) => string | null,
  validatePattern: (p: string) => string | null,
): ReadonlyArray<CompiledScope> {
  const out: CompiledScope[] = [];
  if (_isPlainObject(m)) {
    for (const [name, pats] of Object.entries(m)) {
      const any = name === "*" || name === ">";
      if (!any && validateName(name) !== null) continue;
      out.push(Object.freeze({ name, any, patterns: _compile(pats, validatePattern) }));
    }
  }
  return Object.freeze(out);
}

/**
 * Compiles a document into token arrays, once, for the per-operation checks. Meant for documents
 * {@link parseCapabilities} accepted; anything invalid in an unchecked one is dropped (fail closed).
 */
export function compileCapabilities(
  caps: Capabilities,
  opts: CompileOptions = {},
): CapabilitySet {
  const reserved = opts.reservedBuckets ?? [];
  return Object.freeze({
    subjects: _compile(caps.subjects, _subject),
    publish: _compile(caps.publish, _subject),
    commands: _compile(caps.commands, _subject),
    buckets: _compileScoped(caps.buckets, validateBucketName, _kvKey),
    streams: _compileScoped(caps.streams, validateStreamName, _subject),
    reservedBuckets: new Set(reserved),
    reservedStreams: new Set(reserved.map((b) => `KV_${b}`)),
  });
}

function _show(s: unknown): string {
  return JSON.stringify(String(s));
}

/** `sub` target: allowed iff it is a subset of some `subjects` pattern. */
export function checkSubscribe(set: CapabilitySet, subject: string): Decision {
  const err = validateSubject(subject);
  if (err !== null) return { allowed: false, reason: `invalid subject ${_show(subject)}: ${err}` };
  const tokens = tokenizePattern(subject);
  for (const p of set.subjects) {
    if (subsetTokens(tokens, p.tokens)) return { allowed: true, rule: `subjects: ${p.text}` };
  }
  return { allowed: false, reason: `no pattern in subjects covers ${subject}` };
}

function _literal(
  field: string,
  list: ReadonlyArray<CompiledPattern>,
  subject: string,
  op: string,
): Decision {
  const err = validateSubject(subject);
  if (err !== null) return { allowed: false, reason: `invalid subject ${_show(subject)}: ${err}` };
  if (!isLiteralSubject(subject)) {
    return { allowed: false, reason: `${op} target must be a literal subject` };
  }
  const tokens = tokenizePattern(subject);
  for (const p of list) {
    if (matchTokens(p.tokens, tokens)) return { allowed: true, rule: `${field}: ${p.text}` };
  }
  return { allowed: false, reason: `no pattern in ${field} matches ${subject}` };
}

/** `pub` target: literal, matched by some `publish` pattern. */
export function checkPublish(set: CapabilitySet, subject: string): Decision {
  return _literal("publish", set.publish, subject, "pub");
}

/** `cmd` target: literal, matched by some `commands` pattern. */
export function checkCommand(set: CapabilitySet, subject: string): Decision {
  return _literal("commands", set.commands, subject, "cmd");
}

function _scopedCheck(
  field: "buckets" | "streams",
  scopes: ReadonlyArray<CompiledScope>,
  reserved: ReadonlySet<string>,
  name: string,
  pattern: string,
  validateName: (n: string) => string | null,
  validatePattern: (p: string) => string | null,
): Decision {
  const kind = field === "buckets" ? "bucket" : "stream";
  const nameErr = validateName(name);
  if (nameErr !== null) {
    return { allowed: false, reason: `invalid ${kind} name ${_show(name)}: ${nameErr}` };
  }
  const patErr = validatePattern(pattern);
  if (patErr !== null) {
    return { allowed: false, reason: `invalid pattern ${_show(pattern)}: ${patErr}` };
  }
  const tokens = tokenizePattern(pattern);
  // The `$` rule applies to names too: `*`/`>` never grant a `$…` stream; nor a reserved name.
  const literalOnly = name.charCodeAt(0) === 36 || reserved.has(name);
  let matchedScope = false;
  for (const s of scopes) {
    if (s.any ? literalOnly : s.name !== name) continue;
    matchedScope = true;
    for (const p of s.patterns) {
      if (subsetTokens(tokens, p.tokens)) {
        return { allowed: true, rule: `${field}.${s.name}: ${p.text}` };
      }
    }
  }
  return {
    allowed: false,
    reason: matchedScope
      ? `no pattern under ${field} for ${name} covers ${pattern}`
      : reserved.has(name)
      ? `${kind} ${name} holds capabilities: only a literal grant of it reaches it`
      : `no ${kind} pattern matches ${name}`,
  };
}

/** `kv_sub`: some bucket pattern matches `bucket` and `keyPattern` ⊆ one of ITS key patterns. */
export function checkKv(set: CapabilitySet, bucket: string, keyPattern = ">"): Decision {
  return _scopedCheck(
    "buckets",
    set.buckets,
    set.reservedBuckets,
    bucket,
    keyPattern,
    validateBucketName,
    _kvKey,
  );
}

/** `js_sub`: some stream pattern matches `stream` and `filter` ⊆ one of ITS filter patterns. */
export function checkStream(set: CapabilitySet, stream: string, filter = ">"): Decision {
  return _scopedCheck(
    "streams",
    set.streams,
    set.reservedStreams,
    stream,
    filter,
    validateStreamName,
    _subject,
  );
}

/** A one-line summary, e.g. `subjects 2, publish 1, commands 0, buckets 1, streams 0`. */
export function summarizeCapabilities(caps: Capabilities): string {
  return [
    `subjects ${caps.subjects?.length ?? 0}`,
    `publish ${caps.publish?.length ?? 0}`,
    `commands ${caps.commands?.length ?? 0}`,
    `buckets ${Object.keys(caps.buckets ?? {}).length}`,
    `streams ${Object.keys(caps.streams ?? {}).length}`,
    ...(caps.roles?.length ? [`roles ${caps.roles.join(" ")}`] : []),
  ].join(", ");
}
