/** `upgradeWebSocket()` for requests served by {@link HttpServer}: the same pattern as
 * `Deno.upgradeWebSocket` (call it in the handler, return its `response`).
 * @module */

import { handshakeProblem } from "./handshake.ts";
import { WsConnection, type WsOptions } from "./ws_connection.ts";

/** What the server knows about a request it handed to the handler (internal). */
export interface RequestContext {
  /** The TCP peer. */
  remoteAddr: Deno.NetAddr;
  /** Set by `upgradeWebSocket()`. */
  upgrade?: { socket: WsConnection; response: Response };
}

const _requests = new WeakMap<Request, RequestContext>();

/** Marks `req` as served by our server (internal). */
export function _registerRequest(req: Request, ctx: RequestContext): void {
  _requests.set(req, ctx);
}

/**
 * Upgrades a request served by `HttpServer` to a WebSocket. Throws a `TypeError` when the request
 * is not a valid upgrade (not GET, no `Upgrade: websocket`, no `upgrade` token in `Connection`,
 * version not 13, bad key), was not served by `HttpServer`, or was already upgraded; a handler
 * can answer 400 then. The server writes the 101 once the handler returns `response`.
 *
 * @example
 * ```ts
 * HttpServer.listen({ hostname: "127.0.0.1", port: 0 }, (req) => {
 *   const { socket, response } = upgradeWebSocket(req, { maxMessageBytes: 4096 });
 *   socket.onmessage = (text) => socket.send(text);
 *   return response;
 * });
 * ```
 */
export function upgradeWebSocket(
  req: Request,
  opts?: WsOptions,
): { socket: WsConnection; response: Response } {
  const ctx = _requests.get(req);
  if (!ctx) throw new TypeError("request was not served by the transport HttpServer");
  if (ctx.upgrade) throw new TypeError("request already upgraded");
  const problem = handshakeProblem(req);
  if (problem) throw new TypeError(`invalid WebSocket upgrade: ${problem}`);
  const socket = new WsConnection(ctx.remoteAddr, opts);
  // Response refuses status 101 in its constructor; the server recognises this object and
  // writes the real 101. `status` reads 101 for handlers that inspect it.
  const response = new Response(null, { status: 200 });
  Object.defineProperty(response, "status", { value: 101 });
  ctx.upgrade = { socket, response };
  return { socket, response };
}
