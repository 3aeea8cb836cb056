/** Capabilities of connected users, read from the auth KV bucket and kept live by one watch.
 * Fails closed: a missing, deleted or malformed document grants nothing.
 * @module */

import type { KV, KvEntry } from "@nats-io/kv";
import {
  type Capabilities,
  type CapabilitySet,
  compileCapabilities,
  EMPTY_CAPABILITIES,
  parseCapabilitiesJson,
} from "./capabilities.ts";
import type { Logger } from "./log.ts";
import { userFromKey, userKey, USERS_PREFIX } from "./user_key.ts";

/** A user's effective capabilities at a KV revision. */
export interface UserCapabilities {
  /** The validated document (`{}` when none or invalid). */
  doc: Capabilities;
  /** The compiled engine form. */
  set: CapabilitySet;
  /** KV revision the state came from (0: never written). */
  revision: number;
}

/** Hears changes of one user's capabilities. */
export type CapabilityListener = (caps: UserCapabilities) => void;

interface _UserEntry {
  caps: UserCapabilities;
  listeners: Set<CapabilityListener>;
  loading?: Promise<UserCapabilities>;
}

const _NONE: UserCapabilities = Object.freeze({
  doc: Object.freeze({}) as Capabilities,
  set: EMPTY_CAPABILITIES,
  revision: 0,
});

/**
 * Turns a KV entry into effective capabilities: missing, deleted, purged or malformed → none.
 * `onInvalid` hears why a present document was rejected.
 */
export function capabilitiesFromEntry(
  entry: KvEntry | null,
  onInvalid?: (errors: string[]) => void,
): UserCapabilities {
  if (!entry) return _NONE;
  if (entry.operation !== "PUT" || entry.length === 0) {
    return { ..._NONE, revision: entry.revision };
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(entry.value);
  } catch {
    onInvalid?.(["document is not UTF-8"]);
    return { ..._NONE, revision: entry.revision };
  }
  const parsed = parseCapabilitiesJson(text);
  if (!parsed.ok) {
    onInvalid?.(parsed.errors);
    return { ..._NONE, revision: entry.revision };
  }
  return { doc: parsed.value, set: compileCapabilities(parsed.value), revision: entry.revision };
}

/**
 * Capabilities of the users that have sessions on this gateway. One KV watch on `users.>` per
 * gateway; changes for users without sessions are ignored; a newer revision always wins, so a
 * read racing the watch can never apply stale rights.
 */
export class CapabilityStore {
  #kv: KV;
  #log: Logger;
  #users = new Map<string, _UserEntry>();
  #watchStop?: () => void;
  #closed = false;
  /** Number of capability documents applied from the watch (metrics). */
  reloads = 0;

  private constructor(kv: KV, log: Logger) {
    this.#kv = kv;
    this.#log = log;
  }

  /** Opens the store on a bucket and starts the watch. */
  static async open(kv: KV, log: Logger): Promise<CapabilityStore> {
    const store = new CapabilityStore(kv, log);
    await store.#startWatch();
    return store;
  }

  async #startWatch(): Promise<void> {
    const iter = await this.#kv.watch({ key: `${USERS_PREFIX}>`, include: "updates" });
    this.#watchStop = () => iter.stop();
    (async () => {
      try {
        for await (const e of iter) this.#apply(e);
      } catch (err) {
        if (!this.#closed) this.#log.error("auth bucket watch failed", { error: err });
      }
      if (!this.#closed) this.#log.warn("auth bucket watch ended");
    })();
  }

  #apply(e: KvEntry): void {
    const user = userFromKey(e.key);
    if (user === null) return;
    const entry = this.#users.get(user);
    if (!entry || e.revision <= entry.caps.revision) return;
    entry.caps = capabilitiesFromEntry(e, (errors) => this.#invalid(user, errors));
    this.reloads++;
    for (const l of entry.listeners) {
      try {
        l(entry.caps);
      } catch (err) {
        this.#log.error("capability listener failed", { error: err });
      }
    }
  }

  #invalid(user: string, errors: string[]): void {
    this.#log.warn("invalid capability document: treated as no capabilities", {
      user,
      errors: errors.slice(0, 5),
    });
  }

  /**
   * Registers a listener for `user` and returns the user's current capabilities. Rejects when
   * the bucket cannot be read (the caller fails closed).
   */
  async acquire(user: string, listener: CapabilityListener): Promise<UserCapabilities> {
    let entry = this.#users.get(user);
    if (!entry) {
      entry = { caps: _NONE, listeners: new Set() };
      this.#users.set(user, entry);
    }
    entry.listeners.add(listener);
    try {
      if (entry.caps.revision === 0) {
        entry.loading ??= this.#load(user, entry);
        await entry.loading;
      }
      return entry.caps;
    } catch (err) {
      this.release(user, listener);
      throw err;
    }
  }

  async #load(user: string, entry: _UserEntry): Promise<UserCapabilities> {
    try {
      const got = await this.#kv.get(userKey(user));
      const caps = capabilitiesFromEntry(got, (errors) => this.#invalid(user, errors));
      if (caps.revision > entry.caps.revision || entry.caps.revision === 0) entry.caps = caps;
      return entry.caps;
    } finally {
      entry.loading = undefined;
    }
  }

  /** Removes a listener; the user's entry goes with its last listener. */
  release(user: string, listener: CapabilityListener): void {
    const entry = this.#users.get(user);
    if (!entry) return;
    entry.listeners.delete(listener);
    if (entry.listeners.size === 0) this.#users.delete(user);
  }

  /** Stops the watch. */
  close(): void {
    this.#closed = true;
    this.#watchStop?.();
    this.#users.clear();
  }
}
