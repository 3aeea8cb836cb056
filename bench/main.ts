/** `deno task bench`: natsgate against nats-server's own WebSocket listener, same run, same load.
 * Prints a table of absolute figures and gateway/native ratios and writes docs/benchmarks.md.
 * @module */

import { connect, type NatsConnection, wsconnect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { NatsServer } from "../src/nats/launcher.ts";
import { mintToken } from "../src/auth/mint.ts";
import { userKey } from "../src/auth/user_key.ts";
import type { ClientsSpec } from "./_clients.ts";
import { ClientProc, PublisherProc } from "./_line_proc.ts";
import { burst, OpenLoopClients, type OpenLoopTarget, rateSearch } from "./_open_loop.ts";
import { freePort, lines, rssKb } from "./_proc.ts";
import { roleRevocation } from "./_role_revocation.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SECRET = "bench-secret-0123456789abcdef0123456789abcdef";
const QUICK = Deno.args.includes("--quick");
const NO_WRITE = Deno.args.includes("--no-write");
/** Scenario keys: openloop (= burst + rate), fanout, subjects, latency, conns, revocation,
 * jetstream. */
const ONLY = Deno.args.find((a) => a.startsWith("--only="))?.slice(7).split(",");
/** Client counts of the open-loop scenarios (default 1,100,1000). */
const OPEN_CLIENTS = (Deno.args.find((a) => a.startsWith("--clients="))?.slice(10) ?? "1,100,1000")
  .split(",").map(Number);
/** Extra arguments for `natsgate serve`, repeatable (`--gateway-arg=--write-deadline=5s`). */
const GW_ARGS = Deno.args.filter((a) => a.startsWith("--gateway-arg=")).map((a) => a.slice(14));
/** Extra V8 flags for the gateway process, to try memory/speed trade-offs (default: none). */
const GW_V8_FLAGS = Deno.args.find((a) => a.startsWith("--gateway-v8-flags="))?.slice(19) ?? "";
/** Extra `deno run` flags for the gateway process, repeatable (`--gateway-deno-arg=--cpu-prof`). */
const GW_DENO_ARGS = Deno.args.filter((a) => a.startsWith("--gateway-deno-arg=")).map((a) =>
  a.slice(19)
);
const PAYLOAD_PAD = "x".repeat(70);

function _payload(extra: Record<string, unknown> = {}): string {
  // ~100 bytes of JSON, as in the issue's reference figures.
  return JSON.stringify({ pad: PAYLOAD_PAD, seq: 0, ...extra }).slice(0, 100);
}

function _pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

interface Target {
  name: "native" | "gateway";
  url: string;
  pid: number;
}

/**
 * Publishes `msgs` messages round-robin over `subjects`, keeping at most `window` messages per
 * subscriber in flight (closed loop), and returns the delivered rate seen by the clients.
 */
async function _pacedFanout(
  nc: NatsConnection,
  proc: ClientProc,
  subjects: string[],
  perSubjectReceivers: number,
  msgs: number,
  window: number,
): Promise<{ rate: number; received: number; expected: number }> {
  await proc.cmd({ op: "reset" });
  const body = new TextEncoder().encode(_payload());
  const expected = msgs * perSubjectReceivers;
  const chunk = Math.max(1, Math.floor(window / 4));
  let sent = 0;
  let received = 0;
  let stalled = 0;
  while (sent < msgs) {
    const n = Math.min(chunk, msgs - sent);
    for (let i = 0; i < n; i++) nc.publish(subjects[(sent + i) % subjects.length], body);
    sent += n;
    await nc.flush();
    while (true) {
      const r = await proc.cmd({ op: "report" });
      if (r.received === received) stalled++;
      else stalled = 0;
      received = r.received;
      if ((sent - received / perSubjectReceivers) <= window || stalled > 2000) break;
      await new Promise((r) => setTimeout(r, 1));
    }
    if (stalled > 2000) break;
  }
  const end = Date.now() + 10_000;
  let r = await proc.cmd({ op: "report" });
  while (r.received < expected && Date.now() < end) {
    await new Promise((res) => setTimeout(res, 20));
    const prev = r.received;
    r = await proc.cmd({ op: "report" });
    if (r.received === prev && Date.now() > end - 8000) break;
  }
  const secs = (r.lastAt - r.firstAt) / 1000;
  return { rate: r.received / Math.max(secs, 1e-6), received: r.received, expected };
}

async function _latency(
  nc: NatsConnection,
  proc: ClientProc,
  subject: string,
  rate: number,
  seconds: number,
): Promise<{ p50: number; p99: number; p999: number; samples: number }> {
  await proc.cmd({ op: "reset" });
  const total = rate * seconds;
  const tickMs = 5;
  const perTick = rate * tickMs / 1000;
  let sent = 0;
  const start = performance.now();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / tickMs + 1) * perTick));
    while (sent < due) {
      nc.publish(
        subject,
        JSON.stringify({ t: performance.timeOrigin + performance.now(), seq: sent }),
      );
      sent++;
    }
    await new Promise((r) => setTimeout(r, tickMs));
  }
  await nc.flush();
  await new Promise((r) => setTimeout(r, 500));
  const r = await proc.cmd({ op: "report", latencies: true });
  const lat = (r.latencies as number[]).sort((a, b) => a - b);
  return { p50: _pct(lat, 0.5), p99: _pct(lat, 0.99), p999: _pct(lat, 0.999), samples: lat.length };
}

