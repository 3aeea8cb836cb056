/** Reversible encoding of user ids into single KV key tokens (`users.<encoded>`).
 * `[A-Za-z0-9_-]` stay; every other UTF-8 byte becomes `=` and two upper-case hex digits.
 * @module */

/** Prefix of every user's capability key. */
export const USERS_PREFIX = "users.";

const _KEEP = /^[A-Za-z0-9_-]$/;
const _encoder = new TextEncoder();
const _decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes a user id into one KV key token; throws on an empty id. */
export function encodeUserId(id: string): string {
  if (typeof id !== "string" || id.length === 0) throw new Error("empty user id");
  let out = "";
  for (const ch of id) {
    if (_KEEP.test(ch)) {
      out += ch;
      continue;
    }
    for (const b of _encoder.encode(ch)) out += "=" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** Decodes {@link encodeUserId}'s output; throws on malformed input. */
export function decodeUserId(encoded: string): string {
  if (encoded.length === 0) throw new Error("empty encoded user id");
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded[i];
    if (c === "=") {
      const hex = encoded.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error("malformed escape in encoded user id");
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (_KEEP.test(c)) {
      bytes.push(c.charCodeAt(0));
    } else {
      throw new Error("invalid character in encoded user id");
    }
  }
  const id = _decoder.decode(new Uint8Array(bytes));
  if (encodeUserId(id) !== encoded) throw new Error("non-canonical encoded user id");
  return id;
}

/** The KV key holding a user's capabilities. */
export function userKey(id: string): string {
  return USERS_PREFIX + encodeUserId(id);
}

/** The user id of a capability key, or null when `key` is not one. */
export function userFromKey(key: string): string | null {
  if (!key.startsWith(USERS_PREFIX)) return null;
  try {
    return decodeUserId(key.slice(USERS_PREFIX.length));
  } catch {
    return null;
  }
}
