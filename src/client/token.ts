/** Reading a JWT's timing claims without verifying it, to refresh ahead of expiry.
 * @module */

/**
 * Decodes a JWT's payload without verifying it (the client only needs `exp` and `iat`).
 * Returns undefined for anything that is not a readable JWT.
 *
 * @example
 * ```ts
 * decodeJwtPayload(token)?.sub; // the user id
 * ```
 */
export function decodeJwtPayload(token: string): Record<string, unknown> | undefined {
  const parts = typeof token === "string" ? token.split(".") : [];
  if (parts.length !== 3) return undefined;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const payload: unknown = JSON.parse(new TextDecoder().decode(fromBase64(padded)));
    return typeof payload === "object" && payload !== null && !Array.isArray(payload)
      ? payload as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * When to refresh a token, in milliseconds from `nowMs`: 30 s before `exp`, or at 80 % of the
 * lifetime for tokens that live less than 150 s. Undefined for tokens without `exp`.
 *
 * @example
 * ```ts
 * setTimeout(refresh, tokenRefreshDelay(token) ?? 60_000);
 * ```
 */
export function tokenRefreshDelay(token: string, nowMs: number = Date.now()): number | undefined {
  const p = decodeJwtPayload(token);
  if (!p || typeof p.exp !== "number") return undefined;
  const expMs = p.exp * 1000;
  const issuedMs = typeof p.iat === "number" && p.iat * 1000 <= nowMs ? p.iat * 1000 : nowMs;
  const lifetime = expMs - issuedMs;
  const at = lifetime >= 150_000 ? expMs - 30_000 : issuedMs + lifetime * 0.8;
  return Math.max(0, at - nowMs);
}

/** Bytes of a base64 string (standard alphabet, padded). */
export function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Standard base64 of bytes. */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}
