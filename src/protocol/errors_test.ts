/** Error classes per protocol code, and the mapping of anything thrown to one of them.
 * @module */

import assert from "node:assert/strict";
import { errors as natsErrors } from "@nats-io/transport-node";
import {
  BackpressureError,
  BadRequestError,
  CloseCode,
  type ErrorCode,
  ForbiddenError,
  GatewayError,
  gatewayError,
  InternalError,
  InvalidSubjectError,
  isUsageError,
  LimitError,
  NoRespondersError,
  NotFoundError,
  TimeoutError,
  toGatewayError,
  UnauthorizedError,
  UnavailableError,
  UnknownOpError,
  UnsupportedVersionError,
} from "./errors.ts";

const CLASSES: Array<[ErrorCode, new (m: string) => GatewayError]> = [
  ["bad_request", BadRequestError],
  ["unsupported_version", UnsupportedVersionError],
  ["unknown_op", UnknownOpError],
  ["invalid_subject", InvalidSubjectError],
  ["unauthorized", UnauthorizedError],
  ["forbidden", ForbiddenError],
  ["not_found", NotFoundError],
  ["timeout", TimeoutError],
  ["no_responders", NoRespondersError],
  ["limit_exceeded", LimitError],
  ["backpressure", BackpressureError],
  ["unavailable", UnavailableError],
  ["internal", InternalError],
];

Deno.test("errors: one class per code, a GatewayError named after itself", () => {
  for (const [code, Cls] of CLASSES) {
    const e = new Cls("m");
    assert.ok(e instanceof GatewayError && e instanceof Error, code);
    assert.equal(e.code, code);
    assert.equal(e.name, Cls.name);
    assert.equal(e.message, "m");
    const made = gatewayError(code, "n", { close: CloseCode.PROTOCOL });
    assert.ok(made instanceof Cls, code);
    assert.equal(made.close, CloseCode.PROTOCOL);
    assert.equal(isUsageError(e), code !== "internal");
  }
  assert.equal(new Set(CLASSES.map(([, c]) => c)).size, CLASSES.length);
});

Deno.test("errors: cause is kept by the classes and by toGatewayError", () => {
  const root = new Error("root");
  assert.equal(new ForbiddenError("x", { cause: root }).cause, root);
  assert.equal(new BadRequestError("x").cause, undefined);
  const rows: Array<[unknown, new (m: string) => GatewayError, string]> = [
    [new natsErrors.TimeoutError(), TimeoutError, "timed out"],
    [new natsErrors.NoRespondersError("svc.a"), NoRespondersError, "no responders"],
    [
      new natsErrors.RequestError("r", { cause: new natsErrors.TimeoutError() }),
      TimeoutError,
      "timed out",
    ],
    [
      new natsErrors.RequestError("r", { cause: new natsErrors.NoRespondersError("svc.a") }),
      NoRespondersError,
      "no responders",
    ],
    [new natsErrors.RequestError("r"), UnavailableError, "NATS request failed"],
    [new natsErrors.ClosedConnectionError(), UnavailableError, "NATS is unavailable"],
    [new natsErrors.DrainingConnectionError(), UnavailableError, "NATS is unavailable"],
    [new natsErrors.ConnectionError("c"), UnavailableError, "NATS is unavailable"],
    [
      new natsErrors.PermissionViolationError("p", "publish", "a.b"),
      ForbiddenError,
      "denied by NATS permissions",
    ],
    [root, InternalError, "internal error"],
    ["a thrown string", InternalError, "internal error"],
  ];
  for (const [err, Cls, message] of rows) {
    const g = toGatewayError(err);
    assert.ok(g instanceof Cls, `${String(err)} -> ${g.name}`);
    assert.equal(g.message, message);
    assert.equal(g.cause, err, "the original stays reachable for the log");
  }
});

Deno.test("errors: a GatewayError passes through toGatewayError unchanged", () => {
  const e = new LimitError("too many", { close: CloseCode.RATE_LIMIT });
  assert.equal(toGatewayError(e), e);
});

Deno.test("errors: an internal error's message never carries the cause's text", () => {
  const g = toGatewayError(new Error("secret detail /etc/passwd"));
  assert.ok(!g.message.includes("secret"));
  assert.ok(g.stack !== undefined && (g.cause as Error).stack!.includes("secret detail"));
});
