/** The capability document (PROTOCOL.md section 5): strict parsing, compilation and checks.
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
} from "./subject.ts";

/** A user's capabilities as stored in KV (every field optional). */
export interface Capabilities {
  /** Subject patterns the user may subscribe to (or narrower). */
  subjects?: string[];
  /** Subject patterns the user may publish to. */
  publish?: string[];
  /** Subject patterns the user may send commands (requests) to. */
  commands?: string[];
  /** Bucket pattern → key patterns the user may watch. */
  buckets?: Record<string, string[]>;
  /** Stream pattern → filter patterns the user may read. */
  streams?: Record<string, string[]>;
}

/** Capabilities compiled for fast checks. */
export interface CapabilitySet {
  /** Subscribe patterns. */
  readonly subjects: ReadonlyArray<_Compiled>;
  /** Publish patterns. */
  readonly publish: ReadonlyArray<_Compiled>;
  /** Command patterns. */
  readonly commands: ReadonlyArray<_Compiled>;
  /** Bucket grants. */
  readonly buckets: ReadonlyArray<_Scoped>;
  /** Stream grants. */
  readonly streams: ReadonlyArray<_Scoped>;
}

/** A pattern with its tokens. */
export interface _Compiled {
  /** The pattern text. */
  readonly text: string;
  /** Its tokens. */
  readonly tokens: readonly string[];
}

/** A bucket or stream pattern with its key or filter patterns. */
export interface _Scoped {
  /** `*`, `>` or a name. */
  readonly name: string;
  /** Key or filter patterns. */
  readonly patterns: ReadonlyArray<_Compiled>;
}

/** A check's verdict, with the granting rule or the reason for denial. */
export type Decision = { allowed: true; rule: string } | { allowed: false; reason: string };

/** Capabilities that grant nothing. */
export const EMPTY_CAPABILITIES: CapabilitySet = Object.freeze({
  subjects: [],
  publish: [],
  commands: [],
  buckets: [],
  streams: [],
});

const _FIELDS = new Set(["subjects", "publish", "commands", "buckets", "streams"]);

function _isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
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
  v.forEach((p, i) => {
    if (typeof p !== "string") {
      errors.push(`${path}[${i}]: must be a string`);
      return;
    }
    const err = validate(p);
    if (err) errors.push(`${path}[${i}]: ${err}`);
    else out.push(p);
  });
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
  const out: Record<string, string[]> = Object.create(null);
  for (const [name, pats] of Object.entries(v)) {
    const nameErr = name === "*" || name === ">" ? null : validateName(name);
    if (nameErr) {
      errors.push(`${path}.${name}: ${nameErr}`);
      continue;
    }
    const list = _patterns(pats, `${path}.${name}`, validatePattern, errors);
    if (list) out[name] = list;
  }
  return out;
}

/** Validates a decoded document strictly: unknown fields, wrong types and bad patterns are errors. */
export function parseCapabilities(
  input: unknown,
): { ok: true; value: Capabilities } | { ok: false; errors: string[] } {
  if (!_isPlainObject(input)) return { ok: false, errors: ["capabilities must be a JSON object"] };
  const errors: string[] = [];
  const value: Capabilities = {};
  for (const key of Object.keys(input)) {
    if (!_FIELDS.has(key)) errors.push(`${key}: unknown field`);
  }
  const subj = (p: string) => validateSubject(p);
  if (Object.hasOwn(input, "subjects")) {
    value.subjects = _patterns(input.subjects, "subjects", subj, errors);
  }
  if (Object.hasOwn(input, "publish")) {
    value.publish = _patterns(input.publish, "publish", subj, errors);
  }
  if (Object.hasOwn(input, "commands")) {
    value.commands = _patterns(input.commands, "commands", subj, errors);
  }
  if (Object.hasOwn(input, "buckets")) {
    value.buckets = _scoped(
      input.buckets,
      "buckets",
      validateBucketName,
      (p) => validateKvKey(p),
      errors,
    );
  }
  if (Object.hasOwn(input, "streams")) {
    value.streams = _scoped(input.streams, "streams", validateStreamName, subj, errors);
  }
  if (errors.length > 0) return { ok: false, errors };
  // Plain-object copies so the result serialises normally.
  if (value.buckets) value.buckets = { ...value.buckets };
  if (value.streams) value.streams = { ...value.streams };
  return { ok: true, value };
}

