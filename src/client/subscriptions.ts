/** The client's live subscriptions: which are live on the current connection under which id,
 * renewing them on each connection, retrying those the gateway could not serve, and ending those
 * it revoked or refused.
 * @module */

import type { ClientFrame, ServerFrame } from "../protocol/types.ts";
import { describeOp } from "./error_map.ts";
import { ForbiddenError, InternalError, NatsgateError } from "./errors.ts";
import type { ClientApi, Subscription } from "./subscription.ts";

type _AnySub = Subscription<unknown>;

/** What the registry needs from its client. */
export interface SubscriptionHost {
  /** Sends an op and settles with its answer (rejects when not connected). */
  call(env: ClientFrame, timeoutMs: number): Promise<ServerFrame>;
  /** The current connection, as an identity (an answer from an older one is ignored). */
  connection(): unknown;
  /** Connected and authenticated. */
  isOpen(): boolean;
  /** Reports an error through the client's `error` event. */
  report(error: NatsgateError, sub?: _AnySub): void;
  /** Dispatches the client's `revoked` event. */
  revoked(subs: _AnySub[]): void;
  /** The backoff before retry `n`. */
  backoff(n: number): number;
  /** Timeout of `unsub` and `ack`. */
  readonly requestTimeoutMs: number;
}

/**
 * The live subscriptions of one client.
 *
 * @example
 * ```ts
 * const subs = new SubscriptionRegistry(host);
 * const sub = subs.add(new CoreSubscription(subs.api, "chat.>", handler, {}));
 * subs.renewAll(); // on each new connection
 * ```
 */
export class SubscriptionRegistry {
  readonly #host: SubscriptionHost;
  readonly #subs = new Set<_AnySub>();
  readonly #bySid = new Map<string, _AnySub>();
  /** Resubscription timers. */
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** What subscriptions may ask of the client. */
  readonly api: ClientApi;

  /** Creates an empty registry. */
  constructor(host: SubscriptionHost) {
    this.#host = host;
    this.api = {
      request: (req) => this.#subscribe(req.sub, req.env),
      call: (env) => host.call(env, host.requestTimeoutMs),
      isOpen: () => host.isOpen(),
      release: (sub) => this.release(sub),
      report: (error, sub) => host.report(error, sub),
    };
  }

  /** Every live subscription. */
  get all(): _AnySub[] {
    return [...this.#subs];
  }

  /** Adds `sub`, subscribing it now when connected. */
  add<S extends _AnySub>(sub: S): S {
    this.#subs.add(sub);
    if (this.#host.isOpen()) sub.subscribe();
    return sub;
  }

  /** The subscription live under `sid` on this connection. */
  bySid(sid: string): _AnySub | undefined {
    return this.#bySid.get(sid);
  }

  /** A new connection is authenticated: subscribe everything again. */
  renewAll(): void {
    for (const sub of this.#subs) {
      sub.failures = 0;
      sub.subscribe();
    }
  }

  /** The connection ended: every id is void; subscriptions wait for the next one. */
  disconnected(): void {
    this.#bySid.clear();
    for (const sub of this.#subs) sub.disconnected();
  }

  /** Forgets `sub` and unsubscribes it on the gateway. */
  release(sub: _AnySub): void {
    this.#subs.delete(sub);
    const sid = sub.sid;
    if (sid !== undefined && this.#bySid.get(sid) === sub) {
      this.#bySid.delete(sid);
      this.#unsub(sid);
    }
  }

  /** Ends the subscriptions a `cap_update` revoked; returns them. */
  revoke(sids: readonly string[]): _AnySub[] {
    const revoked: _AnySub[] = [];
    for (const sid of sids) {
      const sub = this.#bySid.get(sid);
      if (!sub) continue;
      this.#bySid.delete(sid);
      this.#subs.delete(sub);
      const op = sub.kind === "core" ? "sub" : `${sub.kind}_sub`;
      sub.fail(
        new ForbiddenError(`${op} ${sub.target}: revoked (capabilities changed)`, {
          context: { op, target: sub.target },
        }),
        true,
      );
      revoked.push(sub);
    }
    return revoked;
  }

  /**
   * A stream subscription failed on the gateway after it started (an `error` without inbox or
   * sid): resubscribe every live one of that kind and target; each resumes where it was.
   */
  streamFailed(op: string | undefined, target: string | undefined): void {
    if ((op !== "kv_sub" && op !== "js_sub") || target === undefined) return;
    const kind = op === "kv_sub" ? "kv" : "js";
    for (const sub of this.#subs) {
      if (sub.kind === kind && sub.target === target) this.#resubscribeLater(sub);
    }
  }

  /** The client closed: every subscription ends with `err`. */
  failAll(err: NatsgateError): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const subs = [...this.#subs];
    this.#subs.clear();
    for (const sub of subs) sub.fail(err);
  }

  /** Sends a subscribe op for `sub`; on success maps the new sid to it. */
  #subscribe(sub: _AnySub, env: ClientFrame): void {
    if (!this.#subs.has(sub)) return;
    const host = this.#host;
    const conn = host.connection();
    const current = () => host.connection() === conn && host.isOpen();
    host.call(env, Infinity).then((e) => {
      if (!current()) return; // the connection changed: resubscribed there
      const data = (typeof e.data === "object" && e.data !== null ? e.data : {}) as Record<
        string,
        unknown
      >;
      const sid = data.id;
      if (typeof sid !== "string") {
        sub.fail(new InternalError(`${describeOp(env)}: subscribe reply without an id`));
        return;
      }
      if (!this.#subs.has(sub)) {
        this.#unsub(sid);
        return;
      }
      this.#bySid.set(sid, sub);
      sub.subscribed(sid, data);
    }, (err) => {
      if (!current() || !this.#subs.has(sub)) return; // renewed on reconnect
      if (!(err instanceof NatsgateError)) return;
      if (err.code === "unavailable") {
        // The gateway cannot reach NATS right now: try again later on this connection.
        host.report(err, sub);
        this.#resubscribeLater(sub);
        return;
      }
      if (err.code === "forbidden" && sub.everSubscribed) {
        // Capabilities shrank while we were away: the same as a live revocation.
        this.release(sub);
        sub.fail(err, true);
        host.revoked([sub]);
        return;
      }
      this.release(sub);
      sub.fail(err);
      host.report(err, sub);
    });
  }

  /** Drops a server subscription, ignoring the answer (it may already be gone). */
  #unsub(sid: string): void {
    if (!this.#host.isOpen()) return;
    this.#host.call({ op: "unsub", data: { id: sid } }, this.#host.requestTimeoutMs)
      .catch(() => {});
  }

  #resubscribeLater(sub: _AnySub): void {
    const sid = sub.sid;
    if (sid !== undefined) {
      this.#bySid.delete(sid);
      // The server may still hold it (we cannot tell which one failed): drop it quietly.
      this.#unsub(sid);
    }
    sub.disconnected();
    const conn = this.#host.connection();
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#host.connection() === conn && this.#host.isOpen() && this.#subs.has(sub)) {
        sub.subscribe();
      }
    }, this.#host.backoff(sub.failures++));
    this.#timers.add(timer);
  }
}
