/** Benchmark client process: many raw WebSockets speaking NATS (native) or protocol v1 (gateway).
 * Controlled over stdin/stdout with one JSON line per command, so it runs apart from the servers.
 *
 * Commands (one JSON line each, one answer line each): `open` (a {@link ClientsSpec}), `reset`,
 * `report`, `arm` (open-loop round: expect `expect` messages per client, sequence numbers from
 * 0), `wait` (answers when every live client has all of them, or nothing arrived for `idleMs`, or
 * at `deadlineMs`), `close`.
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
  /**
   * Decode every message as an application would (gateway: `JSON.parse` of each envelope line;
   * native: the MSG header, then `JSON.parse` of the payload) and check each client's `seq`
   * numbers for gaps, duplicates and reordering. Used by the open-loop scenarios.
   */
  decode?: boolean;
  /** Connections opened at once while connecting. */
  concurrency?: number;
}

/** Answer to `wait`: one open-loop round as the clients saw it. */
export interface RoundReport {
  /** Clients that have every expected message. */
  done: number;
  /** Epoch ms when the last client got its last expected message (0: not all done). */
  doneAt: number;
  /** Epoch ms of the last message received. */
  lastAt: number;
  /** Messages delivered in this round, all clients. */
  received: number;
  /** Expected messages not delivered to clients that were not cut. */
  missing: number;
  /** Sequence numbers skipped, repeated or out of order (all clients). */
  seqErrors: number;
  /** Clients whose socket was closed by the server or saw an error (since `open`). */
  cut: number;
  /** Close codes of the cut clients (since `open`). */
  closeCodes: Record<string, number>;
  /** WebSocket frames received in this round. */
  frames: number;
  /** Payload bytes of those frames (WebSocket message data, not framing). */
  bytes: number;
  /** Clients still open. */
  open: number;
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

/** Per-client state of open-loop rounds. */
class _Rounds {
  /** Messages expected per client in the armed round (0: not armed). */
  expect = 0;
  got: Int32Array = new Int32Array(0);
  next: Int32Array = new Int32Array(0);
  cutFlag: Uint8Array = new Uint8Array(0);
  done = 0;
  doneAt = 0;
  lastAt = 0;
  received = 0;
  seqErrors = 0;
  frames = 0;
  bytes = 0;
  cut = 0;
  closeCodes: Record<string, number> = {};
  /** Live clients (not cut); a round is complete when `done` reaches it. */
  live = 0;
  onProgress: () => void = () => {};

  resize(n: number): void {
    this.got = new Int32Array(n);
    this.next = new Int32Array(n);
    this.cutFlag = new Uint8Array(n);
    this.live = n;
  }

  arm(expect: number): void {
    this.expect = expect;
    this.got.fill(0);
    this.next.fill(0);
    this.done = 0;
    this.doneAt = 0;
    this.lastAt = 0;
    this.received = 0;
    this.seqErrors = 0;
    this.frames = 0;
    this.bytes = 0;
  }

  frame(bytes: number): void {
    this.frames++;
    this.bytes += bytes;
  }

  msg(i: number, seq: number): void {
    this.received++;
    if (seq !== this.next[i]) this.seqErrors++;
    this.next[i] = seq + 1;
    if (++this.got[i] === this.expect) {
      this.done++;
      this.lastAt = _now();
      if (this.done >= this.live) {
        this.doneAt = this.lastAt;
        this.onProgress();
      }
    } else if ((this.received & 1023) === 0) this.lastAt = _now();
  }

  closed(i: number, code: number): void {
    if (this.cutFlag[i]) return;
    this.cutFlag[i] = 1;
    this.cut++;
    this.live--;
    this.closeCodes[code] = (this.closeCodes[code] ?? 0) + 1;
    if (this.expect > 0 && this.got[i] >= this.expect) this.done--;
    if (this.expect > 0 && this.done >= this.live && this.doneAt === 0) {
      this.doneAt = _now();
      this.onProgress();
    }
  }

