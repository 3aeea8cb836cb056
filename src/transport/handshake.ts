/** The WebSocket opening handshake (RFC 6455 section 4.2): request checks and the accept key.
 * @module */

const _GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (base64 SHA-1 of key + GUID). */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + _GUID));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** Whether a header value lists `token` (comma-separated, case-insensitive). */
export function hasToken(value: string | null, token: string): boolean {
  if (!value) return false;
  return value.split(",").some((t) => t.trim().toLowerCase() === token);
}

/**
 * Why `req` is not a valid WebSocket upgrade request, or undefined when it is: GET, `Upgrade:
 * websocket`, a `Connection` listing `upgrade`, `Sec-WebSocket-Version: 13`, and a
 * `Sec-WebSocket-Key` that is base64 of 16 bytes.
 */
export function handshakeProblem(req: Request): string | undefined {
  if (req.method !== "GET") return "upgrade method is not GET";
  if (!hasToken(req.headers.get("upgrade"), "websocket")) return "Upgrade is not websocket";
  if (!hasToken(req.headers.get("connection"), "upgrade")) return "Connection lacks upgrade";
  if (req.headers.get("sec-websocket-version") !== "13") return "Sec-WebSocket-Version is not 13";
  const key = req.headers.get("sec-websocket-key") ?? "";
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return "bad Sec-WebSocket-Key";
  return undefined;
}
