/** Soak client process: thousands of protocol v1 WebSockets with churn, mixed ops and revocations.
 * Driven by bench/soak.ts over stdin/stdout (one JSON line per command); counts every error it sees.
 * @module */

import { RawWebSocket } from "./_raw_ws.ts";

/** Slow readers on a busy subject: a third read steadily, a third pause their reader for random
 * periods and resume, a third stop reading for good at a random time (the gateway must cut them
 * with 4008). Each checks the `seq` of every message it gets. */
export interface StallSpec {
  /** Number of slow-reader clients (raw TCP WebSockets, reads only when not stalled). */
  count: number;
  /** The busy subject, published by the orchestrator with payloads `{"seq":n,…}`. */
  subject: string;
  /** A token per client (each user holds few connections). */
  tokens: string[];
  /** Stall-forever start times are drawn from [fromMs, toMs] after `start`. */
  foreverFromMs: number;
  foreverToMs: number;
  /** Recovering clients pause for a random time in [pauseMinMs, pauseMaxMs] … */
  pauseMinMs: number;
  pauseMaxMs: number;
  /** … about every `pauseEveryMs` (random, mean). */
  pauseEveryMs: number;
}

/** What the slow readers saw; see {@link StallSpec}. */
export interface StallReport {
  /** Clients by behaviour. */
  steady: number;
  recovering: number;
  forever: number;
  /** Pauses taken by recovering clients, their total time, the longest. */
  pauses: number;
  pausedMs: number;
  longestPauseMs: number;
  /** Forever-stallers that have stopped reading. */
  foreverStalled: number;
  /** Connections the server ended, by behaviour, and the close codes seen (`eof`: no frame). */
  cut: { steady: number; recovering: number; forever: number };
  closeCodes: Record<string, number>;
  /** Sequence errors (gap, repeat, reorder) at clients not cut, and at cut ones before the cut. */
  seqErrorsNotCut: number;
  seqErrorsCut: number;
  /** Messages received, all slow readers. */
  received: number;
  /** After `close`: clients not cut that did not reach the last published seq, and
   * forever-stallers whose connection was still open (never cut). */
  tailMissing: number;
  notCut: number;
  /** Upgrade or subscribe failures. */
  failures: number;
}

/** What the orchestrator asks this process to run. */
export interface SoakClientsSpec {
  /** Slow readers (optional). */
  stall?: StallSpec;
  /** Gateway WebSocket URL without token (`ws://127.0.0.1:<port>/ws`). */
  url: string;
  /** User ids; slot `i` is user `i % users.length`. */
  users: string[];
  /** A token per user, same order. */
  tokens: string[];
  /** Connections to hold. */
  connections: number;
  /** Time to open all of them (linear ramp). */
  rampMs: number;
  /** Open connections closed (and reopened 0–1 s later) per second, after the ramp. */
  churnPerSec: number;
  /** Mean time between two ops of one connection. */
  opIntervalMs: number;
  /** Core "room" subjects `soak.room.<r>`; slot `i` joins room `i % rooms`. */
  rooms: number;
  /** Every `kvEvery`-th slot holds a `kv_sub` (0: none). */
  kvEvery: number;
  /** Every `jsEvery`-th slot holds a `js_sub` (0: none). */
  jsEvery: number;
  /** Key groups `k.<g>.*` of the KV bucket. */
  kvGroups: number;
  /** Subject groups `soak.js.<g>` of the stream. */
  jsGroups: number;
  /** KV bucket name. */
  bucket: string;
  /** Stream name. */
  stream: string;
  /** `cmd` subject answered by the orchestrator's responder. */
  cmdSubject: string;
}

