/** /metrics exposes the gateway's figures in the Prometheus text format.
 * Counters are driven by real traffic, denials, closes and capability changes.
 * @module */

import assert from "node:assert/strict";
import { Stack, waitFor } from "./_harness.ts";

function _value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

Deno.test("metrics: connections, traffic, denials, closes, cmd latency, revocations", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { subjects: ["m.>"], commands: ["svc.echo"] });
  stack.nc.subscribe("svc.echo", { callback: (_e, m) => void m.respond(m.data) });
  await stack.nc.flush();
  const base = stack.gateway.wsUrl.replace(/^ws/, "http").replace(/\/ws$/, "");
  const scrape = async () => {
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /text\/plain/);
    return await r.text();
  };
  const c = await stack.client("u");
  const sid = await c.sub("m.x");
  for (let i = 0; i < 5; i++) stack.nc.publish("m.x", "1");
  await c.waitMsgs(sid, 5);
  assert.equal((await c.request({ op: "sub", target: "nope" })).data.code, "forbidden");
  assert.equal((await c.request({ op: "cmd", target: "svc.echo", data: 1 })).op, "reply");
  let text = await scrape();
  assert.equal(_value(text, "natsgate_connections"), 1);
  assert.equal(_value(text, 'natsgate_subscriptions{kind="core"}'), 1);
  assert.ok(_value(text, "natsgate_messages_out_total") >= 5);
  assert.ok(_value(text, "natsgate_messages_in_total") >= 3);
  assert.equal(_value(text, 'natsgate_denials_total{op="sub"}'), 1);
  assert.equal(_value(text, 'natsgate_cmd_duration_seconds_count{outcome="ok"}'), 1);
  assert.ok(_value(text, "natsgate_process_cpu_user_seconds_total") > 0, "process metrics");

  await stack.setCaps("u", { subjects: ["other.>"] });
  await c.next((e) => e.op === "cap_update" && e.data.revoked.length === 1);
  await c.close();
  await waitFor(() => stack.gateway.sessionCount === 0);
  text = await scrape();
  assert.equal(_value(text, "natsgate_revocations_total"), 1);
  assert.equal(_value(text, "natsgate_capability_reloads_total"), 1);
  assert.equal(_value(text, "natsgate_connections"), 0);
  assert.equal(_value(text, "natsgate_connections_total"), 1);
  assert.equal(_value(text, 'natsgate_connection_closes_total{code="1005"}'), 1);
  assert.ok(_value(text, "natsgate_messages_out_total") >= 5, "closed sessions still counted");
});
