/** Type-level checks of the SDK's public surface: each `@ts-expect-error` line must fail to
 * type-check (`deno check` / `deno test` fail when one compiles, e.g. if `connect(url, {})` were
 * accepted again). The runtime test beside them proves the same guard holds for plain JavaScript.
 * @module */

import assert from "node:assert/strict";
import {
  connect,
  type ConnectOptions,
  type JsMsg,
  type KvEvent,
  type Msg,
  NatsgateClient,
} from "../src/client/mod.ts";

/** Never called: only type-checked. */
export function _typeChecks(client: NatsgateClient): void {
  // A token source is required.
  // @ts-expect-error: neither token nor getToken
  connect("ws://127.0.0.1:1/ws", {});
  // @ts-expect-error: reconnect settings alone are not a token source
  connect("ws://127.0.0.1:1/ws", { reconnect: false });
  // @ts-expect-error: the token must be a string
  connect("ws://127.0.0.1:1/ws", { token: 1 });
  const ok: ConnectOptions[] = [{ token: "t" }, { getToken: () => "t" }, {
    token: "t",
    getToken: () => Promise.resolve("t"),
  }];
  void ok;

  // Payload types flow through generics.
  client.subscribe<{ n: number }>("a", (m: Msg<{ n: number }>) => {
    const n: number = m.payload.n;
    // @ts-expect-error: payload is { n: number }
    const s: string = m.payload.n;
    void n, s;
  });
  client.jsSubscribe<string>("S", { deliver: "all" }, (m: JsMsg<string>) => {
    // @ts-expect-error: payload is a string
    const n: number = m.payload;
    void n;
  });
  client.kvWatch<boolean>("B", (e: KvEvent<boolean>) => {
    const v: boolean | undefined = e.value;
    void v;
  });
  client.request<{ q: string }, { a: number }>("svc", { q: "x" }).then((r) => {
    const a: number = r.payload.a;
    void a;
  });
  // @ts-expect-error: the request payload must be a Req
  client.request<{ q: string }, { a: number }>("svc", { q: 1 });
}

Deno.test("client types: a missing token source is refused at run time too", () => {
  assert.throws(
    () => new NatsgateClient("ws://127.0.0.1:1/ws", {} as unknown as ConnectOptions),
    TypeError,
  );
});
