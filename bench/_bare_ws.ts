/** Floor reference for the connections scenario: a bare `Deno.serve` WebSocket server that only
 * answers `auth`/`sub` like the gateway and holds each socket. It prints its port on stdout.
 * @module */

const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onopen = () => socket.send('{"v":1,"op":"cap_update","data":{}}');
  socket.onmessage = (e) => {
    const env = JSON.parse(String(e.data));
    if (env.op === "sub") {
      socket.send(JSON.stringify({ v: 1, op: "reply", inbox: env.inbox, data: { id: "1" } }));
    }
  };
  return response;
});
console.log(server.addr.port);
