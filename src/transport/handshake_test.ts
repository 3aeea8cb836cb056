import assert from "node:assert/strict";
import { acceptKey, handshakeProblem, hasToken } from "./handshake.ts";

Deno.test("handshake: RFC 6455 sample key", async () => {
  assert.equal(
    await acceptKey("dGhlIHNhbXBsZSBub25jZQ=="),
    "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", /* RFC 6455 1.3 */
  );
});

Deno.test("handshake: request checks", () => {
  const ok = {
    upgrade: "websocket",
    connection: "keep-alive, Upgrade",
    "sec-websocket-version": "13",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  };
  const req = (h: Record<string, string>, method = "GET") =>
    new Request("http://a/", { method, headers: h });
  assert.equal(handshakeProblem(req(ok)), undefined);
  assert.match(handshakeProblem(req(ok, "POST"))!, /GET/);
  assert.match(handshakeProblem(req({ ...ok, upgrade: "h2c" }))!, /Upgrade/);
  assert.match(handshakeProblem(req({ ...ok, connection: "close" }))!, /Connection/);
  assert.match(handshakeProblem(req({ ...ok, "sec-websocket-version": "8" }))!, /Version/);
  assert.match(handshakeProblem(req({ ...ok, "sec-websocket-key": "short==" }))!, /Key/);
  assert.match(
    handshakeProblem(req({ ...ok, "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ" }))!,
    /Key/,
  );
  assert.ok(hasToken("Upgrade", "upgrade"));
  assert.ok(!hasToken(null, "upgrade"));
});
