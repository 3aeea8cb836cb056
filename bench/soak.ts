/** `deno task soak`: thousands of churning WebSocket clients with mixed ops and live revocations.
 * Samples the gateway every 10 s and checks for leaks (NATS subscriptions, RSS) and errors.
 * @module */

import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { NatsServer } from "../src/nats/launcher.ts";
import { mintToken, parseDuration } from "../src/auth/mint.ts";
import { userKey } from "../src/auth/user_key.ts";
import type { SoakClientsReport, SoakClientsSpec } from "./_soak_clients.ts";
import { freePort, lines, rssKb } from "./_proc.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SECRET = "soak-secret-0123456789abcdef0123456789abcdef";
const BUCKET = "soakkv";
const STREAM = "SOAK";
const CMD_SUBJECT = "soak.cmd.echo";
const FIRE_SUBJECT = "soak.fire";
const HELP = `deno task soak [flags]

  --duration <d>        run time including the ramp (default 10m)
  --connections <n>     WebSocket connections to hold (default 5000)
  --write               put the results into the "Soak" section of docs/benchmarks.md
  --sample <d>          sampling interval (default 10s)
  --ramp <d>            time to open all connections (default: duration / 6, at most 60s)
  --churn <pct>         % of connections closed and reopened per minute (default 20)
  --op-interval <d>     mean time between ops of one connection (default 10s)
  --cap-interval <d>    capability shrink/re-grant period (default 10s)
  --cap-users <pct>     % of users shrunk per period (default 5)
  --conns-per-user <n>  connections per user id (default 8; the gateway allows 32)
  --kv-every <n>        every n-th connection holds a kv_sub (default 20)
  --js-every <n>        every n-th connection holds a js_sub (default 20)
  --kv-rate <n>         KV puts per second into the watched bucket (default 10)
  --js-rate <n>         stream publishes per second (default 10)
  --rev-rate <n>        core publishes per second to revocable subjects (default 20)
  --settle <d>          how long to wait for NATS to return to baseline at the end (default 60s)
  --stallers <n>        slow readers on a busy subject (default 24; 0: none): a third read
                        steadily, a third pause their reader at random and recover, a third stop
                        reading for good (must be cut with 4008)
  --fire-rate <n>       publishes per second to the busy subject (default 50)
  --fire-bytes <n>      payload bytes of those publishes (default 4096)
  --pause <d>           longest pause of a recovering slow reader (default 3s)
`;

// ---------- flags ----------

interface Flags {
  durationMs: number;
  connections: number;
  write: boolean;
  sampleMs: number;
  rampMs: number;
  churnPctPerMin: number;
  opIntervalMs: number;
  capIntervalMs: number;
  capUsersPct: number;
  connsPerUser: number;
  kvEvery: number;
  jsEvery: number;
  kvRate: number;
  jsRate: number;
  revRate: number;
  settleMs: number;
  stallers: number;
  fireRate: number;
  fireBytes: number;
  pauseMaxMs: number;
}

function _parseFlags(args: string[]): Flags {
  const raw = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help" || a === "-h") {
      console.log(HELP);
      Deno.exit(0);
    }
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}\n\n${HELP}`);
    const eq = a.indexOf("=");
    if (eq > 0) raw.set(a.slice(2, eq), a.slice(eq + 1));
    else if (a === "--write") raw.set("write", "true");
    else {
      if (i + 1 >= args.length) throw new Error(`${a} needs a value`);
      raw.set(a.slice(2), args[++i]);
    }
  }
  const known = new Set([
    "duration",
    "connections",
    "write",
    "sample",
    "ramp",
    "churn",
    "op-interval",
    "cap-interval",
    "cap-users",
    "conns-per-user",
    "kv-every",
    "js-every",
    "kv-rate",
    "js-rate",
    "rev-rate",
    "settle",
    "stallers",
    "fire-rate",
    "fire-bytes",
    "pause",
  ]);
  for (const k of raw.keys()) if (!known.has(k)) throw new Error(`unknown flag --${k}\n\n${HELP}`);
  const dur = (k: string, d: string) => parseDuration(raw.get(k) ?? d);
  const num = (k: string, d: number) => {
    const v = raw.has(k) ? Number(raw.get(k)) : d;
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${k} must be a non-negative number`);
    return v;
  };
  const durationMs = dur("duration", "10m");
  return {
    durationMs,
    connections: Math.floor(num("connections", 5000)),
    write: raw.get("write") === "true",
    sampleMs: dur("sample", "10s"),
    rampMs: raw.has("ramp") ? dur("ramp", "0") : Math.min(60_000, Math.round(durationMs / 6)),
    churnPctPerMin: num("churn", 20),
    opIntervalMs: Math.max(100, dur("op-interval", "10s")),
    capIntervalMs: Math.max(1000, dur("cap-interval", "10s")),
    capUsersPct: num("cap-users", 5),
    connsPerUser: Math.max(1, Math.floor(num("conns-per-user", 8))),
    kvEvery: Math.floor(num("kv-every", 20)),
    jsEvery: Math.floor(num("js-every", 20)),
    kvRate: num("kv-rate", 10),
    jsRate: num("js-rate", 10),
    revRate: num("rev-rate", 20),
    settleMs: dur("settle", "60s"),
    stallers: Math.floor(num("stallers", 24)),
    fireRate: num("fire-rate", 50),
    fireBytes: Math.floor(num("fire-bytes", 4096)),
    pauseMaxMs: dur("pause", "3s"),
  };
}

// ---------- small helpers ----------

