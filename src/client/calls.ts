/** Ops awaiting their answer: one entry per inbox, settled by the `reply`/`error` echoing it,
 * by a timeout, or by the connection's end.
 * @module */

import type { ServerFrame } from "../protocol/types.ts";
import type { NatsgateError } from "./errors.ts";

interface _Pending {
  what: string;
  resolve(env: ServerFrame): void;
  reject(err: unknown): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The pending ops of one client. Inboxes are `c<n>` in base 36, unique for the client's life.
 *
 * @example
 * ```ts
 * const calls = new PendingCalls();
 * const inbox = calls.inbox();
 * const answer = calls.wait(inbox, "cmd svc.time", 5000, () => new TimeoutError("no answer"));
 * calls.settle({ v: 1, op: "reply", inbox, data: {} }, errorFromFrame);
 * ```
 */
export class PendingCalls {
  #next = 0;
  #pending = new Map<string, _Pending>();

  /** A fresh inbox. */
  inbox(): string {
    return `c${(++this.#next).toString(36)}`;
  }

  /**
   * Waits for the answer to `inbox` (the op described by `what`, e.g. "cmd svc.time"); after
   * `timeoutMs` (if finite) rejects with `onTimeout()`.
   */
  wait(
    inbox: string,
    what: string,
    timeoutMs: number,
    onTimeout: () => NatsgateError,
  ): Promise<ServerFrame> {
    return new Promise((resolve, reject) => {
      const pending: _Pending = { what, resolve, reject, timer: undefined };
      if (Number.isFinite(timeoutMs)) {
        pending.timer = setTimeout(() => {
          if (this.#pending.get(inbox) !== pending) return;
          this.#pending.delete(inbox);
          reject(onTimeout());
        }, timeoutMs);
      }
      this.#pending.set(inbox, pending);
    });
  }

  /**
   * Settles the op `env` answers: resolves on `reply`/`pong`, rejects with `toError(data)` on
   * `error`. False when no op waits for that inbox.
   */
  settle(env: ServerFrame, toError: (data: unknown) => NatsgateError): boolean {
    const pending = env.inbox === undefined ? undefined : this.#pending.get(env.inbox);
    if (!pending) return false;
    this.#pending.delete(env.inbox!);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    if (env.op === "error") pending.reject(toError(env.data));
    else pending.resolve(env);
    return true;
  }

  /** Rejects every pending op with `err(what)` (the connection ended). */
  rejectAll(err: (what: string) => NatsgateError): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(err(p.what));
    }
  }
}
