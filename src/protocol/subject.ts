/** NATS subject, pattern and name rules: validation, matching and the true subset check.
 * Pure functions over token arrays; the `$` rule keeps leading wildcards off system subjects.
 * @module */

const _MAX_SUBJECT_BYTES = 256;
const _MAX_NAME_BYTES = 255;
// A bucket is stored in the stream `KV_<bucket>`, and stream names are at most 255 bytes.
const _MAX_BUCKET_BYTES = _MAX_NAME_BYTES - "KV_".length;
// Whitespace, control and invisible format characters anywhere (Unicode-aware, conservative):
// C0, DEL, C1 (incl. U+0085), NBSP, U+1680, U+180E, U+2000-U+200F, U+2028-U+202F, U+205F-U+206F,
// U+3000, U+FEFF and anything else `\s` knows.
const _BAD_CHARS =
  // deno-lint-ignore no-control-regex
  /[\s\u0000-\u001f\u007f-\u009f\u00a0\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]/;
// deno-lint-ignore no-control-regex
const _HEADER_BAD = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/;
const _BUCKET = /^[A-Za-z0-9_-]+$/;
const _KV_TOKEN = /^[-/_=A-Za-z0-9]+$/;
const _TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const _STREAM_BAD = /[.*>/\\]/;
const _ILL_FORMED = "not well-formed Unicode (lone surrogate)";

/**
 * UTF-8 length of `s` in one pass without allocating, or -1 when `s` holds a lone surrogate
 * (which would silently become U+FFFD on the wire, so the checked and the sent text would differ).
 */
function _utf8Len(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return -1;
      n += 4;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return -1;
    else n += 3;
  }
  return n;
}

/** Common checks of subjects and names: non-empty, byte limit, well-formed, no bad characters. */
function _basic(s: string, what: string, max: number): string | null {
  if (typeof s !== "string") return `${what} must be a string`;
  if (s.length === 0) return `empty ${what}`;
  const len = _utf8Len(s);
  if (len < 0) return _ILL_FORMED;
  if (len > max) return `longer than ${max} bytes`;
  if (_BAD_CHARS.test(s)) return "contains whitespace or control characters";
  return null;
}

/**
 * Validates a subject or subscription pattern. Returns null when valid, else a short reason.
 * `*` and `>` count only as whole tokens and a token containing them is rejected (conservative);
 * `>` must be last; with `wildcards: false` neither is allowed.
 */
export function validateSubject(subject: string, opts?: { wildcards?: boolean }): string | null {
  const basic = _basic(subject, "subject", _MAX_SUBJECT_BYTES);
  if (basic !== null) return basic;
  const wildcards = opts?.wildcards ?? true;
  const tokens = subject.split(".");
  const last = tokens.length - 1;
  for (let i = 0; i <= last; i++) {
    const t = tokens[i];
    if (t.length === 0) return "empty token";
    if (t === "*" || t === ">") {
      if (!wildcards) return "wildcards not allowed";
      if (t === ">" && i !== last) return "'>' must be the last token";
      continue;
    }
    if (t.includes("*") || t.includes(">")) return "'*' and '>' must be whole tokens";
  }
  return null;
}

/** True when the subject has no `*` or `>` token (it does not validate the subject). */
export function isLiteralSubject(subject: string): boolean {
  for (const t of subject.split(".")) if (t === "*" || t === ">") return false;
  return true;
}

/** Validates a queue group name: one token of at most 256 bytes, no wildcards. */
export function validateQueueName(q: string): string | null {
  const basic = _basic(q, "queue name", _MAX_SUBJECT_BYTES);
  if (basic !== null) return basic;
  if (q.includes(".")) return "must be a single token";
  if (q.includes("*") || q.includes(">")) return "wildcards not allowed";
  return null;
}

/**
 * Validates a KV bucket name: `[A-Za-z0-9_-]+`, at most 252 bytes (its stream, `KV_<bucket>`, must
 * fit nats-server's 255-byte limit on stream names).
 */
export function validateBucketName(b: string): string | null {
  if (typeof b !== "string") return "bucket name must be a string";
  if (b.length === 0) return "empty bucket name";
  if (!_BUCKET.test(b)) return "bucket names use only A-Z a-z 0-9 _ -";
  if (b.length > _MAX_BUCKET_BYTES) return `longer than ${_MAX_BUCKET_BYTES} bytes`;
  return null;
}

/** Validates a JetStream stream name: at most 255 bytes, no `. * > / \`, whitespace or controls. */
export function validateStreamName(s: string): string | null {
  const basic = _basic(s, "stream name", _MAX_NAME_BYTES);
  if (basic !== null) return basic;
  if (_STREAM_BAD.test(s)) return "stream names must not contain . * > / \\";
  return null;
}

/**
 * Validates a KV key, or with `wildcards` (default true) a key pattern: dot-separated tokens of
 * `[-/_=A-Za-z0-9]+`, at most 256 bytes; as patterns, `*` tokens and a final `>` token.
 */