const _sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** utime + stime of a process, in clock ticks (USER_HZ, 100 on Linux). */
async function _cpuTicks(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

async function _fdLimit(pid: number | "self"): Promise<{ soft: number; hard: number }> {
  const limits = await Deno.readTextFile(`/proc/${pid}/limits`);
  const m = /Max open files\s+(\S+)\s+(\S+)/.exec(limits)!;
  const n = (s: string) => s === "unlimited" ? Infinity : Number(s);
  return { soft: n(m[1]), hard: n(m[2]) };
}

/** Spawns `deno run -A <args>` through sh, with the soft fd limit raised to the hard one. */
function _spawnDeno(args: string[], stdin: "piped" | "null"): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: ["-c", 'ulimit -n "$(ulimit -Hn)" && exec "$@"', "sh", Deno.execPath(), "run", ...args],
    stdin,
    stdout: stdin === "piped" ? "piped" : "null",
    stderr: "piped",
  }).spawn();
}

/** Prometheus text → map of `name{labels}` → value. */
function _parseProm(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

/** Sum of a metric over all its label sets. */
function _promSum(m: Map<string, number>, name: string): number {
  let sum = 0;
  for (const [k, v] of m) if (k === name || k.startsWith(name + "{")) sum += v;
  return sum;
}

/** A metric's values by one label. */
function _promBy(m: Map<string, number>, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`${label}="([^"]*)"`);
  for (const [k, v] of m) {
    if (!k.startsWith(name + "{")) continue;
    const l = re.exec(k)?.[1];
    if (l !== undefined && v !== 0) out[l] = v;
  }
  return out;
}

function _sumValues(r: Record<string, number>): number {
  return Object.values(r).reduce((a, b) => a + b, 0);
}

/** Re-wraps prose paragraphs (blank-line separated, not tables or lists) at 100 columns. */
function _wrap(text: string, width = 100): string {
  return text.split("\n\n").map((para) => {
    if (/^\s*[|-]/.test(para)) return para;
    const out: string[] = [];
    let line = "";
    for (const word of para.split(/\s+/).filter(Boolean)) {
      if (line && line.length + 1 + word.length > width) {
        out.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    if (line) out.push(line);
    return out.join("\n");
  }).join("\n\n");
}

function _mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

// ---------- the gateway process ----------

/** Where gateway stderr lines are classified. */
interface GatewayLog {
  lines: number;
  byLevel: Record<string, number>;
  /** Error-level lines and anything that is not a JSON log line (stack traces, panics). */
  errors: string[];
  /** Warn-level lines (first 20). */
  warnings: string[];
  file: string;
}

class GatewayProc {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  readonly log: GatewayLog;
  exit?: Deno.CommandStatus;
  #logDone: Promise<void>;

  constructor(natsUrl: string, logFile: string) {
    this.port = freePort();
    this.child = _spawnDeno([
      "-A",
      `${ROOT}main.ts`,
      "serve",
      "--nats",
      natsUrl,
      "--jwt-secret",
      SECRET,
      "--listen",
      `127.0.0.1:${this.port}`,
      "--log-level",
      "warn",
      "--log-format",
      "json",
      // Every soak client comes from 127.0.0.1: the per-address caps would count them as one.
      "--max-conns-per-ip",
      "1000000",
      "--upgrade-rate-per-ip",
      "1000000",
    ], "null");
    this.child.status.then((s) => this.exit = s);
    this.log = { lines: 0, byLevel: {}, errors: [], warnings: [], file: logFile };
    this.#logDone = this.#readLog(logFile);
  }

  async #readLog(file: string): Promise<void> {
    const out = await Deno.open(file, { write: true, create: true, truncate: true });
    const enc = new TextEncoder();
    try {
      for await (const line of lines(this.child.stderr)) {
        await out.write(enc.encode(line + "\n"));
        this.log.lines++;
        let level = "unparsed";
        try {
          const rec = JSON.parse(line);
          if (rec && typeof rec.level === "string") level = rec.level;
        } catch {
          // a stack trace, a panic or anything else that is not a log line
        }
        this.log.byLevel[level] = (this.log.byLevel[level] ?? 0) + 1;
        if (level === "error" || level === "unparsed") {
          if (this.log.errors.length < 50) this.log.errors.push(line);
          else this.log.errors[49] = `… and more (see ${file})`;
        } else if (level === "warn" && this.log.warnings.length < 20) {
          this.log.warnings.push(line);
        }
      }
    } finally {
      out.close();
    }
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  async metrics(): Promise<Map<string, number>> {
    const r = await fetch(`http://127.0.0.1:${this.port}/metrics`);
    return _parseProm(await r.text());
  }

  async healthy(): Promise<boolean> {
    try {
      const r = await fetch(`http://127.0.0.1:${this.port}/healthz`);
      await r.body?.cancel();
      return r.ok;
    } catch {
      return false;
    }
  }

  async waitReady(): Promise<void> {
    for (let i = 0; i < 600; i++) {
      if (!this.alive) break;
      try {
        const r = await fetch(`http://127.0.0.1:${this.port}/readyz`);
        await r.body?.cancel();
        if (r.ok) return;
      } catch {
        // not yet
      }
      await _sleep(100);
    }
    throw new Error(`gateway did not become ready; log in ${this.log.file}`);
  }

  /** SIGINT, then the exit status (SIGKILL after 15 s). */
  async stop(): Promise<Deno.CommandStatus> {
    if (this.alive) {
      try {
        this.child.kill("SIGINT");
      } catch {
        // gone
      }
    }
    const t = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // gone
      }
    }, 15_000);
    const s = await this.child.status;
    clearTimeout(t);
    await this.#logDone;
    return s;
  }
}

// ---------- the client process ----------

class ClientsProc {
  readonly child: Deno.ChildProcess;
  exit?: Deno.CommandStatus;
  stderr: string[] = [];
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #stderrDone: Promise<void>;
  #busy: Promise<unknown> = Promise.resolve();

