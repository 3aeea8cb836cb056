/** `deno task bench`: natsgate against nats-server's own WebSocket listener, same run, same load.
 * Prints a table of absolute figures and gateway/native ratios and writes docs/benchmarks.md.
 * @module */

import { connect, type NatsConnection, wsconnect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { NatsServer } from "../src/nats_server.ts";
import { mintToken } from "../src/token.ts";
import { userKey } from "../src/user_key.ts";
import type { ClientsSpec } from "./_clients.ts";
import { freePort, lines, rssKb } from "./_proc.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SECRET = "bench-secret-0123456789abcdef0123456789abcdef";
const QUICK = Deno.args.includes("--quick");
const NO_WRITE = Deno.args.includes("--no-write");
const ONLY = Deno.args.find((a) => a.startsWith("--only="))?.slice(7).split(",");
/** Extra V8 flags for the gateway process, to try memory/speed trade-offs (default: none). */
const GW_V8_FLAGS = Deno.args.find((a) => a.startsWith("--gateway-v8-flags="))?.slice(19) ?? "";
const PAYLOAD_PAD = "x".repeat(70);

function _payload(extra: Record<string, unknown> = {}): string {
  // ~100 bytes of JSON, as in the issue's reference figures.
  return JSON.stringify({ pad: PAYLOAD_PAD, seq: 0, ...extra }).slice(0, 100);
}

function _pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** The client process, driven by JSON lines. */
class ClientProc {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;

  constructor() {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--max-old-space-size=8192", `${ROOT}bench/_clients.ts`],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = lines(this.#child.stdout)[Symbol.asyncIterator]();
  }

  // deno-lint-ignore no-explicit-any
  async cmd(c: Record<string, unknown>): Promise<any> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(c) + "\n"));
    const r = await this.#lines.next();
    if (r.done) throw new Error("client process ended");
    return JSON.parse(r.value);
  }

  async close(): Promise<void> {
    await this.cmd({ op: "close" }).catch(() => {});
    await this.#child.status;
  }
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

type Row = {
  scenario: string;
  metric: string;
  native: number;
  gateway: number;
  unit: string;
  better: "higher" | "lower";
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
      "--max-pending-bytes",
      String(16 * 1024 * 1024),
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

    const table = _table(rows);
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

function _fmt(n: number, unit: string): string {
  if (Number.isNaN(n)) return "—";
  if (unit === "ms" || unit === "KB") return n.toFixed(2);
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
    const ratio = Number.isNaN(r.native) ? "—" : `${(r.gateway / r.native).toFixed(2)}×`;
    out.push(
      `| ${r.scenario} | ${r.metric} (${r.unit}, ${r.better} is better) | ${
        _fmt(r.native, r.unit)
      } | ${_fmt(r.gateway, r.unit)} | ${ratio} |`,
    );
  }
  return out.join("\n");
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

Setup, identical for both columns: one nats-server with its WebSocket listener enabled; the
gateway as a separate \`natsgate serve\` process on the same nats-server; all WebSocket clients in
one separate Deno process (\`bench/_clients.ts\`): native clients speak NATS over WebSocket, gateway
clients speak protocol v1; one publisher over TCP. ~100-byte JSON payloads. Throughput runs are
closed-loop (a bounded number of messages in flight per subscriber), so they measure sustained
delivery, not buffer growth. Latency is publish-to-receive on the same machine's clock.

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
