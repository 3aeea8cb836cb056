/** A session's core-NATS subscription (`sub`): one listener on the gateway's shared
 * {@link SubjectHub} entry for its (subject, queue), splicing its sid into the shared envelope.
 * @module */

import { type CapabilitySet, checkSubscribe } from "../auth/capabilities.ts";
import { coreMsgTail } from "../protocol/frames.ts";
import type { SessionSubscription } from "./types.ts";
import type { CoreListener, SubjectHub } from "./subject_hub.ts";

/** What a core subscription needs of its session. */
export interface CoreSubscriptionHost {
  /** Whether the session's outbound queue holds more than its bound. */
  readonly overBound: boolean;
  /** Queues a `msg` envelope (a delivery); false when the session cannot take it. */
  sendMsg(envelope: string): boolean;
}

/**
 * One `sub` of a session. It takes nothing until `active` is set (its op has been answered);
 * a queue member over its bound refuses, so the hub gives the message to another member.
 *
 * @example
 * ```ts
 * const sub = new CoreSubscription(session, hub, "1", "chat.>", undefined);
 * await hub.add("chat.>", undefined, sub);
 * sub.active = true;
 * sub.close();
 * ```
 */
export class CoreSubscription implements SessionSubscription, CoreListener {
  /** Always `core`. */
  readonly kind = "core";
  /** Subscription id. */
  readonly sid: string;
  /** The subject (pattern). */
  readonly target: string;
  /** The client's queue name, if any. */
  readonly queue: string | undefined;
  /** Delivering: set once the client has the subscription's `reply`. */
  active = false;
  #suffix: string;
  #host: CoreSubscriptionHost;
  #hub: SubjectHub;
  #closed = false;

  /** Creates the listener; the caller adds it to the hub. */
  constructor(
    host: CoreSubscriptionHost,
    hub: SubjectHub,
    sid: string,
    subject: string,
    queue: string | undefined,
  ) {
    this.#host = host;
    this.#hub = hub;
    this.sid = sid;
    this.target = subject;
    this.queue = queue;
    this.#suffix = coreMsgTail(sid);
  }

  /** Takes the shared envelope prefix (see {@link CoreListener.deliver}). */
  deliver(prefix: string): boolean {
    if (!this.active) return false;
    // A queue member already over its bound takes no more: the group routes to another member.
    if (this.queue !== undefined && this.#host.overBound) return false;
    return this.#host.sendMsg(prefix + this.#suffix);
  }

  /** Still allowed under new capabilities? */
  allowed(caps: CapabilitySet): boolean {
    return checkSubscribe(caps, this.target).allowed;
  }

  /** Leaves the hub. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.active = false;
    this.#hub.remove(this.target, this.queue, this);
  }
}