  constructor() {
    const child = _spawnDeno(["-A", `${ROOT}bench/_soak_clients.ts`], "piped");
    this.child = child;
    child.status.then((s) => this.exit = s);
    this.#writer = child.stdin.getWriter();
    this.#lines = lines(child.stdout)[Symbol.asyncIterator]();
    this.#stderrDone = (async () => {
      for await (const line of lines(child.stderr)) {
        if (this.stderr.length < 50) this.stderr.push(line);
      }
    })();
  }

  /** One command, one answer line; calls are serialised. */
  // deno-lint-ignore no-explicit-any
  cmd(c: Record<string, unknown>): Promise<any> {
    const run = async () => {
      await this.#writer.write(new TextEncoder().encode(JSON.stringify(c) + "\n"));
      const r = await this.#lines.next();
      if (r.done) throw new Error("the client process ended");
      return JSON.parse(r.value);
    };
    const p = this.#busy.then(run, run);
    this.#busy = p.catch(() => {});
    return p;
  }

  async finish(): Promise<Deno.CommandStatus> {
    await this.#writer.close().catch(() => {});
    const t = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // gone
      }
    }, 10_000);
    const s = await this.child.status;
    clearTimeout(t);
    await this.#stderrDone;
    return s;
  }
}

// ---------- capabilities and background load ----------

function _caps(user: string, full: boolean): Record<string, unknown> {
  const caps: Record<string, unknown> = {
    subjects: ["soak.room.*", `soak.x.${user}.*`],
    publish: ["soak.room.*"],
    commands: ["soak.cmd.*"],
  };
  if (full) {
    (caps.subjects as string[]).push(`soak.rev.${user}`);
    caps.buckets = { [BUCKET]: ["k.>"] };
    caps.streams = { [STREAM]: ["soak.js.>"] };
  }
  return caps;
}

interface LoadCounters {
  /** Publishes to the busy subject of the slow readers (seq 0 … firePubs - 1). */
  firePubs: number;
  kvPuts: number;
  jsPubs: number;
  revPubs: number;
  cmdAnswered: number;
  shrinks: number;
  regrants: number;
  failures: string[];
}

/** KV puts, stream publishes, core publishes to revocable subjects, and capability flips. */
function _startLoad(
  nc: NatsConnection,
  auth: KV,
  data: KV,
  users: string[],
  f: Flags,
  kvGroups: number,
  jsGroups: number,
  counters: LoadCounters,
): () => Promise<void> {
  const js = jetstream(nc);
  const timers: ReturnType<typeof setInterval>[] = [];
  const inflight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>, what: string) => {
    const q = p.catch((err) => {
      if (counters.failures.length < 20) counters.failures.push(`${what}: ${err.message}`);
    }).finally(() => inflight.delete(q));
    inflight.add(q);
  };
  const every = (rate: number, fn: () => void) => {
    if (rate <= 0) return;
    // 100 ms ticks, carrying fractions, so low rates still happen.
    let carry = 0;
    timers.push(setInterval(() => {
      carry += rate / 10;
      while (carry >= 1) {
        carry--;
        fn();
      }
    }, 100));
  };
  let kvN = 0;
  every(f.kvRate, () => {
    const key = `k.${kvN % kvGroups}.${Math.floor(kvN / kvGroups) % 20}`;
    track(data.put(key, JSON.stringify({ n: kvN++, t: Date.now() })), "kv put");
    counters.kvPuts++;
  });
  let jsN = 0;
  every(f.jsRate, () => {
    track(
      js.publish(`soak.js.${jsN % jsGroups}`, JSON.stringify({ n: jsN++, t: Date.now() })),
      "js publish",
    );
    counters.jsPubs++;
  });
  if (f.stallers > 0) {
    const pad = "x".repeat(f.fireBytes);
    every(f.fireRate, () => {
      nc.publish(FIRE_SUBJECT, `{"seq":${counters.firePubs++},"pad":"${pad}"}`);
    });
  }
  every(f.revRate, () => {
    const u = users[Math.floor(Math.random() * users.length)];
    nc.publish(`soak.rev.${u}`, JSON.stringify({ t: Date.now() }));
    counters.revPubs++;
  });
  // Capability flips: every half period, re-grant the users shrunk before, or shrink new ones.
  const perRound = Math.max(1, Math.round(users.length * f.capUsersPct / 100));
  let shrunk: string[] = [];
  let phase = 0;
  if (f.capUsersPct > 0) {
    timers.push(setInterval(() => {
      if (phase++ % 2 === 0) {
        shrunk = [];
        const start = Math.floor(Math.random() * users.length);
        for (let i = 0; i < perRound; i++) shrunk.push(users[(start + i * 7) % users.length]);
        shrunk = [...new Set(shrunk)];
        for (const u of shrunk) {
          track(auth.put(userKey(u), JSON.stringify(_caps(u, false))), "cap shrink");
          counters.shrinks++;
        }
      } else {
        for (const u of shrunk) {
          track(auth.put(userKey(u), JSON.stringify(_caps(u, true))), "cap re-grant");
          counters.regrants++;
        }
        shrunk = [];
      }
    }, f.capIntervalMs / 2));
  }
  return async () => {
    for (const t of timers) clearInterval(t);
    for (const u of shrunk) {
      track(auth.put(userKey(u), JSON.stringify(_caps(u, true))), "cap re-grant");
      counters.regrants++;
    }
    await Promise.all([...inflight]);
  };
}

// ---------- sampling ----------

interface Sample {
  t: number;
  conns: number;
  rssMb: number;
  heapMb: number;
  cpuPct: number;
  natsSubs: number;
  gwNatsSubs: number;
  consumers: number;
  gwInRate: number;
  gwOutRate: number;
  natsInRate: number;
  natsOutRate: number;
  subsCore: number;
  subsKv: number;
  subsJs: number;
  churned: number;
  revoked: number;
  errors: number;
}

function _clientErrors(r: SoakClientsReport): number {
  return r.unhandled + r.wsErrors + r.connectFailures + _sumValues(r.protocolErrors) +
    _sumValues(r.unexpectedCloses) + r.lostAnswers + r.orderViolations;
}

