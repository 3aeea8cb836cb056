/** Connections per user (`--max-conns-per-user`): a counter per user id, taken when a session
 * authenticates and given back when its socket is gone.
 * @module */

/**
 * Counts open connections per user against one limit.
 *
 * @example
 * ```ts
 * const slots = new UserSlots(32);
 * if (!slots.acquire("alice")) refuse();
 * slots.release("alice");
 * ```
 */
export class UserSlots {
  #max: number;
  #held = new Map<string, number>();

  /** Creates the counter with the per-user limit. */
  constructor(max: number) {
    this.#max = max;
  }

  /** Takes a slot for `user`; false when the user is at the limit. */
  acquire(user: string): boolean {
    const n = this.#held.get(user) ?? 0;
    if (n >= this.#max) return false;
    this.#held.set(user, n + 1);
    return true;
  }

  /** Gives a slot of `user` back. */
  release(user: string): void {
    const n = (this.#held.get(user) ?? 1) - 1;
    if (n <= 0) this.#held.delete(user);
    else this.#held.set(user, n);
  }

  /** Slots held, one count per user that holds any (metrics). */
  counts(): IterableIterator<number> {
    return this.#held.values();
  }

  /** Slots `user` holds. */
  held(user: string): number {
    return this.#held.get(user) ?? 0;
  }
}
