/** /metrics exposes the gateway's figures in the Prometheus text format.
 * Counters are driven by real traffic, denials, closes, auth failures and capability changes;
 * process figures are the real ones of a real `natsgate serve` process. `/readyz` answers while
 * NATS is frozen, and a busy listen port fails with one clear error.
 * @module */

import assert from "node:assert/strict";
import { mintToken } from "../src/auth/mint.ts";
import { AUTH_FAILURE_REASONS } from "../src/auth/auth_failure.ts";
import { NatsgateProcess, Stack, TEST_SECRET, TestClient, waitFor } from "./_harness.ts";

function _value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

async function _scrape(base: string): Promise<string> {
  const r = await fetch(`${base}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type") ?? "", /text\/plain/);
  return await r.text();
}

/** `natsgate serve` against the stack's NATS with the test secret. */
function _serveArgs(nats: string, listen: string, ...more: string[]): string[] {
  return ["serve", "--nats", nats, "--jwt-secret", TEST_SECRET, "--listen", listen, ...more];
}

function _httpBase(wsUrl: string): string {
  return wsUrl.replace(/^ws/, "http").replace(/\/ws$/, "");
}

Deno.test("metrics: connections, traffic, denials, closes, cmd latency, revocations", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { subjects: ["m.>"], commands: ["svc.echo"] });
  stack.nc.subscribe("svc.echo", { callback: (_e, m) => void m.respond(m.data) });
  await stack.nc.flush();
  const base = _httpBase(stack.gateway.wsUrl);
  let text = await _scrape(base);
  // Known label values start at 0 instead of missing.
  for (const reason of AUTH_FAILURE_REASONS) {
    assert.equal(_value(text, `natsgate_auth_failures_total{reason="${reason}"}`), 0, reason);
  }
  for (const op of ["sub", "pub", "cmd", "kv_sub", "js_sub"]) {
    assert.equal(_value(text, `natsgate_denials_total{op="${op}"}`), 0, op);
  }
  for (const code of [1000, 1001, 4001, 4003, 4008, 4029]) {
    assert.equal(_value(text, `natsgate_connection_closes_total{code="${code}"}`), 0, `${code}`);
  }
  assert.equal(_value(text, 'natsgate_limit_events_total{limit="rate"}'), 0);
  assert.equal(_value(text, 'natsgate_cmd_duration_seconds_count{outcome="timeout"}'), 0);

  const c = await stack.client("u");
  const sid = await c.sub("m.x");
  for (let i = 0; i < 5; i++) stack.nc.publish("m.x", "1");
  await c.waitMsgs(sid, 5);
  assert.equal((await c.request({ op: "sub", target: "nope" })).data.code, "forbidden");
  assert.equal((await c.request({ op: "cmd", target: "svc.echo", data: 1 })).op, "reply");
  text = await _scrape(base);
  assert.equal(_value(text, "natsgate_connections"), 1);
  assert.equal(_value(text, 'natsgate_subscriptions{kind="core"}'), 1);
  assert.ok(_value(text, "natsgate_messages_out_total") >= 5);
  assert.ok(_value(text, "natsgate_messages_in_total") >= 3);
  assert.equal(_value(text, 'natsgate_denials_total{op="sub"}'), 1);
  assert.equal(_value(text, 'natsgate_cmd_duration_seconds_count{outcome="ok"}'), 1);
  assert.ok(_value(text, "process_cpu_seconds_total") > 0, "process metrics");
  assert.doesNotMatch(text, /^(natsgate_)?(nodejs_|process_cpu_user)/m, "no Node collectors");

  await stack.setCaps("u", { subjects: ["other.>"] });
  await c.next((e) => e.op === "cap_update" && e.data.revoked.length === 1);
  await c.close();
  await waitFor(() => stack.gateway.sessionCount === 0);
  text = await _scrape(base);
  assert.equal(_value(text, "natsgate_revocations_total"), 1);
  assert.equal(_value(text, "natsgate_capability_reloads_total"), 1);
  assert.equal(_value(text, "natsgate_connections"), 0);
  assert.equal(_value(text, "natsgate_connections_total"), 1);
  assert.equal(_value(text, 'natsgate_connection_closes_total{code="1005"}'), 1);
  assert.ok(_value(text, "natsgate_messages_out_total") >= 5, "closed sessions still counted");
});

Deno.test("metrics: a real natsgate serve reports real process figures, auth failures and 4001s", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", {
    subjects: ["m.>"],
    commands: ["svc.silent"],
    buckets: { gone: [">"] },
  });
  // A service that takes requests and never answers: the cmd times out.
  stack.nc.subscribe("svc.silent", { callback: () => {} });
  await stack.nc.flush();
  const gw = new NatsgateProcess(
    _serveArgs(stack.nats.url, "127.0.0.1:0", "--log-level", "debug"),
    {},
    { limitMs: 60_000 },
  );
  try {
    const url = await gw.wsUrl();
    const base = _httpBase(url);
    // Real traffic: a client that subscribes and receives.
    const good = await TestClient.connect(url, { query: await stack.token("u") });
    await good.next((e) => e.op === "cap_update", 5000, "first cap_update");
    const sid = await good.sub("m.x");
    for (let i = 0; i < 20; i++) stack.nc.publish("m.x", JSON.stringify({ i }));
    await good.waitMsgs(sid, 20);
    const silent = await good.request({ op: "cmd", target: "svc.silent", timeout_ms: 50 });
    assert.equal(silent.data.code, "timeout");
    assert.equal((await good.request({ op: "kv_sub", target: "gone" })).data.code, "not_found");
    assert.equal((await good.request({ op: "pub", target: "elsewhere.x" })).data.code, "forbidden");
    // A token signed with another secret: refused at the upgrade (401, no connection).
    const forged = await mintToken({ secret: "not-the-gateway-secret-0123456789ab", user: "u" });
    await assert.rejects(TestClient.connect(url, { query: forged }));
    // The SDK's plain GET asking why: answered, but not counted a second time.
    const why = await fetch(`${base}/ws?token=${forged}`);
    assert.equal(why.status, 401);
    assert.equal(await why.text(), "unauthorized: invalid token\n");
    // An expired token in the auth frame: 4001.
    const expired = await TestClient.connect(url);
    expired.send({ op: "auth", data: { token: await stack.token("u", -60) } });
    assert.equal((await expired.closed).code, 4001);
    // A first frame that is not auth: 4001.
    const anonymous = await TestClient.connect(url);
    anonymous.send({ op: "ping", inbox: "p" });
    assert.equal((await anonymous.closed).code, 4001);

    const text = await waitFor(
      async () => {
        const t = await _scrape(base);
        // Closes are counted when the server's socket is gone; the lag probe runs every 100 ms.
        const done = _value(t, 'natsgate_connection_closes_total{code="4001"}') === 2 &&
          _value(t, "deno_eventloop_lag_seconds_count") > 0;
        return done ? t : undefined;
      },
      15_000,
      "4001 closes counted",
    );
    assert.ok(_value(text, "process_resident_memory_bytes") > 0, "RSS");
    assert.ok(_value(text, "process_virtual_memory_bytes") > 0, "virtual memory");
    assert.ok(_value(text, "process_open_fds") > 0, "open fds");
    assert.ok(_value(text, "process_max_fds") >= _value(text, "process_open_fds"), "max fds");
    assert.ok(_value(text, "process_cpu_seconds_total") > 0, "CPU");
    const start = _value(text, "process_start_time_seconds");
    assert.ok(start > 0 && start <= Date.now() / 1000, `start time ${start}`);
    assert.ok(_value(text, "deno_heap_size_used_bytes") > 0, "heap");
    assert.match(text, /^deno_version_info\{deno="[\d.]+",v8="[^"]+",typescript="[^"]+"\} 1$/m);
    assert.doesNotMatch(text, /nodejs_/, "no Node collectors");
    const failures = (reason: string) =>
      _value(text, `natsgate_auth_failures_total{reason="${reason}"}`);
    assert.equal(failures("bad_signature"), 1, "the forged token");
    assert.equal(failures("expired"), 1, "the expired token");
    assert.equal(failures("missing_token"), 1, "the ping before auth");
    assert.equal(failures("issuer_audience"), 0, "listed at 0");
    assert.equal(_value(text, "natsgate_connections_total"), 3, "the 401 never became one");
    assert.ok(_value(text, "natsgate_messages_out_total") >= 20);
    assert.equal(_value(text, 'natsgate_cmd_duration_seconds_count{outcome="timeout"}'), 1);
    assert.equal(_value(text, 'natsgate_denials_total{op="pub"}'), 1);

    // The log: connect with remote at info; auth failures with their reason.
    await good.close();
    const log = await gw.waitFor(/INFO +session disconnect [^\n]*/);
    assert.match(log[0], /user=u /);
    assert.match(log[0], /remote=127\.0\.0\.1:\d+/);
    assert.match(log[0], /code=1005 /);
    assert.match(log[0], /duration_ms=\d+/);
    assert.match(gw.stderr, /INFO +session connect [^\n]*user=u [^\n]*remote=127\.0\.0\.1:\d+/);
    assert.match(gw.stderr, /auth failed [^\n]*reason=expired/);
    assert.match(gw.stderr, /auth failed [^\n]*reason=missing_token/);
    assert.match(gw.stderr, /upgrade refused: bad token [^\n]*reason=bad_signature/);
    assert.match(gw.stderr, /INFO +op failed [^\n]*op=cmd target=svc\.silent code=timeout/);
    assert.match(gw.stderr, /INFO +op failed [^\n]*op=kv_sub target=gone code=not_found/);
    const denials = gw.stderr.split("\n").filter((l) => l.includes("elsewhere.x"));
    assert.equal(denials.length, 1, `one line per denial: ${denials.join("\n")}`);
    assert.match(denials[0], /DEBUG session denied [^\n]*reason=/);
  } finally {
    await gw.stop();
  }
});

Deno.test("readyz: answers 503 with a reason while NATS is frozen, 200 again after", async () => {
  await using stack = await Stack.start();
  const base = _httpBase(stack.gateway.wsUrl);
  const readyz = async () => {
    const r = await fetch(`${base}/readyz`);
    return { status: r.status, body: await r.text() };
  };
  assert.deepEqual(await readyz(), { status: 200, body: "ready\n" });
  Deno.kill(stack.nats.pid, "SIGSTOP");
  try {
    // Every answer arrives although NATS answers nothing: first the cached "ready", then 503.
    const frozen = await waitFor(
      async () => {
        const r = await readyz();
        return r.status === 503 ? r : undefined;
      },
      15_000,
      "503 while NATS is frozen",
    );
    assert.match(frozen.body, /^not ready: auth bucket read not answered within 1000 ms\n$/);
  } finally {
    Deno.kill(stack.nats.pid, "SIGCONT");
  }
  await waitFor(async () => (await readyz()).status === 200, 15_000, "ready again");
});

Deno.test("serve: a busy listen port is one clear error, exit 1, no NATS warnings before it", async () => {
  await using stack = await Stack.start();
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (busy.addr as Deno.NetAddr).port;
    const r = await NatsgateProcess.run(
      _serveArgs(stack.nats.url, `127.0.0.1:${port}`),
      {},
      { limitMs: 60_000 },
    );
    assert.equal(r.code, 1, r.stderr);
    const out = r.stdout + r.stderr;
    assert.match(
      out,
      new RegExp(`natsgate: cannot listen on 127\\.0\\.0\\.1:${port}: address in use`),
    );
    assert.doesNotMatch(out, / (WARN|ERROR) /, "no warnings or errors before the one error");
    assert.doesNotMatch(out, /NATS connection closed|watch lost/);
  } finally {
    busy.close();
  }
});
