/** natsgate's own HTTP/1.1 + WebSocket transport on `Deno.listen` / `Deno.listenTls`: accept
 * loop that survives EMFILE, connection limits before allocation, a request-head deadline,
 * bounded WebSocket messages, abortable sockets and an exact drain signal.
 *
 * @example
 * ```ts
 * import { HttpServer, upgradeWebSocket } from "./mod.ts";
 * const server = HttpServer.listen({ hostname: "127.0.0.1", port: 0 }, (req) => {
 *   if (new URL(req.url).pathname !== "/ws") return new Response("not found\n", { status: 404 });
 *   const { socket, response } = upgradeWebSocket(req);
 *   socket.onmessage = (text) => socket.send(text);
 *   return response;
 * });
 * await server.close();
 * ```
 * @module */

export { type ConnInfo, type Handler, HttpServer, type ServerOptions } from "./server.ts";
export { upgradeWebSocket } from "./upgrade.ts";
export { WsConnection, type WsOptions } from "./ws_connection.ts";
export { WsClose } from "./ws_frame.ts";
