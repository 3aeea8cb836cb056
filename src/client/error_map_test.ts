import assert from "node:assert/strict";
import { closeError, errorFromFrame, upgradeRefusal } from "./error_map.ts";
import {
  ConnectionError,
  ForbiddenError,
  LimitError,
  NoRespondersError,
  TokenExpiredError,
  UnauthorizedError,
} from "./errors.ts";

Deno.test("errorFromFrame: one class per code, the op and target in the message", () => {
  const f = errorFromFrame({
    code: "forbidden",
    message: "not allowed",
    context: { op: "cmd", target: "chat.room.1" },
  });
  assert.ok(f instanceof ForbiddenError);
  assert.equal(f.code, "forbidden");
  assert.equal(f.message, "cmd chat.room.1: not allowed");
  assert.deepEqual(f.context, { op: "cmd", target: "chat.room.1" });
  const n = errorFromFrame({ code: "no_responders", message: "no responders", context: {} });
  assert.ok(n instanceof NoRespondersError);
  assert.equal(n.message, "no responders");
  assert.equal(errorFromFrame({ code: "weird" }).code, "internal");
});

Deno.test("closeError: the gateway's last word wins over the close's generic reason", () => {
  const said = errorFromFrame({
    code: "unauthorized",
    message: "token expired",
    context: { op: "auth" },
  });
  const e = closeError("ws://gw/ws", 4001, "unauthorized", said);
  assert.ok(e instanceof UnauthorizedError);
  assert.equal(e.message, "gateway ws://gw/ws refused the token: token expired");
  assert.equal(e.closeCode, 4001);
  assert.equal(e.cause, said);
  const x = closeError("ws://gw/ws", 4003, "token expired");
  assert.ok(x instanceof TokenExpiredError);
  assert.equal(x.code, "unauthorized");
  assert.ok(closeError("ws://gw/ws", 4029, "") instanceof LimitError);
  const lost = closeError("ws://gw/ws", 1006, "");
  assert.ok(lost instanceof ConnectionError);
  assert.equal(lost.message, "connection to ws://gw/ws closed (1006)");
});

Deno.test("upgradeRefusal: the HTTP status picks the class, the body says why", () => {
  const e = upgradeRefusal("ws://gw/ws", 401, "unauthorized: token expired\n");
  assert.ok(e instanceof UnauthorizedError);
  assert.equal(e.httpStatus, 401);
  assert.equal(
    e.message,
    "gateway ws://gw/ws refused the WebSocket upgrade (HTTP 401: unauthorized: token expired)",
  );
  assert.ok(upgradeRefusal("ws://gw/ws", 403, "origin not allowed") instanceof ForbiddenError);
  assert.ok(upgradeRefusal("ws://gw/ws", 429, "") instanceof LimitError);
  assert.ok(upgradeRefusal("ws://gw/ws", 503, "") instanceof ConnectionError);
  assert.equal(upgradeRefusal("ws://gw/ws", 426, "expected a WebSocket upgrade"), undefined);
});