/** Deliveries per burst round (all clients together); M = this / clients. */
const BURST_DELIVERIES = Number(
  Deno.args.find((a) => a.startsWith("--burst-deliveries="))?.slice(19) ??
    (QUICK ? 40_000 : 400_000),
);

function _cores(c: { nats: number; gateway: number; client: number }): string {
  const f = (n: number) => Number.isNaN(n) ? "—" : n.toFixed(2);
  return `nats-server ${f(c.nats)}, natsgate ${f(c.gateway)}, client process ${f(c.client)}`;
}

/** Sustained-rate rounds: length, grace for the last delivery, most rounds per search. */
const OPEN_ROUND_MS = QUICK ? 1000 : 3000;
const OPEN_GRACE_MS = Math.max(250, OPEN_ROUND_MS / 10);
const OPEN_STEPS = QUICK ? 5 : 9;

/** Open-loop scenarios: per client count, burst then rate search, native and gateway. */
async function _openLoop(
  targets: OpenLoopTarget[],
  natsUrl: string,
  which: { burst: boolean; rate: boolean },
  rows: Row[],
  notes: string[],
): Promise<void> {
  const pub = new PublisherProc(natsUrl);
  await pub.next(); // ready
  try {
    for (const n of OPEN_CLIENTS) {
      const label = `${n} client${n > 1 ? "s" : ""}`;
      if (which.burst) {
        const msgs = Math.max(20, Math.round(BURST_DELIVERIES / n));
        const res = await _perTarget(
          targets,
          n,
          "open.burst",
          (c) => burst(c, pub, "open.burst", msgs),
        );
        for (const t of targets) {
          const r = res[t.name];
          console.error(
            `open-loop burst ${label} ${t.name}: ${r.rate.toFixed(0)} msg/s, ${
              r.ms.toFixed(0)
            } ms, cut ${r.cut}, missing ${r.missing}, seq errors ${r.seqErrors}, cpu µs/msg ` +
              `nats ${r.cpuUs.nats.toFixed(2)} gw ${r.cpuUs.gateway.toFixed(2)} client ${
                r.cpuUs.client.toFixed(2)
              }`,
          );
          notes.push(
            `open-loop burst, ${label}, ${t.name}: ${r.ms.toFixed(0)} ms; cores busy ${
              _cores(r.cores)
            }${r.ok ? "" : `; ${r.why}`}`,
          );
        }
        const { native: a, gateway: b } = res;
        const sc = `open-loop burst, ${label}, ${msgs} msgs`;
        rows.push(
          {
            group: "open",
            scenario: sc,
            metric: "delivered msg/s",
            native: a.rate,
            gateway: b.rate,
            unit: "msg/s",
            better: "higher",
          },
          {
            group: "open",
            scenario: sc,
            metric: "clients cut / msgs missing",
            native: `${a.cut} / ${a.missing}`,
            gateway: `${b.cut} / ${b.missing}`,
            unit: "",
            better: "",
          },
        );
        const cs = `burst, ${label}`;
        for (
          const [metric, get] of [
            ["CPU per msg, nats-server", (r: typeof a) => r.cpuUs.nats],
            ["CPU per msg, natsgate process", (r: typeof a) => r.cpuUs.gateway],
            ["CPU per msg, client process (decode)", (r: typeof a) => r.cpuUs.client],
          ] as const
        ) {
          rows.push({
            group: "cpu",
            scenario: cs,
            metric,
            native: get(a),
            gateway: get(b),
            unit: "µs",
            better: "lower",
          });
        }
        rows.push(
          {
            group: "cpu",
            scenario: cs,
            metric: "WebSocket frames per msg",
            native: a.framesPerMsg,
            gateway: b.framesPerMsg,
            unit: "frames",
            better: "lower",
          },
          {
            group: "cpu",
            scenario: cs,
            metric: "frame bytes per msg",
            native: a.bytesPerMsg,
            gateway: b.bytesPerMsg,
            unit: "B",
            better: "lower",
          },
        );
      }
      if (which.rate) {
        const opts = {
          start: Math.max(2, Math.round(25_000 / n)),
          roundMs: OPEN_ROUND_MS,
          graceMs: OPEN_GRACE_MS,
          maxSteps: OPEN_STEPS,
        };
        const res = await _perTarget(
          targets,
          n,
          "open.rate",
          (c) => rateSearch(c, pub, "open.rate", opts),
        );
        for (const t of targets) {
          const r = res[t.name];
          console.error(
            `open-loop rate ${label} ${t.name}: ${r.rate} msg/s offered (${
              r.steps.map((s) => `${s.rate}${s.ok ? "✓" : "✗"}`).join(" ")
            }); first failure at ${r.failedAt}: ${r.failedWhy}`,
          );
          notes.push(
            `open-loop rate, ${label}, ${t.name}: steps ${
              r.steps.map((s) => `${s.rate}${s.ok ? " ok" : " fail"}`).join(", ")
            }${Number.isFinite(r.failedAt) ? `; at ${r.failedAt} msg/s: ${r.failedWhy}` : ""}${
              r.best ? `; cores busy at ${r.rate} msg/s: ${_cores(r.best.cores)}` : ""
            }`,
          );
        }
        const { native: a, gateway: b } = res;
        const sc = `open-loop sustained, ${label}`;
        rows.push(
          {
            group: "open",
            scenario: sc,
            metric: "max offered msg/s, 0 loss, 0 cut",
            native: a.rate,
            gateway: b.rate,
            unit: "msg/s",
            better: "higher",
          },
          {
            group: "open",
            scenario: sc,
            metric: "delivered msg/s at that rate",
            native: a.rate * n,
            gateway: b.rate * n,
            unit: "msg/s",
            better: "higher",
          },
        );
        const cs = `sustained rate, ${label}`;
        const cpu = (r: typeof a, k: "nats" | "gateway" | "client") => r.best?.cpuUs[k] ?? NaN;
        for (
          const [metric, k] of [
            ["CPU per msg, nats-server", "nats"],
            ["CPU per msg, natsgate process", "gateway"],
            ["CPU per msg, client process (decode)", "client"],
          ] as const
        ) {
          rows.push({
            group: "cpu",
            scenario: cs,
            metric,
            native: cpu(a, k),
            gateway: cpu(b, k),
            unit: "µs",
            better: "lower",
          });
        }
        rows.push({
          group: "cpu",
          scenario: cs,
          metric: "WebSocket frames per msg",
          native: a.best?.framesPerMsg ?? NaN,
          gateway: b.best?.framesPerMsg ?? NaN,
          unit: "frames",
          better: "lower",
        });
      }
    }
  } finally {
    await pub.close();
  }
}

