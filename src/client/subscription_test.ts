import assert from "node:assert/strict";
import type { ClientFrame } from "../protocol/types.ts";
import { ForbiddenError, HandlerError, type NatsgateError } from "./errors.ts";
import { type ClientApi, Subscription } from "./subscription.ts";

/** A subscription kind delivering numbers, driven by hand. */
class _Numbers extends Subscription<number> {
  protected _envelope(): ClientFrame {
    return { op: "sub", target: this.target, data: {} };
  }
  deliver(d: Record<string, unknown>): void {
    this._emit(d.n as number);
  }
}

function _api(reported: NatsgateError[] = [], released: unknown[] = []): ClientApi {
  return {
    request: () => {},
    call: () => Promise.resolve(undefined),
    isOpen: () => true,
    release: (sub) => released.push(sub),
    report: (error) => reported.push(error),
  };
}

Deno.test("Subscription: without a handler, values wait for the iterator; unsubscribe ends it", async () => {
  const released: unknown[] = [];
  const sub = new _Numbers(_api([], released), "core", "n", undefined);
  sub.deliver({ n: 1 });
  sub.deliver({ n: 2 });
  const got: number[] = [];
  const loop = (async () => {
    for await (const n of sub) got.push(n);
  })();
  await Promise.resolve();
  sub.deliver({ n: 3 });
  await sub.unsubscribe();
  await loop;
  assert.deepEqual(got, [1, 2, 3]);
  assert.deepEqual(released, [sub]);
});

Deno.test("Subscription: breaking out of the loop unsubscribes", async () => {
  const released: unknown[] = [];
  const sub = new _Numbers(_api([], released), "core", "n", undefined);
  for (let i = 1; i <= 5; i++) sub.deliver({ n: i });
  const got: number[] = [];
  for await (const n of sub) {
    got.push(n);
    if (n === 2) break;
  }
  assert.deepEqual(got, [1, 2]);
  assert.equal(sub.closed, true);
  assert.deepEqual(released, [sub]);
});

Deno.test("Subscription: a revoked subscription makes the iterator throw its error", async () => {
  const sub = new _Numbers(_api(), "core", "n", undefined);
  const loop = (async () => {
    for await (const _ of sub) { /* nothing arrives */ }
  })();
  await Promise.resolve();
  const revoked = new ForbiddenError("sub n: revoked (capabilities changed)");
  sub.fail(revoked, true);
  await assert.rejects(loop, (err) => err === revoked);
  await assert.rejects(sub.ready, (err) => err === revoked);
});

Deno.test("Subscription: a handler that throws or rejects is reported, not thrown", async () => {
  const reported: NatsgateError[] = [];
  const { promise: both, resolve } = Promise.withResolvers<void>();
  const api = _api();
  api.report = (error) => {
    reported.push(error);
    if (reported.length === 2) resolve();
  };
  const sub = new _Numbers(api, "core", "n", (n) => {
    if (n === 1) throw new Error("boom");
    return Promise.reject(new Error("later"));
  });
  sub.deliver({ n: 1 });
  sub.deliver({ n: 2 });
  await both; // the rejection is reported once it settles
  assert.ok(reported.every((e) => e instanceof HandlerError));
  assert.match(reported[0].message, /core subscription n: handler failed: boom/);
  assert.equal((reported[1].cause as Error).message, "later");
});