/** Cumulative counters, reported on every `report`. */
export interface SoakClientsReport {
  /** Sockets open now. */
  open: number;
  /** Sockets being opened now. */
  connecting: number;
  /** Successful opens (first connections and reconnections). */
  opened: number;
  /** Connections closed on purpose for churn. */
  churned: number;
  /** Ops sent, by op. */
  ops: Record<string, number>;
  /** Answers (`reply`/`pong`) received for ops that carried an inbox. */
  answers: number;
  /** `msg` envelopes received, by kind. */
  msgs: { core: number; kv: number; js: number };
  /** `cap_update` envelopes received. */
  capUpdates: number;
  /** Subscription ids revoked by `cap_update`. */
  revoked: number;
  /** `forbidden` / `not_found` answers explained by a capability change racing the op. */
  raceDenials: number;
  /** Unexpected `error` envelopes, by code. */
  protocolErrors: Record<string, number>;
  /** Closes this process did not ask for, by code. */
  unexpectedCloses: Record<string, number>;
  /** WebSocket `error` events. */
  wsErrors: number;
  /** Upgrades that failed. */
  connectFailures: number;
  /** Ops that got no answer within 15 s on a connection that stayed open. */
  lostAnswers: number;
  /** KV revisions or stream sequences delivered out of order on one subscription. */
  orderViolations: number;
  /** Unhandled promise rejections and uncaught error events in this process. */
  unhandled: number;
  /** The first few error descriptions, for the report. */
  samples: string[];
  /** The slow readers, when the spec has any. */
  stall?: StallReport;
}

const _LOST_MS = 15_000;

function _newReport(): SoakClientsReport {
  return {
    open: 0,
    connecting: 0,
    opened: 0,
    churned: 0,
    ops: {},
    answers: 0,
    msgs: { core: 0, kv: 0, js: 0 },
    capUpdates: 0,
    revoked: 0,
    raceDenials: 0,
    protocolErrors: {},
    unexpectedCloses: {},
    wsErrors: 0,
    connectFailures: 0,
    lostAnswers: 0,
    orderViolations: 0,
    unhandled: 0,
    samples: [],
  };
}

const stats = _newReport();

function _sample(what: string): void {
  if (stats.samples.length < 20) stats.samples.push(`${new Date().toISOString()} ${what}`);
}