/** Parses JSON text, then {@link parseCapabilities}. */
export function parseCapabilitiesJson(
  text: string,
): { ok: true; value: Capabilities } | { ok: false; errors: string[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, errors: [`invalid JSON: ${(err as Error).message}`] };
  }
  return parseCapabilities(doc);
}

function _compile(list: string[] | undefined): _Compiled[] {
  return (list ?? []).map((text) => ({ text, tokens: tokenizePattern(text) }));
}

function _compileScoped(m: Record<string, string[]> | undefined): _Scoped[] {
  if (!m) return [];
  return Object.entries(m).map(([name, pats]) => ({ name, patterns: _compile(pats) }));
}

/** Compiles a validated document. */
export function compileCapabilities(caps: Capabilities): CapabilitySet {
  return Object.freeze({
    subjects: _compile(caps.subjects),
    publish: _compile(caps.publish),
    commands: _compile(caps.commands),
    buckets: _compileScoped(caps.buckets),
    streams: _compileScoped(caps.streams),
  });
}

function _subsetOf(
  field: string,
  list: ReadonlyArray<_Compiled>,
  target: string,
): Decision {
  const tokens = tokenizePattern(target);
  for (const p of list) {
    if (subsetTokens(tokens, p.tokens)) return { allowed: true, rule: `${field}: ${p.text}` };
  }
  return { allowed: false, reason: `no pattern in ${field} covers ${target}` };
}

/** `sub` target: allowed iff it is a subset of some `subjects` pattern. */
export function checkSubscribe(set: CapabilitySet, subject: string): Decision {
  if (validateSubject(subject) !== null) return { allowed: false, reason: "invalid subject" };
  return _subsetOf("subjects", set.subjects, subject);
}

function _literal(
  field: string,
  list: ReadonlyArray<_Compiled>,
  subject: string,
  op: string,
): Decision {
  if (validateSubject(subject) !== null) return { allowed: false, reason: "invalid subject" };
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
  field: string,
  scopes: ReadonlyArray<_Scoped>,
  name: string,
  pattern: string,
  validateName: (n: string) => string | null,
  validatePattern: (p: string) => string | null,
): Decision {
  if (validateName(name) !== null) return { allowed: false, reason: `invalid name ${name}` };
  if (validatePattern(pattern) !== null) {
    return { allowed: false, reason: `invalid pattern ${pattern}` };
  }
  const nameTokens = [name];
  const tokens = tokenizePattern(pattern);
  let matchedScope = false;
  for (const s of scopes) {
    if (!matchTokens([s.name], nameTokens)) continue;
    matchedScope = true;
    for (const p of s.patterns) {
      if (subsetTokens(tokens, p.tokens)) {
        return { allowed: true, rule: `${field}.${s.name}: ${p.text}` };
      }
    }
  }
  const kind = field === "buckets" ? "bucket" : "stream";
  return {
    allowed: false,
    reason: matchedScope
      ? `no pattern under ${field} for ${name} covers ${pattern}`
      : `no ${kind} pattern matches ${name}`,
  };
}

/** `kv_sub`: a bucket pattern matches `bucket` and `keyPattern` ⊆ one of its key patterns. */
export function checkKv(set: CapabilitySet, bucket: string, keyPattern = ">"): Decision {
  return _scopedCheck(
    "buckets",
    set.buckets,
    bucket,
    keyPattern,
    validateBucketName,
    (p) => validateKvKey(p),
  );
}

/** `js_sub`: a stream pattern matches `stream` and `filter` ⊆ one of its filter patterns. */
export function checkStream(set: CapabilitySet, stream: string, filter = ">"): Decision {
  return _scopedCheck(
    "streams",
    set.streams,
    stream,
    filter,
    validateStreamName,
    (p) => validateSubject(p),
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
  ].join(", ");
}
