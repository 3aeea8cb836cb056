/** A session's subscriptions: ids, the ones whose op is not answered yet, and re-evaluation
 * under new capabilities (revocation).
 * @module */

import type { CapabilitySet } from "../auth/capabilities.ts";
import type { SessionSubscription } from "./types.ts";

/** Why a subscription ended before its op was answered. */
export type Vanished = "revoked" | "unsubscribed" | "failed";

/**
 * The live subscriptions of one session, by sid. A subscription is *unconfirmed* from its op
 * until that op is answered; one that ends meanwhile records why ({@link Vanished}), so the op
 * still gets its one answer (an error) and a revocation never names a sid the client has not
 * been told.
 *
 * @example
 * ```ts
 * const subs = new SessionSubscriptions();
 * const sid = subs.newSid();
 * subs.addUnconfirmed(sub);
 * const revoked = subs.revoke(newCaps); // sids the client must be told about
 * ```
 */
export class SessionSubscriptions {
  #subs = new Map<string, SessionSubscription>();
  #unconfirmed = new Map<string, Vanished | undefined>();
  #nextSid = 1;

  /** A fresh subscription id. */
  newSid(): string {
    return (this.#nextSid++).toString(36);
  }

  /** Number of subscriptions (placeholders of pending ones included). */
  get size(): number {
    return this.#subs.size;
  }

  /** The subscription with this sid. */
  get(sid: string): SessionSubscription | undefined {
    return this.#subs.get(sid);
  }

  /** Sets (or replaces) the subscription under its sid. */
  set(sub: SessionSubscription): void {
    this.#subs.set(sub.sid, sub);
  }

  /** Adds a subscription whose op is not answered yet. */
  addUnconfirmed(sub: SessionSubscription): void {
    this.#subs.set(sub.sid, sub);
    this.#unconfirmed.set(sub.sid, undefined);
  }

  /** Removes the sid; returns what was there. */
  delete(sid: string): SessionSubscription | undefined {
    const sub = this.#subs.get(sid);
    this.#subs.delete(sid);
    return sub;
  }

  /** Whether the sid's op is still unanswered. */
  unconfirmed(sid: string): boolean {
    return this.#unconfirmed.has(sid);
  }

  /** Why an unconfirmed sid ended, if it did. */
  vanished(sid: string): Vanished | undefined {
    return this.#unconfirmed.get(sid);
  }

  /** Records why an unconfirmed sid ended (nothing for a confirmed one). */
  markVanished(sid: string, why: Vanished): void {
    if (this.#unconfirmed.has(sid)) this.#unconfirmed.set(sid, why);
  }

  /** The sid's op is being answered now: forgets it as unconfirmed, returns why it ended if it did. */
  confirm(sid: string): Vanished | undefined {
    const why = this.#unconfirmed.get(sid);
    this.#unconfirmed.delete(sid);
    return why;
  }

  /**
   * Re-evaluates every subscription under new capabilities: the ones no longer allowed are closed
   * and removed. Returns the sids the client must be told about (`cap_update` `revoked`);
   * unconfirmed ones are answered by their op instead.
   */
  revoke(caps: CapabilitySet): string[] {
    const revoked: string[] = [];
    for (const sub of this.#subs.values()) {
      if (!sub.allowed(caps)) {
        sub.close();
        this.#subs.delete(sub.sid);
        if (this.#unconfirmed.has(sub.sid)) this.#unconfirmed.set(sub.sid, "revoked");
        else revoked.push(sub.sid);
      }
    }
    return revoked;
  }

  /** Counts subscriptions by kind into `into` (metrics). */
  countByKind(into: Record<string, number>): void {
    for (const s of this.#subs.values()) into[s.kind] = (into[s.kind] ?? 0) + 1;
  }

  /** The subscriptions as admin listings show them. */
  list(): Array<{ sid: string; kind: string; target: string }> {
    return [...this.#subs.values()].map((s) => ({ sid: s.sid, kind: s.kind, target: s.target }));
  }

  /** Closes and forgets every subscription. */
  close(): void {
    for (const sub of this.#subs.values()) sub.close();
    this.#subs.clear();
  }
}