export function validateKvKey(key: string, opts?: { wildcards?: boolean }): string | null {
  if (typeof key !== "string") return "key must be a string";
  if (key.length === 0) return "empty key";
  if (key.length > _MAX_SUBJECT_BYTES) return `longer than ${_MAX_SUBJECT_BYTES} bytes`;
  const wildcards = opts?.wildcards ?? true;
  const tokens = key.split(".");
  const last = tokens.length - 1;
  for (let i = 0; i <= last; i++) {
    const t = tokens[i];
    if (t.length === 0) return "empty token";
    if (t === "*" || t === ">") {
      if (!wildcards) return "wildcards not allowed";
      if (t === ">" && i !== last) return "'>' must be the last token";
      continue;
    }
    if (!_KV_TOKEN.test(t)) return "keys use only A-Z a-z 0-9 - / _ = and dots";
  }
  return null;
}

/** Validates a header name (an RFC 7230 token of 1..256 characters). */
export function validateHeaderName(name: string): string | null {
  if (typeof name !== "string") return "header name must be a string";
  if (name.length === 0) return "empty header name";
  if (name.length > 256) return "header name longer than 256 characters";
  if (!_TCHAR.test(name)) return "header names are RFC 7230 tokens";
  return null;
}

/**
 * Validates a header value: at most 4096 bytes, no CR, LF, NUL or other control characters
 * (tab is allowed), no lone surrogates.
 */
export function validateHeaderValue(v: string): string | null {
  if (typeof v !== "string") return "header value must be a string";
  const len = _utf8Len(v);
  if (len < 0) return _ILL_FORMED;
  if (len > 4096) return "header value longer than 4096 bytes";
  if (_HEADER_BAD.test(v)) return "header values must not contain control characters";
  return null;
}

/** Splits a pattern or subject into tokens; compile patterns once and reuse the result. */
export function tokenizePattern(pattern: string): readonly string[] {
  return pattern.split(".");
}

function _wild(t: string): boolean {
  return t === "*" || t === ">";
}

/** True when the first token is `*` or `>` (such a pattern never reaches `$…` subjects). */
export function firstTokenIsWildcard(tokens: readonly string[]): boolean {
  return tokens.length > 0 && _wild(tokens[0]);
}

/**
 * True when the literal `subject` tokens are matched by `pattern` tokens (NATS semantics: `*` is
 * one token, `>` one or more trailing tokens), with the `$` rule: a pattern whose first token is a
 * wildcard never matches a subject whose first token starts with `$`.
 */
export function matchTokens(pattern: readonly string[], subject: readonly string[]): boolean {
  const n = pattern.length;
  if (n === 0 || subject.length === 0) return false;
  if (_wild(pattern[0]) && subject[0].charCodeAt(0) === 36) return false;
  for (let i = 0; i < n; i++) {
    const p = pattern[i];
    if (p === ">") return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== "*" && p !== subject[i]) return false;
  }
  return n === subject.length;
}

/**
 * True subset check: every concrete subject that `requested` (which may hold wildcards) can match
 * is matched by `granted`. Unlike nats-server's check, `foo.>` is not a subset of `foo.*`; and
 * `*.x` is not a subset of `a.*`. With the `$` rule, a granted leading wildcard never covers a
 * requested literal `$…` first token.
 */
export function subsetTokens(requested: readonly string[], granted: readonly string[]): boolean {
  const n = granted.length;
  if (requested.length === 0 || n === 0) return false;
  // A requested leading wildcard cannot reach `$…` subjects either, so only a literal one matters.
  if (_wild(granted[0]) && !_wild(requested[0]) && requested[0].charCodeAt(0) === 36) return false;
  for (let i = 0; i < n; i++) {
    if (i >= requested.length) return false;
    const g = granted[i];
    const r = requested[i];
    if (g === ">") return true;
    if (r === ">") return false;
    if (g === "*") continue;
    if (r !== g) return false; // also when r is `*`: it reaches tokens other than g
  }
  return requested.length === n;
}

/** String form of {@link matchTokens}; prefer the token form on hot paths. */
export function patternMatches(pattern: string, subject: string): boolean {
  return matchTokens(tokenizePattern(pattern), tokenizePattern(subject));
}

/** String form of {@link subsetTokens}; prefer the token form on hot paths. */
export function isSubset(requested: string, granted: string): boolean {
  return subsetTokens(tokenizePattern(requested), tokenizePattern(granted));
}

/**
 * Delivery-time `$` filter: false when the subscription pattern's first token is a wildcard and
 * the message subject starts with `$` (such messages must not reach the subscriber).
 */
export function deliverableTo(patternTokens: readonly string[], subject: string): boolean {
  return subject.charCodeAt(0) !== 36 || !firstTokenIsWildcard(patternTokens);
}