type Row = {
  /** Which table: open loop (the headline), closed loop and the rest, CPU per message. */
  group?: "open" | "cpu";
  scenario: string;
  metric: string;
  native: number | string;
  gateway: number | string;
  unit: string;
  better: "higher" | "lower" | "";
};

async function main(): Promise<void> {
  const rows: Row[] = [];
  const notes: string[] = [];
  const nats = await NatsServer.start({ websocket: true });
  const nc = await connect({ servers: nats.url });
  const kv = await new Kvm(nc).create("auth", { history: 10 });
  await kv.put(userKey("bench"), JSON.stringify({ subjects: [">"], streams: { BENCH: [">"] } }));
  const gwPort = freePort();
  const gwProc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(GW_V8_FLAGS ? [`--v8-flags=${GW_V8_FLAGS}`] : []),
      ...GW_DENO_ARGS,
      `${ROOT}main.ts`,
      "serve",
      "--nats",
      nats.url,
      "--jwt-secret",
      SECRET,
      "--listen",
      `127.0.0.1:${gwPort}`,
      "--log-level",
      "warn",
      "--max-conns-per-user",
      "100000",
      ..._gatewayLimitArgs(),
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  try {
    const token = await mintToken({ secret: SECRET, user: "bench", ttlSeconds: 86400 });
    const gwUrl = `ws://127.0.0.1:${gwPort}/ws?token=${token}`;
    for (let i = 0; i < 200; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${gwPort}/readyz`);
        await r.body?.cancel();
        if (r.ok) break;
      } catch {
        // not yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const targets: Target[] = [
      { name: "native", url: nats.wsUrl!, pid: nats.pid },
      { name: "gateway", url: gwUrl, pid: gwProc.pid },
    ];
    const want = (s: string) => !ONLY || ONLY.includes(s);
    const scale = QUICK ? 0.1 : 1;

    // 0. Open-loop fan-out (the headline): burst and sustained rate, 1/100/1000 clients.
    if (want("openloop") || want("burst") || want("rate")) {
      await _openLoop(
        [
          { name: "native", url: nats.wsUrl!, natsPid: nats.pid },
          { name: "gateway", url: gwUrl, natsPid: nats.pid, gatewayPid: gwProc.pid },
        ],
        nats.url,
        { burst: want("openloop") || want("burst"), rate: want("openloop") || want("rate") },
        rows,
        notes,
      );
    }

    // 1. Fan-out on one subject.
    if (want("fanout")) {
      for (const [clients, msgs] of [[1, 200_000], [100, 20_000], [1000, 2_000]] as const) {
        const res: Record<string, number> = {};
        for (const t of targets) {
          const proc = new ClientProc();
          const spec: ClientsSpec = {
            mode: t.name,
            url: t.url,
            subjects: ["fan.out"],
            count: clients,
            latency: false,
          };
          await proc.cmd({ op: "open", spec });
          const r = await _pacedFanout(
            nc,
            proc,
            ["fan.out"],
            clients,
            Math.ceil(msgs * scale),
            Math.max(64, Math.floor(20_000 / clients)),
          );
          if (r.received < r.expected) {
            notes.push(`fan-out ${clients} ${t.name}: ${r.received}/${r.expected} delivered`);
          }
          res[t.name] = r.rate;
          await proc.close();
        }
        rows.push({
          scenario: `fan-out, ${clients} client${clients > 1 ? "s" : ""}`,
          metric: "msg/s delivered",
          native: res.native,
          gateway: res.gateway,
          unit: "msg/s",
          better: "higher",
        });
        console.error(
          `fan-out ${clients}: native ${res.native.toFixed(0)} gateway ${res.gateway.toFixed(0)}`,
        );
      }
    }

    // 2. Many subjects: each client its own subject, publisher round-robin.
    if (want("subjects")) {
      const clients = 1000;
      const subjects = Array.from({ length: clients }, (_, i) => `own.${i}`);
      const res: Record<string, number> = {};
      for (const t of targets) {
        const proc = new ClientProc();
        await proc.cmd({
          op: "open",
          spec: { mode: t.name, url: t.url, subjects, count: clients, latency: false },
        });
        const r = await _pacedFanout(nc, proc, subjects, 1, Math.ceil(200_000 * scale), 5000);
        if (r.received < r.expected) {
          notes.push(`many subjects ${t.name}: ${r.received}/${r.expected} delivered`);
        }
        res[t.name] = r.rate;
        await proc.close();
      }
      rows.push({
        scenario: "1000 clients, own subject each",
        metric: "msg/s delivered",
        native: res.native,
        gateway: res.gateway,
        unit: "msg/s",
        better: "higher",
      });
      console.error(
        `many subjects: native ${res.native.toFixed(0)} gateway ${res.gateway.toFixed(0)}`,
      );
    }

    // 3. Latency to 100 clients at 1k and 10k msg/s.
    if (want("latency")) {
      for (const rate of [1000, 10_000]) {
        const res: Record<string, { p50: number; p99: number; p999: number }> = {};
        for (const t of targets) {
          const proc = new ClientProc();
          await proc.cmd({
            op: "open",
            spec: { mode: t.name, url: t.url, subjects: ["lat.x"], count: 100, latency: true },
          });
          res[t.name] = await _latency(nc, proc, "lat.x", rate, QUICK ? 1 : 5);
          await proc.close();
        }
        for (const p of ["p50", "p99", "p999"] as const) {
          rows.push({
            scenario: `latency, 100 clients, ${rate / 1000}k msg/s`,
            metric: p,
            native: res.native[p],
            gateway: res.gateway[p],
            unit: "ms",
            better: "lower",
          });
        }
        console.error(
          `latency ${rate}: native p99 ${res.native.p99.toFixed(2)} gateway p99 ${
            res.gateway.p99.toFixed(2)
          }`,
        );
      }
    }

    // 4. Idle authenticated connections with one subscription each. A bare Deno.serve WebSocket
    // server holding the same sockets shows the runtime's own floor per connection.
    if (want("conns")) {
      const clients = QUICK ? 1000 : 10_000;
      const res: Record<string, { rate: number; kbPer: number }> = {};
      const bare = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-net", `${ROOT}bench/_bare_ws.ts`],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const barePort = Number((await lines(bare.stdout)[Symbol.asyncIterator]().next()).value);
      const bareTarget = {
        name: "deno-bare" as const,
        url: `ws://127.0.0.1:${barePort}/ws`,
        pid: bare.pid,
      };
      for (const t of [...targets, bareTarget]) {
        const before = await rssKb(t.pid);
        const proc = new ClientProc();
        const subjects = Array.from({ length: clients }, (_, i) => `idle.${i}`);
        const r = await proc.cmd({
          op: "open",
          spec: {
            mode: t.name === "native" ? "native" : "gateway",
            url: t.url,
            subjects,
            count: clients,
            latency: false,
            concurrency: 100,
          },
        });
        await new Promise((r) => setTimeout(r, 1000));
        const after = await rssKb(t.pid);
        res[t.name] = { rate: r.count / (r.ms / 1000), kbPer: (after - before) / clients };
        await proc.close();
        await new Promise((r) => setTimeout(r, 1000));
      }
      rows.push({
        scenario: `${clients} idle connections, 1 sub each`,
        metric: "connect rate",
        native: res.native.rate,
        gateway: res.gateway.rate,
        unit: "conn/s",
        better: "higher",
      });
      rows.push({
        scenario: `${clients} idle connections, 1 sub each`,
        metric: "RSS per connection",
        native: res.native.kbPer,
        gateway: res.gateway.kbPer,
        unit: "KB",
        better: "lower",
      });
      bare.kill();
      await bare.status;
      notes.push(
        `A bare \`Deno.serve\` WebSocket server holding the same ${clients} idle sockets ` +
          `(bench/_bare_ws.ts, no NATS, no sessions) took ${
            res["deno-bare"].kbPer.toFixed(1)
          } KB ` +
          `of RSS per connection in this run: the runtime's own cost of an upgraded WebSocket, to read ` +
          `beside the gateway's figure.`,
      );
      console.error(
        `conns: native ${res.native.kbPer.toFixed(1)} KB, gateway ${
          res.gateway.kbPer.toFixed(1)
        } KB, deno-bare ${res["deno-bare"].kbPer.toFixed(1)} KB`,
      );
    }

    // 5. Revocation latency (gateway only: nats-server has no live per-user capabilities).
    if (want("revocation")) {
      const ws = new WebSocket(
        `ws://127.0.0.1:${gwPort}/ws?token=${await mintToken({
          secret: SECRET,
          user: "revoke-me",
        })}`,
      );
      const updates: Array<() => void> = [];
      ws.onmessage = (e) => {
        for (const line of String(e.data).split("\n")) {
          if (JSON.parse(line).op === "cap_update") updates.shift()?.();
        }
      };
      await new Promise((r) => ws.onopen = r);
      await new Promise((r) => setTimeout(r, 200));
      const lat: number[] = [];
      for (let i = 0; i < (QUICK ? 50 : 300); i++) {
        const got = new Promise<void>((r) => updates.push(r));
        const t0 = performance.now();
        await kv.put(userKey("revoke-me"), JSON.stringify({ subjects: [i % 2 ? "a.>" : "b.>"] }));
        await got;
        lat.push(performance.now() - t0);
      }
      ws.close();
      lat.sort((a, b) => a - b);
      rows.push({
        scenario: "revocation (KV write → cap_update)",
        metric: "p50",
        native: NaN,
        gateway: _pct(lat, 0.5),
        unit: "ms",
        better: "lower",
      });
      rows.push({
        scenario: "revocation (KV write → cap_update)",
        metric: "p99",
        native: NaN,
        gateway: _pct(lat, 0.99),
        unit: "ms",
        better: "lower",
      });
      const role = await roleRevocation(kv, {
        url: `ws://127.0.0.1:${gwPort}/ws`,
        secret: SECRET,
        role: BENCH_ROLE,
        sessions: QUICK ? 1000 : 10_000,
      });
      notes.push(role.note);
      const scenario = `role edit → cap_update, ${role.sessions} sessions sharing the role`;
      for (const [metric, v] of [["p50", role.p50], ["p99", role.p99]] as const) {
        rows.push({ scenario, metric, native: NaN, gateway: v, unit: "ms", better: "lower" });
      }
    }

    // 6. JetStream replay of stored messages to one client.
    if (want("jetstream")) {
      const count = Math.ceil(100_000 * scale);
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "BENCH", subjects: ["bench.js.>"] });
      const js = jetstream(nc);
      const body = _payload();
      for (let i = 0; i < count; i += 1000) {
        await Promise.all(
          Array.from({ length: Math.min(1000, count - i) }, () => js.publish("bench.js.x", body)),
        );
      }
      // Native: nats.js over nats-server's WebSocket listener with an ordered consumer.
      const wnc = await wsconnect({ servers: nats.wsUrl! });
      const c = await jetstream(wnc).consumers.get("BENCH", { deliver_policy: "all" as never });
      let n = 0;
      const t0 = performance.now();
      const msgs = await c.consume({ max_messages: 1000 });
      for await (const _m of msgs) {
        if (++n >= count) break;
      }
      const nativeRate = count / ((performance.now() - t0) / 1000);
      await wnc.close();
      // Gateway: js_sub deliver all, batch 1000.
      const gws = new WebSocket(gwUrl);
      let got = 0;
      let t1 = 0;
      const done = new Promise<void>((resolve) => {
        gws.onmessage = (e) => {
          const text = String(e.data);
          if (t1 === 0) t1 = performance.now();
          for (let i = text.indexOf('"op":"msg"'); i >= 0; i = text.indexOf('"op":"msg"', i + 1)) {
            got++;
          }
          if (got >= count) resolve();
        };
      });
      await new Promise((r) => gws.onopen = r);
      const t2 = performance.now();
      gws.send(
        JSON.stringify({ op: "js_sub", target: "BENCH", data: { deliver: "all", batch: 1000 } }),
      );
      await Promise.race([done, new Promise((r) => setTimeout(r, 60_000))]);
      const gwRate = got / ((performance.now() - t2) / 1000);
      if (got < count) notes.push(`jetstream gateway: ${got}/${count} delivered`);
      gws.close();
      rows.push({
        scenario: `JetStream replay, ${count} msgs, 1 client`,
        metric: "msg/s",
        native: nativeRate,
        gateway: gwRate,
        unit: "msg/s",
        better: "higher",
      });
      console.error(`jetstream: native ${nativeRate.toFixed(0)} gateway ${gwRate.toFixed(0)}`);
    }

    // 7. Inbound abuse, last (it leaves 127.0.0.1 penalised for a while): another client's ping
    // round trip while one client floods frames of tiny invalid lines and keeps reconnecting.
    if (want("flood")) {
      const res = await _floodScenario(gwUrl, QUICK ? 100 : 400);
      for (const p of ["p50", "p99"] as const) {
        rows.push({
          scenario: "ping round trip of one client while another floods junk lines",
          metric: `${p}, quiet → under flood`,
          native: res.quiet[p],
          gateway: res.flood[p],
          unit: "ms",
          better: "lower",
        });
      }
      notes.push(
        `flood: the attacker sent ${res.frames} frames of 400 invalid lines (the most one frame may ` +
          `carry) over ${res.connections} connection(s), was closed with ${
            res.codes.join(", ")
          }, ` +
          `and ${res.refused} reconnect attempts were refused (429 penalty); the "native" column of ` +
          `the flood rows is the same gateway client's round trip before the flood.`,
      );
      console.error(
        `flood: quiet p99 ${res.quiet.p99.toFixed(2)} flood p99 ${res.flood.p99.toFixed(2)}`,
      );
    }

    notes.push(
      `load average (1, 5, 15 min) before the run: ${LOAD_BEFORE}; after: ${await _loadavg()}`,
    );
    const table = _tables(rows);
    console.log(table);
    if (notes.length) console.log("notes:\n" + notes.map((n) => `- ${n}`).join("\n"));
    if (!NO_WRITE && !QUICK && !ONLY) await _writeDoc(table, notes, nats);
  } finally {
    try {
      gwProc.kill("SIGINT");
    } catch {
      // gone
    }
    await gwProc.status;
    await nc.close();
    await nats.stop();
  }
}

