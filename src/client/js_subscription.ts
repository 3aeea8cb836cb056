/** JetStream subscriptions (`js_sub`): stream order, resumed after reconnects without gap or
 * duplicate, at-least-once with `ack: true`.
 * @module */

import type { ClientFrame, HeaderMap, JsSubData, PayloadEncoding } from "../protocol/types.ts";
import { BadRequestError } from "./errors.ts";
import type { JsMsg } from "./messages.ts";
import type { JsSubscribeOptions } from "./options.ts";
import { type ClientApi, Subscription } from "./subscription.ts";

/**
 * A JetStream subscription; delivers {@link JsMsg}s whose payload the application types as `T`.
 *
 * @example
 * ```ts
 * const sub = client.jsSubscribe<Order>("ORDERS", { deliver: "all", ack: true });
 * for await (const m of sub) {
 *   await handle(m.payload);
 *   m.ack();
 * }
 * ```
 */
export class JsSubscription<T = unknown> extends Subscription<JsMsg<T>> {
  declare readonly kind: "js";
  /** The options it was created with. */
  readonly options: JsSubscribeOptions;
  /** The last stream sequence handed to the handler (resumption starts after it). */
  lastSeq = 0;
  /** Delivered, not yet acknowledged (ack subscriptions). */
  #unacked = new Set<number>();
  readonly #ack: boolean;

  /** @internal Made by the client. */
  constructor(
    api: ClientApi,
    stream: string,
    options: JsSubscribeOptions,
    handler: ((m: JsMsg<T>) => unknown) | undefined,
  ) {
    super(api, "js", stream, handler);
    this.options = options;
    this.#ack = options.ack === true;
  }

  protected _envelope(): ClientFrame {
    const o = this.options;
    const data: JsSubData = {};
    if (o.filter !== undefined) data.filter = o.filter;
    if (o.batch !== undefined) data.batch = o.batch;
    if (o.ack !== undefined) data.ack = o.ack;
    if (o.ackWaitMs !== undefined) data.ack_wait_ms = o.ackWaitMs;
    if (o.durable !== undefined) data.durable = o.durable;
    if (this.lastSeq > 0) {
      // Resume: the first sequence not yet handled (or the oldest unacknowledged one).
      data.start_seq = this.#unacked.size > 0 ? Math.min(...this.#unacked) : this.lastSeq + 1;
    } else if (o.startSeq !== undefined) {
      data.start_seq = o.startSeq;
    } else if (o.startTime !== undefined) {
      data.start_time = o.startTime instanceof Date ? o.startTime.toISOString() : o.startTime;
    } else if (o.deliver !== undefined) {
      data.deliver = o.deliver;
    }
    return { op: "js_sub", target: this.target, data };
  }

  /** @internal */
  deliver(d: Record<string, unknown>): void {
    const seq = d.seq;
    if (typeof seq !== "number") return;
    const sid = this.sid;
    if (seq <= this.lastSeq && !this.#unacked.has(seq)) {
      // Already handled (a resumed or restarted consumer): drop, and settle it if it wants acks.
      if (this.#ack && sid !== undefined) {
        this._api.call({ op: "ack", target: this.target, data: { id: sid, seq } }).catch(() => {});
      }
      return;
    }
    if (seq > this.lastSeq) this.lastSeq = seq;
    if (this.#ack) this.#unacked.add(seq);
    this.failures = 0;
    const msg: JsMsg<T> = {
      seq,
      subject: d.subject as string,
      payload: d.payload as T,
      time: d.time as string,
      ack: () => this.#ackSeq(seq, sid),
    };
    if (d.encoding) msg.encoding = d.encoding as PayloadEncoding;
    if (d.headers) msg.headers = d.headers as HeaderMap;
    if (d.redelivered) msg.redelivered = true;
    this._emit(msg);
  }

  #ackSeq(seq: number, sid: string | undefined): Promise<void> {
    if (!this.#ack) {
      return Promise.reject(
        new BadRequestError(
          "bad_request",
          `ack ${this.target} seq ${seq}: subscription does not take acks`,
        ),
      );
    }
    if (!this.#unacked.delete(seq)) return Promise.resolve();
    if (sid === undefined || sid !== this.sid || !this._api.isOpen()) {
      // Delivered on an earlier connection: the resumed consumer drops and settles it itself.
      return Promise.resolve();
    }
    const p = this._api.call({ op: "ack", target: this.target, data: { id: sid, seq } })
      .then(() => undefined);
    p.catch(() => {});
    return p;
  }
}