function _inc(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

type _Kind = "room" | "rev" | "x" | "kv" | "js";

interface _Pending {
  op: string;
  at: number;
  kind?: _Kind;
  sid?: string;
}

// deno-lint-ignore no-explicit-any
type _Env = { op: string; inbox?: string; sid?: string; target?: string; data?: any };

/** One connection slot: connects, subscribes, runs ops, reconnects. */
class _Slot {
  readonly i: number;
  readonly user: string;
  readonly token: string;
  readonly room: number;
  readonly kvGroup: number | undefined;
  readonly jsGroup: number | undefined;
  ws?: WebSocket;
  state: "idle" | "connecting" | "open" = "idle";
  /** The close in progress was asked for (churn or shutdown). */
  closingOnPurpose = false;
  // deno-lint-ignore no-explicit-any
  caps: any = undefined;
  subs = new Map<_Kind, string>();
  subPending = new Set<_Kind>();
  revokedSids = new Set<string>();
  pending = new Map<string, _Pending>();
  lastPos = new Map<string, number>();
  #inbox = 0;
  #spec: SoakClientsSpec;

  constructor(i: number, spec: SoakClientsSpec) {
    this.i = i;
    this.#spec = spec;
    const u = i % spec.users.length;
    this.user = spec.users[u];
    this.token = spec.tokens[u];
    this.room = i % spec.rooms;
    this.kvGroup = spec.kvEvery > 0 && i % spec.kvEvery === 0
      ? (i / spec.kvEvery) % spec.kvGroups
      : undefined;
    this.jsGroup = spec.jsEvery > 0 && i % spec.jsEvery === Math.floor(spec.jsEvery / 2)
      ? Math.floor(i / spec.jsEvery) % spec.jsGroups
      : undefined;
  }

  connect(): void {
    if (this.state !== "idle" || _shuttingDown) return;
    this.state = "connecting";
    this.closingOnPurpose = false;
    stats.connecting++;
    let ws: WebSocket;
    try {
      ws = new WebSocket(`${this.#spec.url}?token=${encodeURIComponent(this.token)}`);
    } catch (err) {
      stats.connecting--;
      this.state = "idle";
      stats.connectFailures++;
      _sample(`connect threw: ${(err as Error).message}`);
      setTimeout(() => this.connect(), 1000);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      stats.connecting--;
      stats.open++;
      stats.opened++;
      this.state = "open";
    };
    ws.onmessage = (e) => this.#onFrame(e.data);
    ws.onerror = (e) => {
      if (!opened) {
        stats.connectFailures++;
        _sample(`connect failed (slot ${this.i}): ${(e as ErrorEvent).message ?? "error"}`);
      } else if (!this.closingOnPurpose) {
        stats.wsErrors++;
        _sample(`ws error (slot ${this.i}): ${(e as ErrorEvent).message ?? "error"}`);
      }
    };
    ws.onclose = (e) => {
      if (opened) stats.open--;
      else stats.connecting--;
      const purposeful = this.closingOnPurpose;
      if (opened && !purposeful) {
        _inc(stats.unexpectedCloses, String(e.code));
        _sample(`unexpected close ${e.code} ${e.reason} (slot ${this.i})`);
      }
      this.#reset();
      this.state = "idle";
      this.ws = undefined;
      if (_shuttingDown) {
        _closedWaiters();
        return;
      }
      setTimeout(() => this.connect(), purposeful ? Math.random() * 1000 : 1000);
    };
  }

  #reset(): void {
    this.caps = undefined;
    this.subs.clear();
    this.subPending.clear();
    this.revokedSids.clear();
    this.pending.clear();
    this.lastPos.clear();
  }

  /** Closes on purpose (churn or shutdown). */
  close(): void {
    if (!this.ws) return;
    this.closingOnPurpose = true;
    try {
      this.ws.close(1000, "bye");
    } catch {
      // already closing
    }
  }

  #send(env: Record<string, unknown>, kind?: _Kind, sid?: string): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const inbox = `i${++this.#inbox}`;
    this.pending.set(inbox, { op: env.op as string, at: performance.now(), kind, sid });
    _inc(stats.ops, env.op as string);
    ws.send(JSON.stringify({ ...env, inbox }));
  }

  #onFrame(data: unknown): void {
    if (typeof data !== "string") {
      _inc(stats.protocolErrors, "binary_frame");
      return;
    }
    for (const line of data.split("\n")) {
      if (line) this.#onEnvelope(JSON.parse(line));
    }
  }

  #onEnvelope(env: _Env): void {
    switch (env.op) {
      case "msg":
        return this.#onMsg(env);
      case "reply":
      case "pong":
        return this.#onAnswer(env);
      case "error":
        return this.#onError(env);
      case "cap_update":
        return this.#onCaps(env);
      default:
        _inc(stats.protocolErrors, `unknown_op_${env.op}`);
    }
  }

  #onMsg(env: _Env): void {
    const t = env.target ?? "";
    if (t.startsWith("kv:")) {
      stats.msgs.kv++;
      if (env.data?.op === "ready") return;
      this.#checkOrder(env.sid!, env.data?.revision);
    } else if (t.startsWith("js:")) {
      stats.msgs.js++;
      this.#checkOrder(env.sid!, env.data?.seq);
    } else stats.msgs.core++;
  }

  #checkOrder(sid: string, pos: number): void {
    const last = this.lastPos.get(sid) ?? 0;
    if (typeof pos !== "number" || pos <= last) {
      stats.orderViolations++;
      _sample(`order violation sid ${sid}: ${pos} after ${last} (slot ${this.i})`);
    }
    this.lastPos.set(sid, pos);
  }

  #onAnswer(env: _Env): void {
    const p = env.inbox === undefined ? undefined : this.pending.get(env.inbox);
    if (!p) {
      _inc(stats.protocolErrors, "unmatched_answer");
      return;
    }
    this.pending.delete(env.inbox!);
    stats.answers++;
    if (p.op === "sub" || p.op === "kv_sub" || p.op === "js_sub") {
      this.subPending.delete(p.kind!);
      const sid = String(env.data?.id);
      // A cap_update may have revoked the sid before its reply arrived.
      if (this.revokedSids.has(sid)) this.#ensureSubs();
      else this.subs.set(p.kind!, sid);
    } else if (p.op === "unsub") {
      if (this.subs.get(p.kind!) === p.sid) this.subs.delete(p.kind!);
      this.subPending.delete(p.kind!);
      // kv/js subscriptions are re-made right after an unsub (consumer churn).
      if (p.kind === "kv" || p.kind === "js") this.#ensureSubs();
    }
  }

  #onError(env: _Env): void {
    const code = String(env.data?.code ?? "unknown");
    const p = env.inbox === undefined ? undefined : this.pending.get(env.inbox);
    if (p) {
      this.pending.delete(env.inbox!);
      if (p.kind) this.subPending.delete(p.kind);
      // A capability change racing the op explains forbidden (sub after a shrink) and not_found
      // (unsub of a sid revoked meanwhile).
      if (code === "forbidden" && (p.kind === "rev" || p.kind === "kv" || p.kind === "js")) {
        stats.raceDenials++;
        return;
      }
      if (code === "not_found" && p.op === "unsub" && this.revokedSids.has(p.sid!)) {
        stats.raceDenials++;
        this.#ensureSubs();
        return;
      }
    }
    _inc(stats.protocolErrors, code);
    _sample(`error ${code} for ${p?.op ?? env.data?.context?.op ?? "?"}: ${env.data?.message}`);
  }

  #onCaps(env: _Env): void {
    stats.capUpdates++;
    const first = this.caps === undefined;
    this.caps = env.data?.capabilities ?? {};
    if (first && Math.random() < 0.5) {
      // Start half of the own-subject toggles "on", so their share is steady from the start.
      this.subPending.add("x");
      this.#send({ op: "sub", target: `soak.x.${this.user}.${this.i}` }, "x");
    }
    for (const sid of env.data?.revoked ?? []) {
      stats.revoked++;
      this.revokedSids.add(sid);
      for (const [k, v] of this.subs) if (v === sid) this.subs.delete(k);
      this.lastPos.delete(sid);
    }
    // Re-subscribe a little later, as a real client would after a re-grant.
    setTimeout(() => this.#ensureSubs(), Math.random() * 500);
  }

  #granted(kind: _Kind): boolean {
    const c = this.caps;
    if (!c) return false;
    switch (kind) {
      case "room":
      case "x":
        return true;
      case "rev":
        return Array.isArray(c.subjects) && c.subjects.includes(`soak.rev.${this.user}`);
      case "kv":
        return this.kvGroup !== undefined && c.buckets?.[this.#spec.bucket] !== undefined;
      case "js":
        return this.jsGroup !== undefined && c.streams?.[this.#spec.stream] !== undefined;
    }
  }

  #ensureSubs(): void {
    if (this.state !== "open" || !this.caps) return;
    for (const kind of ["room", "rev", "kv", "js"] as const) {
      if (this.subs.has(kind) || this.subPending.has(kind) || !this.#granted(kind)) continue;
      this.subPending.add(kind);
      switch (kind) {
        case "room":
          this.#send({ op: "sub", target: `soak.room.${this.room}` }, kind);
          break;
        case "rev":
          this.#send({ op: "sub", target: `soak.rev.${this.user}` }, kind);
          break;
        case "kv":
          this.#send({
            op: "kv_sub",
            target: this.#spec.bucket,
            data: { pattern: `k.${this.kvGroup}.*` },
          }, kind);
          break;
        case "js":
          this.#send({
            op: "js_sub",
            target: this.#spec.stream,
            data: { filter: `soak.js.${this.jsGroup}`, deliver: "new", batch: 50 },
          }, kind);
          break;
      }
    }
  }

  /** One random op. */
  op(): void {
    if (this.state !== "open" || !this.caps) return;
    const r = Math.random();
    if (r < 0.3) {
      this.#send({
        op: "pub",
        target: `soak.room.${this.room}`,
        data: { from: this.i, t: Date.now() },
      });
    } else if (r < 0.5) {
      this.#send({
        op: "cmd",
        target: this.#spec.cmdSubject,
        data: { n: this.i },
        timeout_ms: 5000,
      });
    } else if (r < 0.65) {
      this.#send({ op: "ping", data: { t: Date.now() } });
    } else if (r < 0.9 || (this.kvGroup === undefined && this.jsGroup === undefined)) {
      // Toggle a subscription of the connection's own: a NATS subscription made and dropped.
      if (this.subPending.has("x")) return;
      const sid = this.subs.get("x");
      this.subPending.add("x");
      if (sid) this.#send({ op: "unsub", data: { id: sid } }, "x", sid);
      else this.#send({ op: "sub", target: `soak.x.${this.user}.${this.i}` }, "x");
    } else {
      // Re-make the kv/js subscription: a JetStream consumer deleted and created.
      const kind: _Kind = this.kvGroup !== undefined ? "kv" : "js";
      const sid = this.subs.get(kind);
      if (!sid || this.subPending.has(kind)) return;
      this.subPending.add(kind);
      this.#send({ op: "unsub", data: { id: sid } }, kind, sid);
    }
  }

  /** Counts answers overdue on an open connection. */
  checkLost(now: number): void {
    for (const [inbox, p] of this.pending) {
      if (now - p.at > _LOST_MS) {
        this.pending.delete(inbox);
        if (p.kind) this.subPending.delete(p.kind);
        stats.lostAnswers++;
        _sample(`no answer to ${p.op} in ${_LOST_MS} ms (slot ${this.i})`);
      }
    }
  }
}

