/** Admission per client address: open connections, upgrade rate, and a growing penalty for abuse.
 * Decided from the request head, before a session or any per-client state is created.
 * @module */

/** Options of {@link IpGate}. */
export interface IpGateOptions {
  /** Open WebSocket connections per client address (default: unlimited). */
  maxConnsPerIp?: number;
  /** Upgrades per second per client address, with a burst of twice that (default: unlimited). */
  upgradeRatePerIp?: number;
  /** First penalty after a close for sustained abuse (default 1 s); doubles per repeat. */
  penaltyBaseMs?: number;
  /** Longest penalty (default 60 s). */
  penaltyMaxMs?: number;
}

/** Why {@link IpGate.admit} refused. */
export type IpRefusal = "conns_per_ip" | "upgrade_rate" | "penalty";

interface _Entry {
  conns: number;
  tokens: number;
  last: number;
  /** Refuse upgrades until then. */
  bannedUntil: number;
  /** Current penalty length; doubles while abuse repeats, resets after a quiet penalty span. */
  penaltyMs: number;
}

/**
 * Per-address admission. `admit` either refuses with a reason or counts a connection, which the
 * caller gives back with `release` exactly once when its socket is gone.
 *
 * @example
 * ```ts
 * const gate = new IpGate({ maxConnsPerIp: 1 });
 * gate.admit("203.0.113.9", 0); // undefined: admitted
 * gate.admit("203.0.113.9", 0); // "conns_per_ip"
 * gate.release("203.0.113.9");
 * ```
 */
export class IpGate {
  #maxConns: number;
  #rate: number;
  #burst: number;
  #base: number;
  #maxPenalty: number;
  #entries = new Map<string, _Entry>();

  /** Creates a gate. */
  constructor(opts: IpGateOptions = {}) {
    this.#maxConns = opts.maxConnsPerIp ?? Infinity;
    this.#rate = opts.upgradeRatePerIp ?? Infinity;
    this.#burst = Number.isFinite(this.#rate) ? Math.max(1, 2 * this.#rate) : Infinity;
    this.#base = opts.penaltyBaseMs ?? 1000;
    this.#maxPenalty = opts.penaltyMaxMs ?? 60_000;
  }

  /** Addresses with state (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }

  #entry(ip: string, now: number): _Entry {
    let e = this.#entries.get(ip);
    if (!e) {
      e = { conns: 0, tokens: this.#burst, last: now, bannedUntil: 0, penaltyMs: 0 };
      this.#entries.set(ip, e);
    }
    return e;
  }

  /** Admits one upgrade from `ip` at `now` (ms), or says why not. Admitted ones are counted. */
  admit(ip: string, now: number): IpRefusal | undefined {
    const e = this.#entry(ip, now);
    let refusal: IpRefusal | undefined;
    if (now < e.bannedUntil) refusal = "penalty";
    else if (e.conns >= this.#maxConns) refusal = "conns_per_ip";
    else if (Number.isFinite(this.#rate)) {
      e.tokens = Math.min(this.#burst, e.tokens + ((now - e.last) * this.#rate) / 1000);
      e.last = now;
      if (e.tokens < 1) refusal = "upgrade_rate";
      else e.tokens -= 1;
    }
    if (refusal === undefined) e.conns++;
    else this.#forget(ip, e, now);
    return refusal;
  }

  /** Gives back a connection counted by `admit`. */
  release(ip: string, now = performance.now()): void {
    const e = this.#entries.get(ip);
    if (!e) return;
    if (e.conns > 0) e.conns--;
    this.#forget(ip, e, now);
  }

  /**
   * Records a close for sustained abuse: refuses `ip` for a penalty that doubles each time the
   * address comes back and abuses again, so reconnecting buys nothing.
   */
  penalize(ip: string, now: number): number {
    const e = this.#entry(ip, now);
    // A penalty that lapsed long ago (twice its length) starts over from the base.
    const lapsed = e.bannedUntil > 0 && now - e.bannedUntil > 2 * e.penaltyMs;
    e.penaltyMs = e.penaltyMs === 0 || lapsed
      ? this.#base
      : Math.min(this.#maxPenalty, e.penaltyMs * 2);
    e.bannedUntil = now + e.penaltyMs;
    return e.penaltyMs;
  }

  /** Drops an entry that holds nothing worth remembering. */
  #forget(ip: string, e: _Entry, now: number): void {
    if (e.conns > 0) return;
    if (e.bannedUntil > 0 && now - e.bannedUntil <= 2 * e.penaltyMs) return;
    if (Number.isFinite(this.#burst)) {
      const refill = Math.min(this.#burst, e.tokens + ((now - e.last) * this.#rate) / 1000);
      if (refill < this.#burst) return;
    }
    this.#entries.delete(ip);
  }

  /** Drops idle entries (call now and then: refused addresses leave state until their rate refills). */
  sweep(now: number): void {
    for (const [ip, e] of this.#entries) this.#forget(ip, e, now);
  }
}