function _fmt(n: number | string, unit: string): string {
  if (typeof n === "string") return n;
  if (Number.isNaN(n)) return "—";
  if (unit === "ms" || unit === "KB" || unit === "µs") return n.toFixed(2);
  if (unit === "frames") return n.toFixed(3);
  if (unit === "B") return n.toFixed(1);
  return n >= 1e6
    ? `${(n / 1e6).toFixed(2)} M`
    : n >= 1e3
    ? `${(n / 1e3).toFixed(1)} k`
    : n.toFixed(0);
}

function _table(rows: Row[]): string {
  const out = [
    "| scenario | metric | native nats-server WS | natsgate | gateway / native |",
    "|---|---|---:|---:|---:|",
  ];
  for (const r of rows) {
    const ratio = typeof r.native !== "number" || typeof r.gateway !== "number" ||
        Number.isNaN(r.native) || Number.isNaN(r.gateway) || r.native === 0
      ? "—"
      : `${(r.gateway / r.native).toFixed(2)}×`;
    const metric = r.unit ? `${r.metric} (${r.unit}, ${r.better} is better)` : r.metric;
    out.push(
      `| ${r.scenario} | ${metric} | ${_fmt(r.native, r.unit)} | ${
        _fmt(r.gateway, r.unit)
      } | ${ratio} |`,
    );
  }
  return out.join("\n");
}

