/** Gateway URLs: what the WebSocket dials, and the plain HTTP URL a refused upgrade is probed at.
 * @module */

/**
 * The WebSocket URL of a gateway address: `ws://`/`wss://` as given, `http(s)://` mapped, and in a
 * browser a path like `/ws` resolved against the page.
 *
 * @example
 * ```ts
 * wsUrl("https://gw.example/ws"); // "wss://gw.example/ws"
 * ```
 */
export function wsUrl(url: string | URL): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  const u = new URL(String(url), base);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`unsupported gateway URL scheme: ${u.protocol}`);
  }
  return u.toString();
}

/** The `http(s)://` form of a `ws(s)://` URL. */
export function httpUrl(ws: string): string {
  const u = new URL(ws);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  return u.toString();
}
