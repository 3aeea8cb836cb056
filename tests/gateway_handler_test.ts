/** The gateway's HTTP handler is built apart from listening: served here by a second HttpServer
 * on port 0 (the project's transport, as Deno.serve cannot hand over our WebSocket upgrade), a
 * real WebSocket client gets the whole protocol through it, and the routes answer as on the
 * gateway's own listener.
 * @module */

import assert from "node:assert/strict";
import { HttpServer } from "../src/transport/mod.ts";
import { Stack, TestClient } from "./_harness.ts";

Deno.test("handler: served by another listener, it upgrades, authenticates and delivers", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { subjects: ["h.>"], publish: ["h.>"] });
  const server = HttpServer.listen(
    { hostname: "127.0.0.1", port: 0 },
    stack.gateway.requestHandler,
  );
  try {
    const base = `127.0.0.1:${server.addr.port}`;
    const health = await fetch(`http://${base}/healthz`);
    assert.equal(await health.text(), "ok\n");
    const missing = await fetch(`http://${base}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();

    const c = await TestClient.connect(`ws://${base}/ws`, { query: await stack.token("u") });
    const first = await c.next((e) => e.op === "cap_update", 5000, "first cap_update");
    assert.equal(first.data.user, "u");
    const sid = await c.sub("h.x");
    const pub = await c.request({ op: "pub", target: "h.x", data: { n: 1 } });
    assert.equal(pub.op, "reply");
    const [msg] = await c.waitMsgs(sid, 1);
    assert.deepEqual(msg.data.payload, { n: 1 });
    // The session is the gateway's own: it shows in its listing.
    assert.ok(stack.gateway.sessions("u").some((s) => s.id === first.data.session));
    await c.close();
  } finally {
    await server.close();
  }
});
