/** The client's token: the one given, or fresh ones from `getToken()` on each reconnection and
 * ahead of expiry.
 * @module */

import { UnauthorizedError } from "./errors.ts";
import type { TokenSource } from "./options.ts";
import { tokenRefreshDelay } from "./token.ts";

/**
 * Holds the current token and the refresh timer.
 *
 * @example
 * ```ts
 * const tokens = new TokenKeeper(undefined, () => fetchToken());
 * const t = await tokens.current(false);
 * tokens.schedule(() => refresh()); // 30 s before exp (80 % of short lifetimes)
 * ```
 */
export class TokenKeeper {
  #token: string | undefined;
  readonly #source: TokenSource | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Starts with `token` (if any) and asks `source` (if any) for fresh ones. */
  constructor(token: string | undefined, source: TokenSource | undefined) {
    this.#token = token;
    this.#source = source;
  }

  /** A token source was given: tokens are refreshed and a 4003 is retried. */
  get refreshes(): boolean {
    return this.#source !== undefined;
  }

  /** The token to present; `fresh` asks the source again (when there is one). */
  async current(fresh: boolean): Promise<string> {
    if (this.#source && (fresh || this.#token === undefined)) {
      const t = await this.#source();
      if (typeof t !== "string" || t === "") {
        throw new UnauthorizedError("getToken() returned no token");
      }
      this.#token = t;
    }
    return this.#token as string;
  }

  /** Calls `due` when the current token should be refreshed (never without a source or `exp`). */
  schedule(due: () => void): void {
    this.cancel();
    if (!this.#source || this.#token === undefined) return;
    const delay = tokenRefreshDelay(this.#token);
    if (delay === undefined) return;
    this.#timer = setTimeout(due, Math.max(1000, Math.min(delay, 2 ** 31 - 1)));
  }

  /** Calls `due` after `ms` (a failed refresh tries again). */
  retryLater(due: () => void, ms = 5000): void {
    this.cancel();
    this.#timer = setTimeout(due, ms);
  }

  /** Stops the refresh timer. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
