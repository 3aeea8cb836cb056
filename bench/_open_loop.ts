/** Open-loop fan-out for `deno task bench`: a publisher process that never waits for subscribers,
 * against a client process that counts, decodes and sequence-checks every message per client.
 *
 * - burst: the publisher sends M messages as fast as it can (flush at the end); the round's time
 *   runs from the first publish until every client has all M.
 * - sustained rate: the publisher offers R msg/s for a few seconds, paced by the wall clock; a
 *   round passes when no client was cut, none misses, repeats or reorders a message, and every
 *   client has every message within a grace period after the last publish. Doubling, then
 *   bisection, finds the highest passing R.
 *
 * Each round samples the CPU time of nats-server, the gateway (if any) and the client process.
 * @module */

import type { ClientsSpec, RoundReport } from "./_clients.ts";
import { ClientProc, type PublisherProc } from "./_line_proc.ts";
import { cpuDeltaNs, type CpuSample, cpuSample } from "./_proc.ts";

/** Where one open-loop scenario runs. */
export interface OpenLoopTarget {
  /** `native` (nats-server's WebSocket listener) or `gateway`. */
  name: "native" | "gateway";
  /** WebSocket URL of the target. */
  url: string;
  /** nats-server's pid. */
  natsPid: number;
  /** The gateway's pid (gateway target only). */
  gatewayPid?: number;
}

/** One measured round. */
export interface RoundResult {
  /** The round passed (rate: sustained; burst: complete, nothing cut or missing). */
  ok: boolean;
  /** Why it did not pass. */
  why: string;
  /** Messages delivered, all clients. */
  deliveries: number;
  /** Delivered msg/s: deliveries over the time from the first publish to the last delivery. */
  rate: number;
  /** From the first publish until every client had every message (or the last delivery). */
  ms: number;
  /** Clients cut during the round, and their close codes. */
  cut: number;
  closeCodes: Record<string, number>;
  /** Messages missing at live clients, and sequence errors (gap, repeat, reorder). */
  missing: number;
  seqErrors: number;
  /** Last delivery after the last publish (ms; rate rounds). */
  tailMs: number;
  /** CPU µs per delivered message, by process. */
  cpuUs: { nats: number; gateway: number; client: number };
  /** Cores each process kept busy over the round (CPU time / wall time): a client process near
   * 1.0 means the figure is bounded by the bench's own client process, not by the server. */
  cores: { nats: number; gateway: number; client: number };
  /** WebSocket frames per delivered message, and bytes of frame data per delivered message. */
  framesPerMsg: number;
  bytesPerMsg: number;
}

/** Clients of one target on one subject, reopened when a round cut or left something behind. */
export class OpenLoopClients {
  readonly target: OpenLoopTarget;
  readonly count: number;
  #subject: string;
  #proc: ClientProc | undefined;
  #dirty = true;
  #cutBefore = 0;

  /** Clients of `target`, `count` of them on `subject`. */
  constructor(target: OpenLoopTarget, count: number, subject: string) {
    this.target = target;
    this.count = count;
    this.#subject = subject;
  }