function _newStallReport(): StallReport {
  return {
    steady: 0,
    recovering: 0,
    forever: 0,
    pauses: 0,
    pausedMs: 0,
    longestPauseMs: 0,
    foreverStalled: 0,
    cut: { steady: 0, recovering: 0, forever: 0 },
    closeCodes: {},
    seqErrorsNotCut: 0,
    seqErrorsCut: 0,
    received: 0,
    tailMissing: 0,
    notCut: 0,
    failures: 0,
  };
}

const _sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One slow reader: reads the busy subject, pausing as its behaviour says. */
class _Staller {
  readonly kind: "steady" | "recovering" | "forever";
  #spec: StallSpec;
  #token: string;
  #ws?: RawWebSocket;
  #rep: StallReport;
  /** Last seq seen (-1: none yet). */
  lastSeq = -1;
  seqErrors = 0;
  /** The server ended the connection, with this code (`eof` without a close frame). */
  endedWith: string | undefined;
  #stopAt: number;
  #finishing = false;
  #resume: () => void = () => {};
  #loop: Promise<void> = Promise.resolve();

  constructor(i: number, spec: StallSpec, rep: StallReport, started: number) {
    this.kind = (["steady", "recovering", "forever"] as const)[i % 3];
    this.#spec = spec;
    this.#token = spec.tokens[i % spec.tokens.length];
    this.#rep = rep;
    this.#stopAt = started + spec.foreverFromMs +
      Math.random() * Math.max(0, spec.foreverToMs - spec.foreverFromMs);
    rep[this.kind]++;
  }