/** The three tables: open loop (headline), closed loop and the rest, CPU per message. */
function _tables(rows: Row[]): string {
  const parts: string[] = [];
  const open = rows.filter((r) => r.group === "open");
  const rest = rows.filter((r) => r.group === undefined);
  const cpu = rows.filter((r) => r.group === "cpu");
  if (open.length) parts.push(`### Open loop: what users feel\n\n${_table(open)}`);
  if (rest.length) {
    parts.push(`### Closed loop, latency, connections, revocation, JetStream\n\n${_table(rest)}`);
  }
  if (cpu.length) {
    parts.push(
      `### CPU per delivered message, by process (open loop)\n\n${_table(cpu)}`,
    );
  }
  return parts.join("\n\n");
}

async function _loadavg(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(", ");
}

/** What else loaded the machine before the run, to read the figures by. */
const LOAD_BEFORE = await _loadavg();

/** The command line of this run, as written into the document. */
function _command(): string {
  return `deno task bench${Deno.args.length ? " " + Deno.args.join(" ") : ""}`;
}

/** The role every gateway session of the bench holds (`--default-role`); it starts absent. */
const BENCH_ROLE = "rolebench";

/**
 * The gateway's limit flags of this run: the protocol's defaults, except the per-address caps,
 * since every bench client comes from 127.0.0.1 (a real deployment sees many addresses).
 */