  /** The client process, (re)opened if the last round left cut clients or messages in flight. */
  async ready(): Promise<ClientProc> {
    if (this.#proc && !this.#dirty) return this.#proc;
    if (this.#proc) await this.#proc.close();
    await settle(this.#pids());
    const proc = new ClientProc();
    const spec: ClientsSpec = {
      mode: this.target.name,
      url: this.target.url,
      subjects: [this.#subject],
      count: this.count,
      latency: false,
      decode: true,
    };
    const r = await proc.cmd({ op: "open", spec });
    if (r.count !== this.count) throw new Error(`opened ${r.count} of ${this.count} clients`);
    this.#proc = proc;
    this.#dirty = false;
    this.#cutBefore = 0;
    return proc;
  }

  #pids(): number[] {
    return [this.target.natsPid, ...(this.target.gatewayPid ? [this.target.gatewayPid] : [])];
  }

  /**
   * One round: arms the clients for `expect` messages each, runs `publish`, waits for the
   * clients, and measures. `publish` answers the epoch ms of its first publish and of its end.
   */
  async round(
    expect: number,
    publish: () => Promise<{ t0: number; t1: number; lagMs?: number }>,
    graceMs: number | undefined,
  ): Promise<RoundResult> {
    const proc = await this.ready();
    await proc.cmd({ op: "arm", expect });
    const pids = {
      nats: this.target.natsPid,
      gateway: this.target.gatewayPid,
      client: proc.pid,
    };
    const wall0 = performance.now();
    const before = await _cpuAll(pids);
    const [p, r] = await Promise.all([
      publish(),
      proc.cmd({ op: "wait", idleMs: 3000, maxMs: 120_000 }) as Promise<RoundReport>,
    ]);
    const after = await _cpuAll(pids);
    const wallNs = (performance.now() - wall0) * 1e6;
    const cut = r.cut - this.#cutBefore;
    this.#cutBefore = r.cut;
    const end = r.doneAt > 0 ? r.doneAt : r.lastAt;
    const ms = Math.max(end - p.t0, 1e-3);
    const tailMs = end - p.t1;
    const d = Math.max(r.received, 1);
    const per = (k: keyof typeof pids) =>
      pids[k] === undefined ? NaN : cpuDeltaNs(before[k]!, after[k]!) / 1000 / d;
    const cores = (k: keyof typeof pids) =>
      pids[k] === undefined ? NaN : cpuDeltaNs(before[k]!, after[k]!) / wallNs;
    const why: string[] = [];
    if (cut > 0) why.push(`${cut} clients cut ${JSON.stringify(r.closeCodes)}`);
    if (r.missing > 0) why.push(`${r.missing} messages missing`);
    if (r.seqErrors > 0) why.push(`${r.seqErrors} sequence errors`);
    if (r.doneAt === 0 && r.missing === 0 && cut === 0) why.push("incomplete");
    if (graceMs !== undefined && r.doneAt > 0 && tailMs > graceMs) {
      why.push(`last delivery ${tailMs.toFixed(0)} ms after the last publish`);
    }
    if (graceMs !== undefined && (p.lagMs ?? 0) > graceMs) {
      why.push(`publisher ${p.lagMs!.toFixed(0)} ms behind its schedule`);
    }
    const ok = why.length === 0;
    // Anything cut, missing or late may leave messages in flight: fresh clients next round.
    if (!ok) this.#dirty = true;
    return {
      ok,
      why: why.join(", "),
      deliveries: r.received,
      rate: r.received / (ms / 1000),
      ms,
      cut,
      closeCodes: r.closeCodes,
      missing: r.missing,
      seqErrors: r.seqErrors,
      tailMs,
      cpuUs: { nats: per("nats"), gateway: per("gateway"), client: per("client") },
      cores: { nats: cores("nats"), gateway: cores("gateway"), client: cores("client") },
      framesPerMsg: r.frames / d,
      bytesPerMsg: r.bytes / d,
    };
  }

  /** Closes the client process. */
  async close(): Promise<void> {
    await this.#proc?.close();
    this.#proc = undefined;
  }
}

async function _cpuAll(
  pids: { nats: number; gateway?: number; client: number },
): Promise<{ nats: CpuSample; gateway?: CpuSample; client: CpuSample }> {
  const [nats, gateway, client] = await Promise.all([
    cpuSample(pids.nats),
    pids.gateway === undefined ? undefined : cpuSample(pids.gateway),
    cpuSample(pids.client),
  ]);
  return { nats, gateway, client };
}

/**
 * Waits until the servers are quiet (less than 5% of a core over 200 ms, at most 15 s), so one
 * round's leftovers (backlogs of cut clients) do not load the next.
 */
export async function settle(pids: number[]): Promise<void> {
  const end = Date.now() + 15_000;
  while (Date.now() < end) {
    const a = await Promise.all(pids.map(cpuSample));
    await new Promise((r) => setTimeout(r, 200));
    const b = await Promise.all(pids.map(cpuSample));
    const used = a.reduce((s, x, i) => s + cpuDeltaNs(x, b[i]), 0);
    if (used < 0.05 * 200e6) return;
  }
}

/** Burst: one warm-up round (discarded), then one measured round of `msgs` messages. */
export async function burst(
  clients: OpenLoopClients,
  pub: PublisherProc,
  subject: string,
  msgs: number,
): Promise<RoundResult> {
  const run = () =>
    clients.round(msgs, () => pub.cmd({ op: "burst", subject, count: msgs }), undefined);
  await run();
  await settle([clients.target.natsPid, clients.target.gatewayPid ?? clients.target.natsPid]);
  return await run();
}

/** The outcome of a rate search. */
export interface RateSearch {
  /** Highest offered msg/s that passed (0: none did). */
  rate: number;
  /** The round at that rate. */
  best?: RoundResult;
  /** Lowest offered msg/s that failed, and why. */
  failedAt: number;
  failedWhy: string;
  /** Every step, for the log. */
  steps: Array<{ rate: number; ok: boolean; why: string }>;
}

/**
 * Highest offered rate with zero loss and zero clients cut: doubling from `start` until a round
 * fails, then bisection, at most `maxSteps` rounds of `roundMs`, stopping when the bracket is
 * within 10%.
 */
export async function rateSearch(
  clients: OpenLoopClients,
  pub: PublisherProc,
  subject: string,
  opts: { start: number; roundMs: number; graceMs: number; maxSteps: number },
): Promise<RateSearch> {
  let lo = 0;
  let hi = Infinity;
  let best: RoundResult | undefined;
  let failedWhy = "";
  const steps: RateSearch["steps"] = [];
  // A short unmeasured round first, so the first step does not pay for warming up.
  await clients.round(
    Math.round(opts.start * 0.5),
    () => pub.cmd({ op: "rate", subject, rate: opts.start, ms: 500 }),
    undefined,
  );
  for (let step = 0; step < opts.maxSteps; step++) {
    if (hi !== Infinity && hi - lo <= 0.1 * hi) break;
    const rate = hi === Infinity ? (lo === 0 ? opts.start : lo * 2) : Math.round((lo + hi) / 2);
    if (rate < 1) break;
    const expect = Math.round(rate * opts.roundMs / 1000);
    const once = () =>
      clients.round(
        expect,
        () => pub.cmd({ op: "rate", subject, rate, ms: opts.roundMs }),
        opts.graceMs,
      );
    let r = await once();
    // The publisher itself starved (other load on the machine) is no verdict on the target.
    if (!r.ok && /^publisher [^,]*$/.test(r.why)) r = await once();
    steps.push({ rate, ok: r.ok, why: r.why });
    if (r.ok) {
      lo = rate;
      best = r;
    } else {
      hi = rate;
      failedWhy = r.why;
    }
  }
  return { rate: lo, best, failedAt: hi, failedWhy, steps };
}
