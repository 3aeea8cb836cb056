/** Reversible encoding of user ids into single KV key tokens (`users.<encoded>`).
 * `[A-Za-z0-9_-]` stay; every other UTF-8 byte becomes `=` and two upper-case hex digits.
 * @module */

/** Prefix of every user's capability key. */
export const USERS_PREFIX = "users.";

/**
 * Longest encoded id, in bytes (all ASCII): `users.` plus the token stays within the 256 bytes
 * that `validateKvKey` accepts.
 */
export const MAX_ENCODED_USER_ID = 256 - USERS_PREFIX.length;

const _HEX = "0123456789ABCDEF";
const _encoder = new TextEncoder();
const _decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function _keep(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
    c === 0x5f || c === 0x2d;
}

function _hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1; // lower-case hex is non-canonical, so refused
}

function _encode(id: string): string {
  let out = "";
  for (const b of _encoder.encode(id)) {
    out += _keep(b) ? String.fromCharCode(b) : "=" + _HEX[b >> 4] + _HEX[b & 15];
  }
  return out;
}

/**
 * Why `id` cannot be encoded into a capability key, or null when it can: it must be a non-empty,
 * well-formed (no lone surrogates) string whose encoding is at most {@link MAX_ENCODED_USER_ID}
 * bytes. Lets authentication refuse such ids up front instead of failing later.
 */
export function validateUserId(id: string): string | null {
  if (typeof id !== "string") return "user id must be a string";
  if (id.length === 0) return "empty user id";
  // A lone surrogate would encode as U+FFFD and collide with the id that really holds U+FFFD.
  if (!id.isWellFormed()) return "user id is not well-formed Unicode";
  if (id.length > MAX_ENCODED_USER_ID || _encode(id).length > MAX_ENCODED_USER_ID) {
    return `encoded user id longer than ${MAX_ENCODED_USER_ID} bytes`;
  }
  return null;
}

/**
 * Encodes a user id into one KV key token. Throws on an id {@link validateUserId} refuses (empty,
 * lone surrogates, encoding too long).
 */
export function encodeUserId(id: string): string {
  if (typeof id !== "string" || id.length === 0) throw new Error("empty user id");
  if (!id.isWellFormed()) throw new Error("user id is not well-formed Unicode");
  const out = _encode(id);
  if (out.length > MAX_ENCODED_USER_ID) {
    throw new Error(`encoded user id longer than ${MAX_ENCODED_USER_ID} bytes`);
  }
  return out;
}

/** Decodes {@link encodeUserId}'s output; throws on malformed or non-canonical input. */
export function decodeUserId(encoded: string): string {
  if (typeof encoded !== "string" || encoded.length === 0) {
    throw new Error("empty encoded user id");
  }
  if (encoded.length > MAX_ENCODED_USER_ID) throw new Error("encoded user id too long");
  const bytes = new Uint8Array(encoded.length);
  let n = 0;
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded.charCodeAt(i);
    if (c === 0x3d) {
      const hi = _hexValue(encoded.charCodeAt(i + 1));
      const lo = _hexValue(encoded.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) throw new Error("malformed escape in encoded user id");
      const b = hi * 16 + lo;
      if (_keep(b)) throw new Error("non-canonical escape in encoded user id");
      bytes[n++] = b;
      i += 2;
    } else if (_keep(c)) {
      bytes[n++] = c;
    } else {
      throw new Error("invalid character in encoded user id");
    }
  }
  // Fatal decoding refuses invalid UTF-8 (overlongs, surrogates, truncated sequences), and every
  // byte of valid UTF-8 re-encodes to itself, so the result round-trips exactly.
  return _decoder.decode(bytes.subarray(0, n));
}

/** The KV key holding a user's capabilities (`users.<encoded id>`); throws like encodeUserId. */
export function userKey(id: string): string {
  return USERS_PREFIX + encodeUserId(id);
}

/** The user id of a capability key, or null when `key` is not a well-formed one. */
export function userFromKey(key: string): string | null {
  if (typeof key !== "string" || !key.startsWith(USERS_PREFIX)) return null;
  try {
    return decodeUserId(key.slice(USERS_PREFIX.length));
  } catch {
    return null;
  }
}