function _gatewayLimitArgs(): string[] {
  return [
    "--max-conns-per-ip",
    "1000000",
    "--upgrade-rate-per-ip",
    "1000000",
    "--default-role",
    BENCH_ROLE,
    ...GW_ARGS,
  ];
}

/** The gateway's limit flags of this run, as text. */
function _gatewayFlags(): string {
  return _gatewayLimitArgs().join(" ");
}

async function _writeDoc(table: string, notes: string[], nats: NatsServer): Promise<void> {
  const version = (await new Deno.Command(nats.binary, { args: ["--version"] }).output()).stdout;
  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ??
    "unknown";
  const generated = `<!-- bench:start: written by deno task bench; the rest is kept -->
Produced by \`deno task bench\` (\`deno run -A bench/main.ts\`) on ${
    new Date().toISOString().slice(0, 10)
  }.
Machine: ${navigator.hardwareConcurrency} cores (${cpu}), Deno ${Deno.version.deno},
${new TextDecoder().decode(version).trim()}.

Command: \`${_command()}\`.

Setup, identical for both columns: one nats-server with its WebSocket listener enabled; the
gateway as a separate \`natsgate serve\` process on the same nats-server (\`${_gatewayFlags()}\`);
all WebSocket clients in one separate Deno process (\`bench/_clients.ts\`): native clients speak
NATS over WebSocket, gateway clients speak protocol v1. ~100-byte JSON payloads.

How to read:

- **Open loop is what users feel.** A separate publisher process (\`bench/_publisher.ts\`, NATS
  over TCP) publishes without ever waiting for subscribers, as an application's publishers do.
  *Burst*: M messages as fast as it can (flush at the end); delivered msg/s = deliveries to all
  clients / time from the first publish until every client has all M; one warm-up round is
  discarded. *Sustained*: the publisher offers R msg/s for ${OPEN_ROUND_MS / 1000} s, paced by
  the clock; a round passes when no client was cut, none missed, repeated or reordered a message
  (every client checks its sequence numbers), and every client had every message within
  ${OPEN_GRACE_MS} ms of the last publish; doubling then bisection (at most ${OPEN_STEPS} rounds,
  down to a 10% bracket) finds the highest passing R. "clients cut": sockets the server closed
  (or that saw an error).
- **Closed loop** (the "fan-out" and "own subject" rows) keeps a bounded number of messages in
  flight per subscriber: sustained delivery without buffer growth. It rewards whichever side
  coalesces frames better and hides what a burst does to buffers; read it beside the open-loop
  rows, not instead of them.
- **CPU per delivered message** is each process's CPU time during the measured round (all
  threads, \`/proc/<pid>/task/*/schedstat\`) over the messages delivered in it. In the native
  column nats-server does all the server work; in the gateway column nats-server delivers one
  copy to the gateway and the gateway fans out. The client process decodes every message as an
  application would (gateway: \`JSON.parse\` of each envelope; native: the MSG header, then
  \`JSON.parse\` of the payload), so its figure is the client-side decode cost; WebSocket frames
  and frame bytes per message are beside it.
- All clients share one process. The notes give the cores each process kept busy per round: a
  client process near 1.0 means that row is bounded by the bench's own client process (one
  frame per message to 1000 sockets costs it more than real browsers, each with its own core,
  would pay), not by the server. The machine's load average is noted too.
- Latency is publish-to-receive on the same machine's clock.

${table}

${notes.length ? "Notes from the run:\n\n" + notes.map((n) => `- ${n}`).join("\n") + "\n" : ""}
<!-- bench:end -->`;
  // Only the generated block is replaced: the analysis and the soak section stay.
  const path = `${ROOT}docs/benchmarks.md`;
  const old = await Deno.readTextFile(path).catch(() => "# Benchmarks\n\n");
  const start = old.indexOf("<!-- bench:start");
  const end = old.indexOf("<!-- bench:end -->");
  const doc = start >= 0 && end > start
    ? old.slice(0, start) + generated + old.slice(end + "<!-- bench:end -->".length)
    : `# Benchmarks\n\n${generated}\n${old.replace(/^# Benchmarks\n+/, "")}`;
  await Deno.writeTextFile(path, doc);
  console.error("wrote docs/benchmarks.md");
}

