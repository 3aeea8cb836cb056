/** A bare WebSocket server like bench/_bare_ws.ts, on natsgate's own transport (`own`, default)
 * or on `Deno.serve` (`deno`) for comparison. Answers `sub` like the gateway; `{"op":"blast",
 * "n":N}` sends N small frames at once. Prints its port on stdout.
 * `deno run -A bench/_own_ws.ts [own|deno]`
 * @module */

import { HttpServer, upgradeWebSocket } from "../src/transport/mod.ts";

const HELLO = '{"v":1,"op":"cap_update","data":{}}';
const MSG = '{"v":1,"op":"msg","sid":"1","subject":"bench.x","data":"0123456789abcdef"}';

function _answer(text: string, send: (s: string) => void): void {
  const env = JSON.parse(text);
  if (env.op === "sub") {
    send(JSON.stringify({ v: 1, op: "reply", inbox: env.inbox, data: { id: "1" } }));
  } else if (env.op === "blast") {
    for (let i = 0; i < env.n; i++) send(MSG);
  }
}

if ((Deno.args[0] ?? "own") === "deno") {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onopen = () => socket.send(HELLO);
    socket.onmessage = (e) => _answer(String(e.data), (s) => socket.send(s));
    return response;
  });
  console.log(server.addr.port);
} else {
  const server = HttpServer.listen({ hostname: "127.0.0.1", port: 0 }, (req) => {
    const { socket, response } = upgradeWebSocket(req);
    socket.send(HELLO);
    socket.onmessage = (text) => _answer(text, (s) => socket.send(s));
    return response;
  });
  console.log(server.addr.port);
}
