/** NATS subject, pattern and name rules: validation, matching and the true subset check.
 * Pure functions over token arrays; the `$` rule keeps leading wildcards off system subjects.
 * @module */

const _MAX_SUBJECT_BYTES = 256;
const _MAX_NAME_BYTES = 255;
const _encoder = new TextEncoder();
// Whitespace or control characters anywhere (Unicode-aware, conservative).
const _BAD_CHARS =
  // deno-lint-ignore no-control-regex
  /[\s\u0000-\u001f\u007f-\u009f\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f\u3000\ufeff]/u;
const _BUCKET = /^[A-Za-z0-9_-]+$/;
const _KV_TOKEN = /^[-/_=A-Za-z0-9]+$/;
const _TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function _bytes(s: string): number {
  // Fast path: ASCII-only strings are one byte per character.
  // deno-lint-ignore no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s.length : _encoder.encode(s).length;
}

/**
 * Validates a subject or subscription pattern. Returns null when valid, else a short reason.
 * `*` and `>` count only as whole tokens and a token containing them is rejected (conservative);
 * `>` must be last; with `wildcards: false` neither is allowed.
 */
export function validateSubject(subject: string, opts?: { wildcards?: boolean }): string | null {
  if (typeof subject !== "string" || subject.length === 0) return "empty subject";
  if (_bytes(subject) > _MAX_SUBJECT_BYTES) return `longer than ${_MAX_SUBJECT_BYTES} bytes`;
  if (_BAD_CHARS.test(subject)) return "contains whitespace or control characters";
  const wildcards = opts?.wildcards ?? true;
  const tokens = subject.split(".");
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.length === 0) return "empty token";
    if (t === "*" || t === ">") {
      if (!wildcards) return "wildcards not allowed";
      if (t === ">" && i !== tokens.length - 1) return "'>' must be the last token";
      continue;
    }
    if (t.includes("*") || t.includes(">")) return "'*' and '>' must be whole tokens";
  }
  return null;
}

/** True when the subject has no `*` or `>` token. */
export function isLiteralSubject(subject: string): boolean {
  for (const t of subject.split(".")) if (t === "*" || t === ">") return false;
  return true;
}

/** Validates a queue group name: one token, no wildcards. */
export function validateQueueName(q: string): string | null {
  if (typeof q !== "string" || q.length === 0) return "empty queue name";
  if (_bytes(q) > _MAX_SUBJECT_BYTES) return `longer than ${_MAX_SUBJECT_BYTES} bytes`;
  if (_BAD_CHARS.test(q)) return "contains whitespace or control characters";
  if (q.includes(".")) return "must be a single token";
  if (q.includes("*") || q.includes(">")) return "wildcards not allowed";
  return null;
}

/** Validates a KV bucket name: `[A-Za-z0-9_-]+`. */
export function validateBucketName(b: string): string | null {
  if (typeof b !== "string" || b.length === 0) return "empty bucket name";
  if (b.length > _MAX_NAME_BYTES) return `longer than ${_MAX_NAME_BYTES} bytes`;
  if (!_BUCKET.test(b)) return "bucket names use only A-Z a-z 0-9 _ -";
  return null;
}

/** Validates a JetStream stream name: no `. * > / \`, whitespace or control characters. */
export function validateStreamName(s: string): string | null {
  if (typeof s !== "string" || s.length === 0) return "empty stream name";
  if (_bytes(s) > _MAX_NAME_BYTES) return `longer than ${_MAX_NAME_BYTES} bytes`;
  if (_BAD_CHARS.test(s)) return "contains whitespace or control characters";
  if (/[.*>/\\]/.test(s)) return "stream names must not contain . * > / \\";
  return null;
}

/** Validates a KV key, or with `wildcards` (default true) a key pattern. */
export function validateKvKey(key: string, opts?: { wildcards?: boolean }): string | null {
  if (typeof key !== "string" || key.length === 0) return "empty key";
  if (_bytes(key) > _MAX_SUBJECT_BYTES) return `longer than ${_MAX_SUBJECT_BYTES} bytes`;
  const wildcards = opts?.wildcards ?? true;
  const tokens = key.split(".");
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.length === 0) return "empty token";
    if (t === "*" || t === ">") {
      if (!wildcards) return "wildcards not allowed";
      if (t === ">" && i !== tokens.length - 1) return "'>' must be the last token";
      continue;
    }
    if (!_KV_TOKEN.test(t)) return "keys use only A-Z a-z 0-9 - / _ = and dots";
  }
  return null;
}

/** Validates a header name (an RFC 7230 token of 1..256 characters). */
export function validateHeaderName(name: string): string | null {
  if (typeof name !== "string" || name.length === 0) return "empty header name";
  if (name.length > 256) return "header name longer than 256 characters";
  if (!_TCHAR.test(name)) return "header names are RFC 7230 tokens";
  return null;
}

/** Validates a header value: no CR, LF, NUL or other control characters except tab. */
export function validateHeaderValue(v: string): string | null {
  if (typeof v !== "string") return "header values are strings";
  if (_bytes(v) > 4096) return "header value longer than 4096 bytes";
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(v)) {
    return "header values must not contain control characters";
  }
  return null;
}

/** Splits a pattern or subject into tokens. */
export function tokenizePattern(pattern: string): readonly string[] {
  return pattern.split(".");
}

function _wild(t: string): boolean {
  return t === "*" || t === ">";
}

/**
 * True when the literal `subject` tokens are matched by `pattern` tokens (NATS semantics), with
 * the `$` rule: a pattern whose first token is a wildcard never matches a `$…` first token.
 */
export function matchTokens(pattern: readonly string[], subject: readonly string[]): boolean {
  if (pattern.length === 0 || subject.length === 0) return false;
  if (_wild(pattern[0]) && subject[0].startsWith("$")) return false;
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === ">") return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== "*" && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

/**
 * True subset check: every concrete subject `requested` (which may hold wildcards) can match is
 * matched by `granted`. `foo.>` is not a subset of `foo.*`, `*.x` is not a subset of `a.*`.
 */
export function subsetTokens(requested: readonly string[], granted: readonly string[]): boolean {
  if (requested.length === 0 || granted.length === 0) return false;
  // $ rule: a granted leading wildcard never covers a literal `$…` first token.
  if (_wild(granted[0]) && !_wild(requested[0]) && requested[0].startsWith("$")) return false;
  for (let i = 0; i < granted.length; i++) {
    const g = granted[i];
    if (i >= requested.length) return false;
    const r = requested[i];
    if (g === ">") return true;
    if (r === ">") return false;
    if (g === "*") continue;
    if (r === "*" || r !== g) return false;
  }
  return requested.length === granted.length;
}

/** String form of {@link matchTokens}. */
export function patternMatches(pattern: string, subject: string): boolean {
  return matchTokens(tokenizePattern(pattern), tokenizePattern(subject));
}

/** String form of {@link subsetTokens}. */
export function isSubset(requested: string, granted: string): boolean {
  return subsetTokens(tokenizePattern(requested), tokenizePattern(granted));
}

/**
 * Delivery-time `$` filter: false when the subscription pattern starts with a wildcard and the
 * message subject starts with `$` (such messages must not reach the subscriber).
 */
export function deliverableTo(patternTokens: readonly string[], subject: string): boolean {
  return !(patternTokens.length > 0 && _wild(patternTokens[0]) && subject.charCodeAt(0) === 36);
}