if (import.meta.main) await main();

/** Round trips of `n` sequential pings on an open gateway WebSocket, sorted (ms). */
async function _pingRtts(ws: WebSocket, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const inbox = `p${i}`;
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const on = (e: MessageEvent) => {
        if (String(e.data).includes(`"inbox":"${inbox}"`)) {
          ws.removeEventListener("message", on);
          resolve();
        }
      };
      ws.addEventListener("message", on);
      ws.send(JSON.stringify({ op: "ping", inbox }));
    });
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

/**
 * One well-behaved client pings while an attacker sends frames of 400 invalid lines as fast as
 * it can, and reconnects whenever it is closed. Returns the victim's round trips quiet and under
 * flood, and what the attacker achieved.
 */
async function _floodScenario(url: string, pings: number): Promise<{
  quiet: { p50: number; p99: number };
  flood: { p50: number; p99: number };
  frames: number;
  connections: number;
  refused: number;
  codes: number[];
}> {
  const open = (u: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(u);
      ws.onopen = () => resolve(ws);
      ws.onerror = () => reject(new Error("refused"));
    });
  const victim = await open(url);
  const quiet = await _pingRtts(victim, pings);
  const junk = Array(400).fill("x").join("\n");
  let stop = false;
  let frames = 0, connections = 0, refused = 0;
  const codes: number[] = [];
  const attack = (async () => {
    while (!stop) {
      let ws: WebSocket;
      try {
        ws = await open(url);
      } catch {
        refused++;
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      connections++;
      const closed = new Promise<void>((r) =>
        ws.onclose = (e) => {
          codes.push(e.code);
          r();
        }
      );
      let open_ = true;
      closed.then(() => open_ = false);
      while (open_ && !stop) {
        // Keep a bounded amount in flight, so the attacker measures the gateway, not itself.
        if (ws.bufferedAmount < 1 << 20) {
          ws.send(junk);
          frames++;
        } else await new Promise((r) => setTimeout(r, 1));
        if (frames % 50 === 0) await new Promise((r) => setTimeout(r, 0));
      }
      if (!stop) await closed;
      else ws.close();
    }
  })();
  await new Promise((r) => setTimeout(r, 200)); // the flood is under way
  const flood = await _pingRtts(victim, pings);
  stop = true;
  await attack;
  victim.close();
  const pick = (a: number[]) => ({ p50: _pct(a, 0.5), p99: _pct(a, 0.99) });
  return {
    quiet: pick(quiet),
    flood: pick(flood),
    frames,
    connections,
    refused,
    codes: [...new Set(codes)],
  };
}

/** Runs `round` once per target with `n` fresh clients on `subject`, closing them after. */
async function _perTarget<R>(
  targets: OpenLoopTarget[],
  n: number,
  subject: string,
  round: (clients: OpenLoopClients) => Promise<R>,
): Promise<Record<string, R>> {
  const res: Record<string, R> = {};
  for (const t of targets) {
    const clients = new OpenLoopClients(t, n, subject);
    try {
      res[t.name] = await round(clients);
    } finally {
      await clients.close();
    }
  }
  return res;
}