async function _natsFigures(
  nats: NatsServer,
): Promise<{ subs: number; gwSubs: number; consumers: number; inMsgs: number; outMsgs: number }> {
  const varz = await nats.varz() as { subscriptions: number; in_msgs: number; out_msgs: number };
  const jsz = await nats.jsz() as { consumers?: number };
  const connz = await nats.connz() as {
    connections?: Array<{ name?: string; subscriptions?: number }>;
  };
  const gw = connz.connections?.find((c) => c.name === "natsgate");
  return {
    subs: varz.subscriptions,
    gwSubs: gw?.subscriptions ?? -1,
    consumers: jsz.consumers ?? 0,
    inMsgs: varz.in_msgs,
    outMsgs: varz.out_msgs,
  };
}

// ---------- output ----------

function _table(samples: Sample[]): string {
  const head = [
    "t (s)",
    "conns",
    "RSS MB",
    "heap MB",
    "CPU %",
    "NATS subs",
    "gw NATS subs",
    "consumers",
    "gw in/s",
    "gw out/s",
    "NATS in/s",
    "NATS out/s",
    "churned",
    "revoked",
    "errors",
  ];
  const rows = samples.map((s) => [
    s.t.toFixed(0),
    String(s.conns),
    s.rssMb.toFixed(1),
    s.heapMb.toFixed(1),
    s.cpuPct.toFixed(0),
    String(s.natsSubs),
    String(s.gwNatsSubs),
    String(s.consumers),
    s.gwInRate.toFixed(0),
    s.gwOutRate.toFixed(0),
    s.natsInRate.toFixed(0),
    s.natsOutRate.toFixed(0),
    String(s.churned),
    String(s.revoked),
    String(s.errors),
  ]);
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---:").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

interface Verdict {
  name: string;
  ok: boolean | null;
  detail: string;
}

function _verdictLine(v: Verdict): string {
  const mark = v.ok === null ? "n/a " : v.ok ? "PASS" : "FAIL";
  return `- **${mark}** ${v.name}: ${v.detail}`;
}

async function _writeDoc(section: string): Promise<void> {
  const path = `${ROOT}docs/benchmarks.md`;
  const doc = await Deno.readTextFile(path);
  const start = doc.search(/^## Soak\s*$/m);
  let out: string;
  if (start < 0) out = doc.replace(/\s*$/, "\n\n") + section;
  else {
    const rest = doc.slice(start + 1);
    const nextRel = rest.search(/^## /m);
    const after = nextRel < 0 ? "" : "\n" + rest.slice(nextRel);
    out = doc.slice(0, start) + section + after;
  }
  await Deno.writeTextFile(path, out.replace(/\s*$/, "\n"));
  console.error("wrote the Soak section of docs/benchmarks.md");
}

// ---------- main ----------

async function main(): Promise<number> {
  const f = _parseFlags(Deno.args);
  const N = f.connections;
  const userCount = Math.max(1, Math.ceil(N / f.connsPerUser));
  const users = Array.from({ length: userCount }, (_, i) => `soak-${i}`);
  const rooms = Math.max(1, Math.round(N / 20));
  const kvGroups = 10;
  const jsGroups = 10;
  const churnPerSec = N * f.churnPctPerMin / 100 / 60;
  const fdSelf = await _fdLimit("self");
  if (fdSelf.hard < N + 1024) {
    console.error(
      `the hard open-file limit is ${fdSelf.hard}; ${N} connections need at least ${N + 1024} ` +
        `(the gateway and the client process each hold one descriptor per connection). ` +
        `Raise it (e.g. ulimit -Hn / LimitNOFILE) or pass fewer --connections.`,
    );
    return 2;
  }
  const command = `deno task soak${Deno.args.length ? " " + Deno.args.join(" ") : ""}`;
  // What else loaded the machine before the run (1, 5, 15 min), to read the figures by.
  const loadBefore = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(", ");
  console.error(
    `soak: ${N} connections (${userCount} users), ${f.durationMs / 1000} s, ramp ${
      f.rampMs / 1000
    } s, churn ${f.churnPctPerMin}%/min (${churnPerSec.toFixed(1)}/s), one op per ${
      f.opIntervalMs / 1000
    } s per connection`,
  );

  let abort = false;
  const onSignal = () => {
    if (abort) Deno.exit(130);
    abort = true;
    console.error("interrupted: finishing early (again to quit at once)");
  };
  Deno.addSignalListener("SIGINT", onSignal);

  const nats = await NatsServer.start();
  const tmp = await Deno.makeTempDir({ prefix: "natsgate-soak-" });
  let nc: NatsConnection | undefined;
  let gw: GatewayProc | undefined;
  let clients: ClientsProc | undefined;
  try {
    nc = await connect({ servers: nats.url, name: "soak-admin" });
    const kvm = new Kvm(nc);
    const auth = await kvm.create("auth", { history: 10 });
    const data = await kvm.create(BUCKET, { history: 1, storage: StorageType.Memory });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: STREAM,
      subjects: ["soak.js.>"],
      storage: StorageType.Memory,
      max_msgs: 20_000,
    });
    for (let i = 0; i < users.length; i += 200) {
      await Promise.all(
        users.slice(i, i + 200).map((u) => auth.put(userKey(u), JSON.stringify(_caps(u, true)))),
      );
    }
    for (let g = 0; g < kvGroups; g++) await data.put(`k.${g}.0`, JSON.stringify({ seed: g }));
    await jetstream(nc).publish("soak.js.0", JSON.stringify({ seed: true }));
    const load: LoadCounters = {
      firePubs: 0,
      kvPuts: 0,
      jsPubs: 0,
      revPubs: 0,
      cmdAnswered: 0,
      shrinks: 0,
      regrants: 0,
      failures: [],
    };
    nc.subscribe(CMD_SUBJECT, {
      callback: (_err, m) => {
        load.cmdAnswered++;
        m.respond(m.data);
      },
    });
    await nc.flush();

    gw = new GatewayProc(nats.url, `${tmp}/gateway.log`);
    await gw.waitReady();
    const gwFd = await _fdLimit(gw.child.pid);

    // Baseline: gateway up, no clients yet.
    await _sleep(2000);
    const base = await _natsFigures(nats);
    const baseRss = await rssKb(gw.child.pid);
    const baseHeap = _promSum(await gw.metrics(), "deno_heap_size_used_bytes");
    console.error(
      `baseline: NATS subscriptions ${base.subs} (gateway connection ${base.gwSubs}), ` +
        `consumers ${base.consumers}, gateway RSS ${(baseRss / 1024).toFixed(1)} MB`,
    );

    const ttl = Math.ceil((f.durationMs + f.settleMs) / 1000) + 3600;
    const tokens = await Promise.all(
      users.map((u) => mintToken({ secret: SECRET, user: u, ttlSeconds: ttl })),
    );
    // Slow readers: their own users (a few connections each), allowed the busy subject only.
    const stallUsers = Array.from({ length: Math.ceil(f.stallers / 8) }, (_, i) => `stall-${i}`);
    for (const u of stallUsers) {
      await auth.put(userKey(u), JSON.stringify({ subjects: [FIRE_SUBJECT] }));
    }
    const stallTokens = await Promise.all(
      stallUsers.map((u) => mintToken({ secret: SECRET, user: u, ttlSeconds: ttl })),
    );
    // Forever-stallers stop reading between the end of the ramp and 2 minutes before the end
    // (cut needs the per-connection bound plus the kernel's socket buffers to fill, or the
    // write deadline to pass).
    const foreverFromMs = f.rampMs;
    const foreverToMs = Math.max(foreverFromMs, f.durationMs - 120_000);
    clients = new ClientsProc();
    const clientFd = await _fdLimit(clients.child.pid);
    const spec: SoakClientsSpec = {
      url: gw.url,
      users,
      tokens,
      connections: N,
      rampMs: f.rampMs,
      churnPerSec,
      opIntervalMs: f.opIntervalMs,
      rooms,
      kvEvery: f.kvEvery,
      jsEvery: f.jsEvery,
      kvGroups,
      jsGroups,
      bucket: BUCKET,
      stream: STREAM,
      cmdSubject: CMD_SUBJECT,
      stall: f.stallers > 0
        ? {
          count: f.stallers,
          subject: FIRE_SUBJECT,
          tokens: stallTokens,
          foreverFromMs,
          foreverToMs,
          pauseMinMs: 200,
          pauseMaxMs: f.pauseMaxMs,
          pauseEveryMs: 10_000,
        }
        : undefined,
    };
    await clients.cmd({ op: "start", spec });
    const t0 = performance.now();
    const stopLoad = _startLoad(nc, auth, data, users, f, kvGroups, jsGroups, load);

    // Sampling.
    const samples: Sample[] = [];
    let prev = {
      at: t0,
      cpu: await _cpuTicks(gw.child.pid),
      gwIn: 0,
      gwOut: 0,
      natsIn: base.inMsgs,
      natsOut: base.outMsgs,
    };
    let lastReport: SoakClientsReport | undefined;
    let died = "";
    let peakConns = 0;
    while (!abort) {
      const elapsed = performance.now() - t0;
      if (elapsed >= f.durationMs) break;
      const nextAt = (samples.length + 1) * f.sampleMs;
      await Promise.race([
        _sleep(Math.min(nextAt, f.durationMs) - elapsed),
        gw.child.status,
        clients.child.status,
      ]);
      if (!gw.alive) {
        died = `gateway exited (${JSON.stringify(gw.exit)})`;
        break;
      }
      if (clients.exit) {
        died = `client process exited (${JSON.stringify(clients.exit)})`;
        break;
      }
      if (performance.now() - t0 < nextAt - 5) continue;
      const now = performance.now();
      const [m, nf, rep, rss, cpu] = await Promise.all([
        gw.metrics(),
        _natsFigures(nats),
        clients.cmd({ op: "report" }) as Promise<SoakClientsReport>,
        rssKb(gw.child.pid),
        _cpuTicks(gw.child.pid),
      ]);
      lastReport = rep;
      const dt = (now - prev.at) / 1000;
      const gwIn = _promSum(m, "natsgate_messages_in_total");
      const gwOut = _promSum(m, "natsgate_messages_out_total");
      const subs = _promBy(m, "natsgate_subscriptions", "kind");
      const s: Sample = {
        t: (now - t0) / 1000,
        conns: _promSum(m, "natsgate_connections"),
        rssMb: rss / 1024,
        heapMb: _promSum(m, "deno_heap_size_used_bytes") / 1024 / 1024,
        cpuPct: (cpu - prev.cpu) / dt,
        natsSubs: nf.subs,
        gwNatsSubs: nf.gwSubs,
        consumers: nf.consumers,
        gwInRate: (gwIn - prev.gwIn) / dt,
        gwOutRate: (gwOut - prev.gwOut) / dt,
        natsInRate: (nf.inMsgs - prev.natsIn) / dt,
        natsOutRate: (nf.outMsgs - prev.natsOut) / dt,
        subsCore: subs.core ?? 0,
        subsKv: subs.kv ?? 0,
        subsJs: subs.js ?? 0,
        churned: rep.churned,
        revoked: _promSum(m, "natsgate_revocations_total"),
        errors: _clientErrors(rep) + gw.log.errors.length,
      };
      peakConns = Math.max(peakConns, s.conns);
      prev = { at: now, cpu, gwIn, gwOut, natsIn: nf.inMsgs, natsOut: nf.outMsgs };
      samples.push(s);
      console.error(
        `t=${s.t.toFixed(0)}s conns=${s.conns} rss=${s.rssMb.toFixed(1)}MB heap=${
          s.heapMb.toFixed(1)
        }MB cpu=${
          s.cpuPct.toFixed(0)
        }% natsSubs=${s.natsSubs} consumers=${s.consumers} subs(core/kv/js)=${s.subsCore}/${s.subsKv}/${s.subsJs} in/s=${
          s.gwInRate.toFixed(0)
        } out/s=${
          s.gwOutRate.toFixed(0)
        } churned=${s.churned} revoked=${s.revoked} errors=${s.errors}`,
      );
    }
    const ranFor = (performance.now() - t0) / 1000;
    const preClose = gw.alive ? await gw.metrics() : new Map<string, number>();

    // Wind down: stop the background load, close every client, wait for NATS to settle.
    console.error("closing all clients…");
    await stopLoad();
    const closed = clients.exit
      ? undefined
      : await clients.cmd({ op: "close", fireLast: load.firePubs - 1 }) as
        & SoakClientsReport
        & { left: number };
    const finalReport: SoakClientsReport | undefined = closed ?? lastReport;
    const clientsExit = await clients.finish();
    const settleStart = performance.now();
    let fin = await _natsFigures(nats);
    let gwConns = gw.alive ? _promSum(await gw.metrics(), "natsgate_connections") : -1;
    while (
      gw.alive && performance.now() - settleStart < f.settleMs &&
      (fin.subs !== base.subs || fin.consumers !== base.consumers || gwConns !== 0)
    ) {
      await _sleep(1000);
      fin = await _natsFigures(nats);
      gwConns = _promSum(await gw.metrics(), "natsgate_connections");
    }
    const settledIn = (performance.now() - settleStart) / 1000;
    // Leftover consumers, by stream, for the report.
    const leftover: Record<string, string> = {};
    for (const stream of [`KV_${BUCKET}`, STREAM, "KV_auth"]) {
      const kinds = new Map<string, number>();
      for await (const c of jsm.consumers.list(stream)) {
        const cfg = c.config;
        const kind = `${cfg.durable_name ? "durable" : "ephemeral"}, ack ${cfg.ack_policy}, ` +
          `inactive_threshold ${(cfg.inactive_threshold ?? 0) / 1e9} s`;
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
      if (kinds.size) {
        leftover[stream] = [...kinds].map(([k, n]) => `${n}× ${k}`).join("; ");
      }
    }
    const aliveAtEnd = gw.alive && await gw.healthy();
    const endMetrics = gw.alive ? await gw.metrics() : preClose;
    const rssAfter = gw.alive ? await rssKb(gw.child.pid) : NaN;
    const gwExit = await gw.stop();

    // ---------- verdicts ----------
    const verdicts: Verdict[] = [];
    const subsOk = fin.subs === base.subs && fin.consumers === base.consumers;
    verdicts.push({
      name: "NATS subscriptions back to baseline",
      ok: subsOk,
      detail: `baseline ${base.subs} subscriptions (gateway connection ${base.gwSubs}), ` +
        `${base.consumers} consumers; after close ${fin.subs} (gateway connection ${fin.gwSubs}), ` +
        `${fin.consumers} consumers${
          Object.keys(leftover).length
            ? ` (${
              Object.entries(leftover).map(([k, v]) => `${k}: ${v}`).join(", ")
            }; KV_auth holds the gateway's capability watch)`
            : ""
        }, ${subsOk ? "reached" : "checked"} ${settledIn.toFixed(0)} s after the clients closed`,
    });
    verdicts.push({
      name: "gateway sessions back to zero",
      ok: gwConns === 0,
      detail: `natsgate_connections ${gwConns} after close (peak ${peakConns})`,
    });
    const steady = samples.filter((s) => s.t * 1000 > f.rampMs);
    let rssVerdict: Verdict;
    let heapNote = "";
    if (samples.length >= 6) {
      const n = samples.length;
      const mid = samples.slice(Math.floor(n / 3), Math.floor(2 * n / 3));
      const last = samples.slice(Math.floor(2 * n / 3));
      const midRss = _mean(mid.map((s) => s.rssMb));
      const lastRss = _mean(last.map((s) => s.rssMb));
      const growth = (lastRss / midRss - 1) * 100;
      const midHeap = _mean(mid.map((s) => s.heapMb));
      const lastHeap = _mean(last.map((s) => s.heapMb));
      heapNote = `; V8 heap used ${midHeap.toFixed(1)} → ${lastHeap.toFixed(1)} MB (${
        ((lastHeap / midHeap - 1) * 100).toFixed(1)
      }%)`;
      rssVerdict = {
        name: "gateway RSS plateaued (last third vs middle third, flag > 10%)",
        ok: growth <= 10,
        detail: `mean RSS ${midRss.toFixed(1)} MB → ${lastRss.toFixed(1)} MB (${
          growth >= 0 ? "+" : ""
        }${growth.toFixed(1)}%)${heapNote}; idle before load ${
          (baseRss / 1024).toFixed(1)
        } MB, peak ${Math.max(...samples.map((s) => s.rssMb)).toFixed(1)} MB, after close ${
          (rssAfter / 1024).toFixed(1)
        } MB`,
      };
    } else {
      rssVerdict = {
        name: "gateway RSS plateaued",
        ok: null,
        detail: `only ${samples.length} samples (need 6: run longer); RSS ${
          samples.map((s) => s.rssMb.toFixed(1)).join(", ")
        } MB`,
      };
    }
    verdicts.push(rssVerdict);
    const r = finalReport;
    const unhandled = r ? r.unhandled + r.wsErrors : NaN;
    verdicts.push({
      name: "no unhandled errors in the client process",
      ok: r !== undefined && unhandled === 0 && clientsExit.success &&
        clients.stderr.length === 0,
      detail: r
        ? `${r.unhandled} unhandled rejections/uncaught errors, ${r.wsErrors} WebSocket error events, exit ${clientsExit.code}, ${clients.stderr.length} stderr lines`
        : "no report (the client process died)",
    });
    const protoErrs = r ? _sumValues(r.protocolErrors) : NaN;
    const unexpCloses = r ? _sumValues(r.unexpectedCloses) : NaN;
    const otherErrs = r
      ? r.connectFailures + protoErrs + unexpCloses + r.lostAnswers + r.orderViolations
      : NaN;
    verdicts.push({
      name: "no protocol errors, unexpected closes, lost answers or reordering",
      ok: r !== undefined && otherErrs === 0,
      detail: r
        ? `${r.connectFailures} failed upgrades, error envelopes ${
          JSON.stringify(r.protocolErrors)
        }, unexpected closes ${
          JSON.stringify(r.unexpectedCloses)
        }, ${r.lostAnswers} ops without an answer in 15 s, ${r.orderViolations} order violations (${r.raceDenials} forbidden/not_found explained by a racing revocation, not counted)`
        : "no report",
    });
    const gwExitOk = gwExit.success || gwExit.signal === "SIGINT";
    verdicts.push({
      name: "gateway alive, no errors on its stderr",
      ok: aliveAtEnd && !died && gw.log.errors.length === 0 && gwExitOk,
      detail: `${aliveAtEnd ? "alive and healthy at the end" : "NOT alive at the end"}${
        died ? ` (${died})` : ""
      }; ${gw.log.lines} stderr lines at --log-level warn ${
        JSON.stringify(gw.log.byLevel)
      }; exit after SIGINT: code ${gwExit.code}`,
    });
    verdicts.push({
      name: "background load without failures",
      ok: load.failures.length === 0,
      detail: `${load.kvPuts} KV puts, ${load.jsPubs} stream publishes, ${load.revPubs} core ` +
        `publishes, ${load.cmdAnswered} cmds answered, ${load.shrinks} capability shrinks and ` +
        `${load.regrants} re-grants${
          load.failures.length ? `; failures: ${load.failures.slice(0, 3).join("; ")}` : ""
        }`,
    });

    const closes = _promBy(endMetrics, "natsgate_connection_closes_total", "code");
    const st = r?.stall;
    if (f.stallers > 0) {
      verdicts.push(
        st
          ? {
            name: "slow readers not cut got every message, in order",
            ok: st.cut.steady === 0 && st.seqErrorsNotCut === 0 && st.tailMissing === 0 &&
              st.failures === 0,
            detail: `${st.steady} steady and ${st.recovering} recovering readers (${st.pauses} ` +
              `pauses, ${(st.pausedMs / 1000).toFixed(0)} s in all, longest ${
                (st.longestPauseMs / 1000).toFixed(1)
              } s); cut: ${st.cut.steady} steady, ${st.cut.recovering} recovering; ` +
              `${st.seqErrorsNotCut} gaps/repeats/reorders at readers not cut ` +
              `(${st.seqErrorsCut} at cut ones before the cut), ${st.tailMissing} short of the ` +
              `last of ${load.firePubs} publishes (${f.fireRate}/s, ${f.fireBytes} B), ` +
              `${st.received} messages read, ${st.failures} connect failures`,
          }
          : { name: "slow readers", ok: false, detail: "no report (the client process died)" },
      );
      if (st) {
        const gw4008 = closes["4008"] ?? 0;
        verdicts.push({
          name: "readers stalled for good were cut with 4008",
          ok: st.cut.forever === st.forever && st.notCut === 0 &&
            gw4008 >= st.cut.forever + st.cut.recovering + st.cut.steady,
          detail: `${st.forever} readers stopped (${st.foreverStalled} had stopped by the end), ` +
            `${st.cut.forever} cut, ${st.notCut} still open at the end; close frames seen by ` +
            `all slow readers ${JSON.stringify(st.closeCodes)} ("eof": the connection ended ` +
            `without one reaching the reader); gateway closes with 4008: ${gw4008}`,
        });
      }
    }

    // ---------- report ----------
    const limits = _promBy(endMetrics, "natsgate_limit_events_total", "limit");
    const denials = _promBy(endMetrics, "natsgate_denials_total", "op");
    const steadyConns = steady.length ? _mean(steady.map((s) => s.conns)) : NaN;
    const steadyRss = steady.length ? _mean(steady.map((s) => s.rssMb)) : NaN;
    const cpuModel = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)
      ?.[1] ?? "unknown";
    const natsVersion = new TextDecoder().decode(
      (await new Deno.Command(nats.binary, { args: ["--version"] }).output()).stdout,
    ).trim();
    const summary = [
      `ran ${ranFor.toFixed(0)} s${abort ? " (interrupted)" : ""}${died ? ` — ${died}` : ""}`,
      `connections: target ${N}, peak ${peakConns}, mean after the ramp ${
        steadyConns.toFixed(0)
      }; ${r?.opened ?? "?"} upgrades, ${r?.churned ?? "?"} churn closes; gateway closes by code ${
        JSON.stringify(closes)
      }`,
      `ops sent: ${JSON.stringify(r?.ops ?? {})}; answers ${r?.answers ?? "?"}`,
      `msgs received by clients: ${JSON.stringify(r?.msgs ?? {})}; gateway msgs in ${
        _promSum(endMetrics, "natsgate_messages_in_total")
      }, out ${_promSum(endMetrics, "natsgate_messages_out_total")}`,
      `capabilities: ${load.shrinks} shrinks, ${load.regrants} re-grants, ${
        r?.capUpdates ?? "?"
      } cap_updates received, ${r?.revoked ?? "?"} subscriptions revoked (gateway counted ${
        _promSum(endMetrics, "natsgate_revocations_total")
      }); gateway denials ${JSON.stringify(denials)}, limit events ${JSON.stringify(limits)}`,
      `gateway RSS: idle ${(baseRss / 1024).toFixed(1)} MB, mean after the ramp ${
        steadyRss.toFixed(1)
      } MB (~${((steadyRss * 1024 - baseRss) / steadyConns).toFixed(1)} KB per connection), ` +
      `after close ${(rssAfter / 1024).toFixed(1)} MB; V8 heap used idle ${
        (baseHeap / 1024 / 1024).toFixed(1)
      } MB, after close ${
        (_promSum(endMetrics, "deno_heap_size_used_bytes") / 1024 / 1024).toFixed(1)
      } MB`,
      `open-file limits: gateway ${gwFd.soft}, client process ${clientFd.soft} (soft raised to ` +
      `the hard limit with ulimit -n in the spawning shell)`,
    ];
    const table = _table(samples);
    console.log("\n" + table + "\n");
    console.log(summary.map((l) => `- ${l}`).join("\n") + "\n");
    console.log(verdicts.map(_verdictLine).join("\n"));
    if (r?.samples.length) {
      console.log("\nclient error samples:\n" + r.samples.map((s) => `  ${s}`).join("\n"));
    }
    if (clients.stderr.length) {
      console.log("\nclient process stderr:\n" + clients.stderr.map((s) => `  ${s}`).join("\n"));
    }
    if (gw.log.errors.length || gw.log.warnings.length) {
      console.log(
        `\ngateway stderr (full log: ${gw.log.file}):\n` +
          [...gw.log.errors, ...gw.log.warnings].slice(0, 30).map((s) => `  ${s}`).join("\n"),
      );
    }
    const failed = verdicts.some((v) => v.ok === false);
    console.log(`\nsoak ${failed ? "FAILED" : "passed"}`);

    if (f.write) {
      const secs = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;
      const prose = _wrap(
        `Produced by \`${command}\` (\`deno run -A bench/soak.ts\`) on ${
          new Date().toISOString().slice(0, 10)
        }. Machine: ${navigator.hardwareConcurrency} cores (${cpuModel}), Deno ${Deno.version.deno}, ${natsVersion}; load average before the run ${loadBefore}.

Setup: one nats-server (JetStream); the gateway as a separate \`natsgate serve\` process (default limits but \`--max-conns-per-ip\` and \`--upgrade-rate-per-ip\` lifted, as every client is on 127.0.0.1; \`--log-level warn --log-format json\`, stderr captured and checked); all WebSocket clients in one separate Deno process (\`bench/_soak_clients.ts\`); an admin NATS connection in the orchestrating process for the background load. ${N} connections for ${userCount} users (${f.connsPerUser} each, under the default \`--max-conns-per-user\` 32; tokens from \`mintToken\`, capabilities in KV bucket \`auth\`), opened over ${
          secs(f.rampMs)
        }, then ${f.churnPctPerMin}% of them closed and reopened per minute. Each connection holds a core subscription on a shared room subject (~20 connections each) and one on a per-user revocable subject; every ${f.kvEvery}th connection a \`kv_sub\` and every ${f.jsEvery}th a \`js_sub\`; and on average every ${
          secs(f.opIntervalMs)
        } it does one of pub to its room (30%), cmd against a responder (20%), ping (15%), sub/unsub of its own subject (25%), or unsub and re-sub of its kv/js subscription (10%). In the background: ${f.kvRate} KV puts/s, ${f.jsRate} stream publishes/s, ${f.revRate} core publishes/s to the revocable subjects, and every ${
          secs(f.capIntervalMs)
        } ${f.capUsersPct}% of the users lose their revocable subject, bucket and stream, re-granted half a period later (clients re-subscribe on the \`cap_update\`).${
          f.stallers > 0
            ? ` Slow readers: ${f.stallers} more connections (raw TCP WebSockets that read only when not stalled) on a busy subject published at ${f.fireRate}/s with ${f.fireBytes}-byte payloads and a sequence number; a third read steadily, a third pause their reader for 0.2–${
              secs(f.pauseMaxMs)
            } about every 10 s and resume, a third stop reading for good at a random time between ${
              secs(foreverFromMs)
            } and ${
              secs(foreverToMs)
            } (the gateway must cut them with 4008). At the end every reader not cut must have every message up to the last publish, with no gap, repeat or reordering.`
            : ""
        } Open-file limits: gateway ${gwFd.soft}, clients ${clientFd.soft}.

Samples every ${
          secs(f.sampleMs)
        }: \`conns\`, \`gw in/s\` / \`gw out/s\` (envelopes), \`revoked\` and \`heap MB\` (V8 heap used) from the gateway's \`/metrics\`; \`RSS MB\` and \`CPU %\` (of one core) from \`/proc/<pid>\`; \`NATS subs\`, \`consumers\` and message rates from nats-server's \`/varz\`, \`/jsz\`, \`/connz\` (\`gw NATS subs\`: the gateway connection's own; the rest are nats-server's: JetStream API and system subscriptions, plus two per consumer); \`churned\`: connections closed for churn so far; \`errors\`: client-side errors of any kind plus gateway error lines, cumulative. RSS does not drop when the clients leave (V8 keeps the pages it grew); the heap figure after close says what is still live.`,
      );
      const section = `## Soak

${prose}

${table}

${summary.map((l) => `- ${l}`).join("\n")}

Verdicts:

${verdicts.map(_verdictLine).join("\n")}
`;
      await _writeDoc(section);
    }
    return failed ? 1 : 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    if (clients && !clients.exit) {
      try {
        clients.child.kill("SIGKILL");
      } catch {
        // gone
      }
    }
    if (gw?.alive) await gw.stop().catch(() => {});
    await nc?.close().catch(() => {});
    await nats.stop();
    // Keep the gateway's log only when it has something to show.
    if (gw && gw.log.lines === 0) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main());
