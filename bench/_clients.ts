/** Benchmark client process: many raw WebSockets speaking NATS (native) or protocol v1 (gateway).
 * Controlled over stdin/stdout with one JSON line per command, so it runs apart from the servers.
 * @module */

/** What the orchestrator asks this process to open. */
export interface ClientsSpec {
  /** `native`: NATS over WebSocket; `gateway`: natsgate protocol v1. */
  mode: "native" | "gateway";
  /** WebSocket URL (with `?token=` for the gateway). */
  url: string;
  /** Subject of each client (index i subscribes to subjects[i % subjects.length]). */
  subjects: string[];
  /** Number of clients. */
  count: number;
  /** Parse payloads and record latency from the payload's `t` (epoch ms, fractional). */
  latency: boolean;
  /** Connections opened at once while connecting. */
  concurrency?: number;
}

const _enc = new TextEncoder();
const _dec = new TextDecoder();

function _now(): number {
  return performance.timeOrigin + performance.now();
}

/** Minimal NATS protocol reader for MSG/PING/INFO/+OK/-ERR, counting messages. */
class _NatsReader {
  #buf: Uint8Array = new Uint8Array(0);
  onMsg: (payload: Uint8Array) => void = () => {};
  onPing: () => void = () => {};
  onErr: (line: string) => void = () => {};

  push(chunk: Uint8Array): void {
    if (this.#buf.length === 0) this.#buf = chunk;
    else {
      const b = new Uint8Array(this.#buf.length + chunk.length);
      b.set(this.#buf);
      b.set(chunk, this.#buf.length);
      this.#buf = b;
    }
    let off = 0;
    const buf = this.#buf;
    while (true) {
      const nl = buf.indexOf(10, off);
      if (nl < 0) break;
      const c0 = buf[off];
      if (c0 === 77 /* M */) {
        const line = _dec.decode(buf.subarray(off, nl - 1));
        const parts = line.split(" ");
        const size = Number(parts[parts.length - 1]);
        if (nl + 1 + size + 2 > buf.length) break;
        this.onMsg(buf.subarray(nl + 1, nl + 1 + size));
        off = nl + 1 + size + 2;
        continue;
      }
      if (c0 === 80 /* P */ && buf[off + 1] === 73 /* I */) this.onPing();
      else if (c0 === 45 /* - */) this.onErr(_dec.decode(buf.subarray(off, nl)));
      off = nl + 1;
    }
    this.#buf = off >= buf.length ? new Uint8Array(0) : buf.slice(off);
  }
}

class _Stats {
  received = 0;
  latencies: number[] = [];
  errors: string[] = [];
  firstAt = 0;
  lastAt = 0;
  count(n: number) {
    if (n === 0) return;
    const now = performance.now();
    if (this.received === 0) this.firstAt = now;
    this.received += n;
    this.lastAt = now;
  }
}

function _open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = (e) => reject(new Error((e as ErrorEvent).message ?? "ws error"));
  });
}

async function _nativeClient(
  spec: ClientsSpec,
  subject: string,
  stats: _Stats,
): Promise<WebSocket> {
  const ws = await _open(spec.url);
  const reader = new _NatsReader();
  reader.onPing = () => ws.send(_enc.encode("PONG\r\n"));
  reader.onErr = (l) => stats.errors.push(l);
  reader.onMsg = spec.latency
    ? (p) => {
      stats.count(1);
      stats.latencies.push(_now() - JSON.parse(_dec.decode(p)).t);
    }
    : () => stats.count(1);
  const ready = new Promise<void>((resolve) => {
    let sawPong = false;
    ws.onmessage = (e) => {
      const data = new Uint8Array(e.data as ArrayBuffer);
      if (!sawPong) {
        const text = _dec.decode(data);
        if (text.includes("PONG")) {
          sawPong = true;
          resolve();
        }
        if (!text.includes("MSG ")) return;
      }
      reader.push(data);
    };
  });
  ws.send(
    _enc.encode(
      `CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":true,"no_responders":true}\r\n` +
        `SUB ${subject} 1\r\nPING\r\n`,
    ),
  );
  await ready;
  return ws;
}

async function _gatewayClient(
  spec: ClientsSpec,
  subject: string,
  stats: _Stats,
): Promise<WebSocket> {
  const ws = await _open(spec.url);
  let sid = "";
  const ready = new Promise<void>((resolve, reject) => {
    ws.onmessage = (e) => {
      const text = typeof e.data === "string" ? e.data : _dec.decode(e.data as ArrayBuffer);
      if (!sid) {
        for (const line of text.split("\n")) {
          const env = JSON.parse(line);
          if (env.op === "reply" && env.inbox === "s") {
            sid = env.data.id;
            resolve();
          } else if (env.op === "error") reject(new Error(JSON.stringify(env.data)));
        }
        return;
      }
      if (spec.latency) {
        const now = _now();
        for (const line of text.split("\n")) {
          const env = JSON.parse(line);
          if (env.op !== "msg") continue;
          stats.count(1);
          stats.latencies.push(now - env.data.payload.t);
        }
      } else {
        let n = 1;
        for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
        stats.count(n);
      }
    };
  });
  ws.send(JSON.stringify({ op: "sub", target: subject, inbox: "s" }));
  await ready;
  return ws;
}

async function _main(): Promise<void> {
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let pending = "";
  const sockets: WebSocket[] = [];
  const stats = new _Stats();
  const out = (o: unknown) => Deno.stdout.writeSync(_enc.encode(JSON.stringify(o) + "\n"));
  for await (const chunk of lines) {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const cmd = JSON.parse(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      if (cmd.op === "open") {
        const spec = cmd.spec as ClientsSpec;
        const started = performance.now();
        const conc = spec.concurrency ?? 200;
        for (let i = 0; i < spec.count; i += conc) {
          const batch = [];
          for (let j = i; j < Math.min(spec.count, i + conc); j++) {
            const subject = spec.subjects[j % spec.subjects.length];
            batch.push(
              spec.mode === "native"
                ? _nativeClient(spec, subject, stats)
                : _gatewayClient(spec, subject, stats),
            );
          }
          sockets.push(...await Promise.all(batch));
        }
        out({ op: "opened", count: sockets.length, ms: performance.now() - started });
      } else if (cmd.op === "reset") {
        stats.received = 0;
        stats.latencies = [];
        stats.firstAt = stats.lastAt = 0;
        out({ op: "reset" });
      } else if (cmd.op === "report") {
        out({
          op: "report",
          received: stats.received,
          firstAt: stats.firstAt,
          lastAt: stats.lastAt,
          latencies: cmd.latencies ? stats.latencies : undefined,
          errors: stats.errors.slice(0, 5),
          open: sockets.filter((s) => s.readyState === WebSocket.OPEN).length,
        });
      } else if (cmd.op === "close") {
        for (const s of sockets) s.close();
        out({ op: "closed" });
        Deno.exit(0);
      }
    }
  }
}

if (import.meta.main) await _main();