  async start(url: string): Promise<void> {
    try {
      this.#ws = await RawWebSocket.connect(`${url}?token=${encodeURIComponent(this.#token)}`);
      await this.#ws.send(
        JSON.stringify({ op: "sub", target: this.#spec.subject, inbox: "stall" }),
      );
    } catch (err) {
      this.#rep.failures++;
      _sample(`slow reader: ${(err as Error).message}`);
      return;
    }
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const ws = this.#ws!;
    let nextPause = performance.now() + Math.random() * 2 * this.#spec.pauseEveryMs;
    while (true) {
      const now = performance.now();
      if (!this.#finishing && this.kind === "forever" && now >= this.#stopAt) {
        // Stop reading for good: only `finish` looks at the connection again.
        this.#rep.foreverStalled++;
        await new Promise<void>((r) => this.#resume = r);
      } else if (!this.#finishing && this.kind === "recovering" && now >= nextPause) {
        const ms = this.#spec.pauseMinMs +
          Math.random() * (this.#spec.pauseMaxMs - this.#spec.pauseMinMs);
        this.#rep.pauses++;
        this.#rep.pausedMs += ms;
        this.#rep.longestPauseMs = Math.max(this.#rep.longestPauseMs, ms);
        await _sleep(ms);
        nextPause = performance.now() + Math.random() * 2 * this.#spec.pauseEveryMs;
      }
      let f;
      try {
        f = await ws.read();
      } catch {
        f = null;
      }
      if (f === null) return this.#ended("eof");
      if (f.opcode === 8) {
        return this.#ended(f.data.length >= 2 ? String((f.data[0] << 8) | f.data[1]) : "1005");
      }
      if (f.opcode === 1) this.#onText(new TextDecoder().decode(f.data));
    }
  }

  #onText(text: string): void {
    for (const line of text.split("\n")) {
      const at = line.indexOf('"seq":');
      if (at < 0 || !line.startsWith('{"v":1,"op":"msg"')) continue;
      const seq = parseInt(line.slice(at + 6), 10);
      this.#rep.received++;
      if (this.lastSeq >= 0 && seq !== this.lastSeq + 1) {
        this.seqErrors++;
        _sample(`slow reader (${this.kind}): seq ${seq} after ${this.lastSeq}`);
      }
      this.lastSeq = seq;
    }
  }

  #ended(code: string): void {
    this.endedWith = code;
    this.#ws?.close();
  }

  /**
   * Stops pausing and reads on: a client not cut must reach `lastSeq`; a forever-staller reads
   * what the server left in its socket, which must end in a close (it was cut) before `ms`.
   */
  async finish(lastSeq: number, ms: number): Promise<void> {
    this.#finishing = true;
    this.#resume();
    const end = performance.now() + ms;
    while (this.endedWith === undefined && this.lastSeq < lastSeq && performance.now() < end) {
      await _sleep(50);
    }
    if (this.kind === "forever") {
      // Idle for 3 s without a close: the server never cut it.
      let seen = this.#rep.received;
      let idleSince = performance.now();
      while (this.endedWith === undefined && performance.now() < end) {
        await _sleep(100);
        if (this.#rep.received !== seen) {
          seen = this.#rep.received;
          idleSince = performance.now();
        } else if (performance.now() - idleSince > 3000) break;
      }
    }
    const rep = this.#rep;
    if (this.endedWith !== undefined) {
      rep.cut[this.kind]++;
      _inc(rep.closeCodes, this.endedWith);
      rep.seqErrorsCut += this.seqErrors;
    } else {
      rep.seqErrorsNotCut += this.seqErrors;
      if (this.kind === "forever") rep.notCut++;
      else if (this.lastSeq < lastSeq) rep.tailMissing++;
    }
    await this.#ws?.closeNormally();
    await this.#loop;
  }
}

let _stallers: _Staller[] = [];

/** Starts the slow readers of `spec.stall`. */
function _startStallers(spec: SoakClientsSpec): void {
  const st = spec.stall;
  if (!st || st.count <= 0) return;
  stats.stall = _newStallReport();
  const started = performance.now();
  _stallers = Array.from(
    { length: st.count },
    (_, i) => new _Staller(i, st, stats.stall!, started),
  );
  for (const s of _stallers) s.start(spec.url);
}

/** Lets every slow reader finish (see {@link _Staller.finish}). */
async function _finishStallers(lastSeq: number): Promise<void> {
  await Promise.all(_stallers.map((s) => s.finish(lastSeq, 30_000)));
}

let _shuttingDown = false;
let _closedWaiters: () => void = () => {};

function _run(spec: SoakClientsSpec): { stop: () => Promise<number> } {
  const slots = Array.from({ length: spec.connections }, (_, i) => new _Slot(i, spec));
  const started = performance.now();
  let next = 0;
  const timers: ReturnType<typeof setInterval>[] = [];
  // Ramp: open slots linearly over rampMs, at most 200 upgrades in flight.
  timers.push(setInterval(() => {
    const due = spec.rampMs <= 0 ? slots.length : Math.min(
      slots.length,
      Math.ceil((performance.now() - started) / spec.rampMs * slots.length),
    );
    while (next < due && stats.connecting < 200) slots[next++].connect();
  }, 20));
  // Ops: each open slot does one op per opIntervalMs on average.
  const tickMs = 100;
  timers.push(setInterval(() => {
    const p = tickMs / spec.opIntervalMs;
    for (const s of slots) if (s.state === "open" && Math.random() < p) s.op();
  }, tickMs));
  // Churn, once the ramp is done: close random open slots; they reopen 0–1 s later.
  let churnCarry = 0;
  timers.push(setInterval(() => {
    if (next < slots.length) return;
    churnCarry += spec.churnPerSec;
    let n = Math.floor(churnCarry);
    churnCarry -= n;
    for (let tries = 0; n > 0 && tries < n * 20; tries++) {
      const s = slots[Math.floor(Math.random() * slots.length)];
      if (s.state !== "open" || s.closingOnPurpose) continue;
      s.close();
      stats.churned++;
      n--;
    }
  }, 1000));
  timers.push(setInterval(() => {
    const now = performance.now();
    for (const s of slots) if (s.state === "open") s.checkLost(now);
  }, 1000));
  const stop = async (): Promise<number> => {
    _shuttingDown = true;
    for (const t of timers) clearInterval(t);
    const live = () => slots.filter((s) => s.state !== "idle").length;
    const done = new Promise<void>((resolve) => {
      _closedWaiters = () => {
        if (live() === 0) resolve();
      };
    });
    // Sockets still connecting are closed once open; give everything 20 s.
    const end = Date.now() + 20_000;
    while (live() > 0 && Date.now() < end) {
      for (const s of slots) if (s.state === "open" && !s.closingOnPurpose) s.close();
      await Promise.race([done, new Promise((r) => setTimeout(r, 200))]);
    }
    return live();
  };
  return { stop };
}

async function _main(): Promise<void> {
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    stats.unhandled++;
    _sample(`unhandled rejection: ${String((e.reason as Error)?.stack ?? e.reason)}`);
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    stats.unhandled++;
    _sample(`uncaught error: ${String(e.error?.stack ?? e.message)}`);
  });
  const enc = new TextEncoder();
  const out = (o: unknown) => Deno.stdout.writeSync(enc.encode(JSON.stringify(o) + "\n"));
  let runner: { stop: () => Promise<number> } | undefined;
  let pending = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const cmd = JSON.parse(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      if (cmd.op === "start") {
        runner = _run(cmd.spec as SoakClientsSpec);
        _startStallers(cmd.spec as SoakClientsSpec);
        out({ op: "started" });
      } else if (cmd.op === "report") {
        out({ op: "report", ...stats });
      } else if (cmd.op === "close") {
        if (cmd.fireLast !== undefined) await _finishStallers(cmd.fireLast);
        const left = await runner?.stop() ?? 0;
        out({ op: "closed", left, ...stats });
        return;
      }
    }
  }
}

if (import.meta.main) await _main();
