/** What every subscription kind shares: lifecycle across reconnects, the handler, `ready`,
 * `closed`, and `for await` iteration (as nats.js subscriptions offer).
 * @module */

import type { ClientFrame } from "../protocol/types.ts";
import { HandlerError, type NatsgateError, NotFoundError } from "./errors.ts";

/** What a subscription may ask of its client. */
export interface ClientApi {
  /** Sends the subscribe op for `sub` on the current connection. */
  request(req: { sub: Subscription<unknown>; env: ClientFrame }): void;
  /** Sends an op and settles with its answer. */
  call(env: ClientFrame): Promise<unknown>;
  /** The client is connected and authenticated. */
  isOpen(): boolean;
  /** Forgets `sub` (and unsubscribes it on the gateway). */
  release(sub: Subscription<unknown>): void;
  /** Reports an error through the client's `error` event. */
  report(error: NatsgateError, sub?: Subscription<unknown>): void;
}

/** Detail of a subscription's `closed` event. */
export interface SubscriptionClosedDetail {
  /** Why it ended, unless unsubscribed. */
  error?: NatsgateError;
  /** Ended because the user's capabilities no longer allow it. */
  revoked: boolean;
}

/** A promise with its settle functions. */
export interface Deferred {
  /** The promise. */
  promise: Promise<void>;
  /** Resolves it. */
  resolve(): void;
  /** Rejects it. */
  reject(e: unknown): void;
}

/** A promise whose rejection is never reported as unhandled. */
export function deferred(): Deferred {
  let resolve = () => {};
  let reject: (e: unknown) => void = () => {};
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { resolve, reject, promise };
}

/** The kinds of subscription. */
export type SubscriptionKind = "core" | "kv" | "js";

/**
 * A live subscription of any kind; it survives reconnects until unsubscribed or revoked.
 * `T` is what its handler (or `for await`) receives.
 *
 * @example
 * ```ts
 * const sub = client.subscribe<{ text: string }>("chat.room1");
 * for await (const m of sub) console.log(m.payload.text); // ends when unsubscribed
 * ```
 */
export abstract class Subscription<T> extends EventTarget implements AsyncIterable<T> {
  /** `core`, `kv` or `js`. */
  readonly kind: SubscriptionKind;
  /** Subject, bucket or stream. */
  readonly target: string;
  /** The gateway's id for it on the current connection (changes on reconnect). */
  sid: string | undefined;
  /** Unsubscribed, revoked, refused or the client closed. */
  closed = false;
  /** Why it ended, when it did not end by `unsubscribe()`. */
  error: NatsgateError | undefined;
  /** The gateway accepted it at least once. */
  everSubscribed = false;
  /** Consecutive failures (for the resubscription backoff). */
  failures = 0;
  /** @internal */
  protected readonly _api: ClientApi;
  /** @internal */
  protected readonly _ready: Deferred = deferred();
  // Typed on `unknown` so a Subscription<T> is a Subscription<unknown> (it only ever gets T).
  readonly #handler: ((value: unknown) => unknown) | undefined;
  /** Values waiting for an iterator (buffered only without a handler, or while iterated). */
  #queue: T[] = [];
  #waiters: Array<(r: IteratorResult<unknown>) => void> = [];
  #failers: Array<(e: unknown) => void> = [];
  #iterators = 0;

  /** @internal Made by the client. */
  constructor(
    api: ClientApi,
    kind: SubscriptionKind,
    target: string,
    handler: ((value: T) => unknown) | undefined,
  ) {
    super();
    if (handler !== undefined && typeof handler !== "function") {
      throw new TypeError(`${kind} subscription handler must be a function`);
    }
    this._api = api;
    this.kind = kind;
    this.target = target;
    this.#handler = handler as ((value: unknown) => unknown) | undefined;
  }

  /** Resolves when the subscription is live (KV: after the snapshot); rejects if refused. */
  get ready(): Promise<void> {
    return this._ready.promise;
  }

