/** Core NATS subscriptions (`sub`): messages on a subject pattern, optionally in a queue group.
 * @module */

import type { ClientFrame, HeaderMap, PayloadEncoding } from "../protocol/types.ts";
import type { Msg } from "./messages.ts";
import type { SubscribeOptions } from "./options.ts";
import { type ClientApi, Subscription } from "./subscription.ts";

/**
 * A core subscription; delivers {@link Msg}s whose payload the application types as `T`.
 *
 * @example
 * ```ts
 * const sub = client.subscribe<{ text: string }>("chat.room1", (m) => show(m.payload.text));
 * await sub.ready;
 * ```
 */
export class CoreSubscription<T = unknown> extends Subscription<Msg<T>> {
  /** Queue group, if any. */
  readonly queue: string | undefined;
  declare readonly kind: "core";

  /** @internal Made by the client. */
  constructor(
    api: ClientApi,
    subject: string,
    handler: ((msg: Msg<T>) => unknown) | undefined,
    options: SubscribeOptions,
  ) {
    super(api, "core", subject, handler);
    this.queue = options.queue;
  }

  protected _envelope(): ClientFrame {
    return { op: "sub", target: this.target, data: this.queue ? { queue: this.queue } : {} };
  }

  /** @internal */
  deliver(d: Record<string, unknown>, subject: string | undefined): void {
    const msg: Msg<T> = { subject: subject ?? this.target, payload: d.payload as T };
    if (d.encoding) msg.encoding = d.encoding as PayloadEncoding;
    if (d.headers) msg.headers = d.headers as HeaderMap;
    if (d.reply) msg.reply = true;
    this._emit(msg);
  }
}