  report(open: number): RoundReport {
    let missing = 0;
    for (let i = 0; i < this.got.length; i++) {
      if (!this.cutFlag[i]) missing += Math.max(0, this.expect - this.got[i]);
    }
    return {
      done: this.done,
      doneAt: this.doneAt,
      lastAt: this.lastAt,
      received: this.received,
      missing,
      seqErrors: this.seqErrors,
      cut: this.cut,
      closeCodes: this.closeCodes,
      frames: this.frames,
      bytes: this.bytes,
      open,
    };
  }
}

const rounds = new _Rounds();
let _closing = false;

function _open(url: string, index: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    let opened = false;
    ws.onopen = () => {
      opened = true;
      resolve(ws);
    };
    ws.onerror = (e) => {
      if (!opened) reject(new Error((e as ErrorEvent).message ?? "ws error"));
      else if (!_closing) rounds.closed(index, -1);
    };
    ws.onclose = (e) => {
      if (opened && !_closing) rounds.closed(index, e.code);
    };
  });
}

async function _nativeClient(
  spec: ClientsSpec,
  subject: string,
  stats: _Stats,
  index: number,
): Promise<WebSocket> {
  const ws = await _open(spec.url, index);
  const reader = new _NatsReader();
  reader.onPing = () => ws.send(_enc.encode("PONG\r\n"));
  reader.onErr = (l) => stats.errors.push(l);
  reader.onMsg = spec.latency
    ? (p) => {
      stats.count(1);
      stats.latencies.push(_now() - JSON.parse(_dec.decode(p)).t);
    }
    : spec.decode
    ? (p) => rounds.msg(index, JSON.parse(_dec.decode(p)).seq)
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
      if (spec.decode) rounds.frame(data.byteLength);
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
  index: number,
): Promise<WebSocket> {
  const ws = await _open(spec.url, index);
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
      } else if (spec.decode) {
        rounds.frame(text.length);
        for (const line of text.split("\n")) {
          const env = JSON.parse(line);
          if (env.op === "msg") rounds.msg(index, env.data.payload.seq);
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

/** Resolves when the armed round is complete, nothing arrived for `idleMs`, or at `deadline`. */
function _wait(idleMs: number, deadline: number): Promise<void> {
  return new Promise((resolve) => {
    const armedAt = _now();
    let lastReceived = -1;
    let lastChange = armedAt;
    const finish = () => {
      clearInterval(timer);
      rounds.onProgress = () => {};
      resolve();
    };
    const timer = setInterval(() => {
      const now = _now();
      if (rounds.received !== lastReceived) {
        lastReceived = rounds.received;
        lastChange = now;
      }
      // Idle counts only once the round's messages flow (the publisher may take a while to start).
      const idle = rounds.received > 0 && now - lastChange > idleMs;
      if (rounds.doneAt > 0 || idle || now > deadline) finish();
    }, 20);
    rounds.onProgress = finish;
    if (rounds.doneAt > 0) finish();
  });
}

async function _main(): Promise<void> {
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let pending = "";
  const sockets: WebSocket[] = [];
  const stats = new _Stats();
  const out = (o: unknown) => Deno.stdout.writeSync(_enc.encode(JSON.stringify(o) + "\n"));
  const openCount = () => sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
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
        rounds.resize(spec.count);
        for (let i = 0; i < spec.count; i += conc) {
          const batch = [];
          for (let j = i; j < Math.min(spec.count, i + conc); j++) {
            const subject = spec.subjects[j % spec.subjects.length];
            batch.push(
              spec.mode === "native"
                ? _nativeClient(spec, subject, stats, j)
                : _gatewayClient(spec, subject, stats, j),
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
      } else if (cmd.op === "arm") {
        rounds.arm(cmd.expect);
        out({ op: "armed" });
      } else if (cmd.op === "wait") {
        await _wait(cmd.idleMs ?? 3000, _now() + (cmd.maxMs ?? 60_000));
        out({ op: "round", ...rounds.report(openCount()) });
      } else if (cmd.op === "report") {
        out({
          op: "report",
          received: stats.received,
          firstAt: stats.firstAt,
          lastAt: stats.lastAt,
          latencies: cmd.latencies ? stats.latencies : undefined,
          errors: stats.errors.slice(0, 5),
          open: openCount(),
        });
      } else if (cmd.op === "close") {
        _closing = true;
        for (const s of sockets) s.close();
        out({ op: "closed" });
        Deno.exit(0);
      }
    }
  }
}

if (import.meta.main) await _main();