  /** The subscribe op for the current connection. */
  protected abstract _envelope(): ClientFrame;

  /** @internal Sends the subscribe op on the current connection. */
  subscribe(): void {
    if (this.closed) return;
    this._api.request({ sub: this, env: this._envelope() });
  }

  /** @internal The gateway accepted the subscription under `sid`; `reply` is its answer data. */
  subscribed(sid: string, _reply: Record<string, unknown>): void {
    this.sid = sid;
    this.everSubscribed = true;
    this._onSubscribed();
  }

  /** Hook: the subscription went live on a connection. */
  protected _onSubscribed(): void {
    this._ready.resolve();
  }

  /** @internal The connection dropped; the subscription is renewed on the next one. */
  disconnected(): void {
    this.sid = undefined;
  }

  /** @internal A `msg` frame's data for this subscription. */
  abstract deliver(data: Record<string, unknown>, target: string | undefined): void;

  /** @internal Ends the subscription from the client's side (revoked, refused, client closed). */
  fail(err: NatsgateError, revoked = false): void {
    if (this.closed) return;
    this.closed = true;
    this.error = err;
    this.sid = undefined;
    this._ready.reject(err);
    this.#endIterators(err);
    this.dispatchEvent(
      new CustomEvent<SubscriptionClosedDetail>("closed", { detail: { error: err, revoked } }),
    );
  }

  /** Hands a value to the handler and to iterators; what the handler throws is reported. */
  protected _emit(value: T): void {
    if (this.#waiters.length > 0) {
      this.#failers.shift();
      this.#waiters.shift()!({ value, done: false });
    } else if (this.#handler === undefined || this.#iterators > 0) {
      this.#queue.push(value);
    }
    if (this.#handler === undefined) return;
    try {
      const r = this.#handler(value);
      if (r instanceof Promise || (r && typeof (r as PromiseLike<unknown>).then === "function")) {
        (r as PromiseLike<unknown>).then(undefined, (err) => this.#handlerFailed(err));
      }
    } catch (err) {
      this.#handlerFailed(err);
    }
  }

  #handlerFailed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this._api.report(
      new HandlerError(`${this.kind} subscription ${this.target}: handler failed: ${message}`, {
        cause: err,
      }),
      this,
    );
  }

  /** Stops the subscription; iterators end. */
  unsubscribe(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this._api.release(this);
    this.closed = true;
    this.sid = undefined;
    this._ready.reject(new NotFoundError(`${this.kind} subscription ${this.target}: unsubscribed`));
    this.#endIterators(undefined);
    this.dispatchEvent(
      new CustomEvent<SubscriptionClosedDetail>("closed", { detail: { revoked: false } }),
    );
    return Promise.resolve();
  }

  /**
   * Iterates what the subscription delivers. Ends when it is unsubscribed; throws its error when
   * it is revoked or refused or the client closes.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    this.#iterators++;
    let finished = false;
    const finish = () => {
      if (!finished) this.#iterators--;
      finished = true;
    };
    return {
      next: (): Promise<IteratorResult<T>> => {
        if (this.#queue.length > 0) {
          return Promise.resolve({ value: this.#queue.shift()!, done: false });
        }
        if (this.closed) {
          finish();
          return this.error
            ? Promise.reject(this.error)
            : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => {
          this.#waiters.push(resolve as (r: IteratorResult<unknown>) => void);
          this.#failers.push(reject);
        });
      },
      return: async (): Promise<IteratorResult<T>> => {
        finish();
        await this.unsubscribe();
        return { value: undefined, done: true };
      },
    };
  }

  #endIterators(err: NatsgateError | undefined): void {
    const waiters = this.#waiters;
    const failers = this.#failers;
    this.#waiters = [];
    this.#failers = [];
    for (let i = 0; i < waiters.length; i++) {
      if (err) failers[i](err);
      else waiters[i]({ value: undefined, done: true });
    }
  }
}
