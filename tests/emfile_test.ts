/** Out of file descriptors: the real `natsgate serve` under a low `ulimit -n` keeps running while
 * idle sockets exhaust its descriptors, and serves again once they are released.
 * @module */

import assert from "node:assert/strict";
import { NatsServer } from "../src/nats/launcher.ts";
import { NatsgateProcess, retry, TEST_SECRET } from "./_harness.ts";

Deno.test("emfile: serve survives running out of descriptors and answers again after", async () => {
  const nats = await NatsServer.start();
  const gw = new NatsgateProcess(
    ["serve", "--nats", nats.url, "--jwt-secret", TEST_SECRET, "--listen", "127.0.0.1:0"],
    {},
    { openFiles: 96, limitMs: 60_000 },
  );
  const idle: Deno.TcpConn[] = [];
  try {
    const port = Number(new URL(await gw.wsUrl()).port);
    // More idle sockets than the process has descriptors: accept() fails with EMFILE.
    for (let i = 0; i < 150; i++) {
      idle.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    // The real signal that it happened: the gateway reports the failed accept and goes on.
    const m = await gw.waitFor(/transport error[^\n]*(Too many open files|os error 24)/, 20_000);
    assert.match(m[0], /accept/, "reported by the accept loop");
    for (const c of idle.splice(0)) c.close();
    // Served again once descriptors are free (the accept loop backs off at most 1 s).
    const status = await retry(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      await res.body?.cancel();
      return res.status;
    });
    assert.equal(status, 200, "the gateway answers again");
    assert.doesNotMatch(gw.stderr, /Uncaught/, "no uncaught error");
  } finally {
    for (const c of idle) c.close();
    await gw.stop();
    await nats.stop();
  }
});
