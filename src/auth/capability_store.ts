/** Capabilities of connected users, read from the auth KV bucket and kept live by one watch.
 * Fails closed: a missing, deleted or malformed document grants nothing, and a session is only
 * admitted on capabilities read from the bucket at that moment.
 * @module */

import { DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type Capabilities,
  type CapabilitySet,
  compileCapabilities,
  type CompileOptions,
  EMPTY_CAPABILITIES,
  parseCapabilitiesJson,
} from "./capabilities.ts";
import { OrderedFeed } from "../nats/ordered_feed.ts";
import { readableHeaders } from "../protocol/headers.ts";
import type { Logger } from "../log/log.ts";
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
  /** Watch generation `caps` belongs to (revisions restart when the bucket is re-created). */
  epoch: number;
  listeners: Set<CapabilityListener>;
  loading?: Promise<UserCapabilities>;
}

/** The part of a KV entry capabilities are read from. */
export type CapabilityEntry = Pick<KvEntry, "operation" | "length" | "value" | "revision">;

/** Where the store reads from: the bucket's name and the NATS connection it lives on. */
export interface CapabilitySource {
  /** The gateway's NATS connection. */
  nc: NatsConnection;
  /** Auth bucket name. */
  bucket: string;
}

const _NONE: UserCapabilities = Object.freeze({
  doc: Object.freeze({}) as Capabilities,
  set: EMPTY_CAPABILITIES,
  revision: 0,
});

/**
 * Turns a KV entry into effective capabilities: missing, deleted, purged or malformed → none.
 * `onInvalid` hears why a present document was rejected; `opts` (the auth bucket as a reserved
 * bucket) goes to {@link compileCapabilities}.
 */
export function capabilitiesFromEntry(
  entry: CapabilityEntry | null,
  onInvalid?: (errors: string[]) => void,
  opts: CompileOptions = {},
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
  return {
    doc: parsed.value,
    set: compileCapabilities(parsed.value, opts),
    revision: entry.revision,
  };
}

/**
 * Capabilities of the users that have sessions on this gateway. One watch on `users.>` per
 * gateway (an {@link OrderedFeed}); changes for users without sessions are ignored; a newer
 * revision always wins, so a read racing the watch can never apply stale rights.
 *
 * Admission reads the user's key every time: while NATS is disconnected, or the bucket cannot be
 * read (deleted, no responders, timeout), {@link CapabilityStore.acquire} rejects and the session
 * is refused with `unavailable`, never admitted on cached or empty rights. When the watch loses
 * its consumer (bucket deleted, its NATS node lost), it is started again once the bucket can be
 * read, and every tracked user is read again, so changes made meanwhile are applied.
 */
export class CapabilityStore {
  #kv: KV;
  #log: Logger;
  #src: CapabilitySource;
  #compile: CompileOptions;
  #users = new Map<string, _UserEntry>();
  #feed?: OrderedFeed;
  #statusStop?: () => void;
  #connected = true;
  #epoch = 0;
  /** Creation time of the bucket's stream the watch runs on (tells a re-created bucket). */
  #incarnation?: string;
  #closed = false;
  /** Number of capability documents applied from the watch (metrics). */
  reloads = 0;

  private constructor(kv: KV, log: Logger, src: CapabilitySource) {
    this.#kv = kv;
    this.#log = log;
    this.#src = src;
    this.#compile = { reservedBuckets: [src.bucket] };
  }

  /** Opens the store on a bucket and starts the watch; rejects when the bucket cannot be read. */
  static async open(kv: KV, log: Logger, src: CapabilitySource): Promise<CapabilityStore> {
    const store = new CapabilityStore(kv, log, src);
    store.#incarnation = await store.#created();
    const feed = store.#newFeed();
    await feed.open();
    store.#watchConnection();
    store.#watchLoop(feed);
    return store;
  }

  async #created(): Promise<string> {
    return (await this.#kv.status()).streamInfo.created;
  }

  #newFeed(): OrderedFeed {
    return new OrderedFeed({ nc: this.#src.nc, log: this.#log }, {
      stream: `KV_${this.#src.bucket}`,
      filterSubjects: [`$KV.${this.#src.bucket}.${USERS_PREFIX}>`],
      start: { deliver_policy: DeliverPolicy.New },
      maxMessages: 256,
      replace: false,
    });
  }

  #watchConnection(): void {
    const status = this.#src.nc.status() as AsyncIterable<{ type: string }> & {
      stop?: () => void;
    };
    this.#statusStop = () => status.stop?.();
    (async () => {
      for await (const s of status) {
        if (s.type === "disconnect") this.#connected = false;
        else if (s.type === "reconnect") this.#connected = true;
      }
    })().catch(() => {});
  }

  /** Runs the watch; when it loses its consumer, starts a new one and reads every user again. */
  async #watchLoop(first: OrderedFeed): Promise<void> {
    let feed: OrderedFeed | undefined = first;
    let failures = 0;
    while (!this.#closed) {
      try {
        if (!feed) {
          feed = this.#newFeed();
          this.#feed = feed;
          this.#incarnation = await this.#created();
          await feed.open();
          this.#epoch++;
          this.#log.info("auth bucket watch restarted", { bucket: this.#src.bucket });
          await this.#resync();
        }
        this.#feed = feed;
        failures = 0;
        await feed.run((m) => this.#onMsg(m));
        if (!this.#closed) this.#log.warn("auth bucket watch lost its consumer");
      } catch (err) {
        if (!this.#closed && failures === 0) {
          this.#log.warn("auth bucket watch failed; retrying", { error: err });
        }
        failures++;
      }
      feed?.close();
      feed = undefined;
      if (this.#closed || this.#src.nc.isClosed()) return;
      await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** failures, 2000)));
    }
  }

  #onMsg(m: JsMsg): void {
    const user = userFromKey(m.subject.slice(`$KV.${this.#src.bucket}.`.length));
    if (user === null) return;
    const op = readableHeaders(m)?.get("KV-Operation");
    const entry: CapabilityEntry = {
      operation: op === "DEL" || op === "PURGE" ? op : "PUT",
      length: m.data.length,
      value: m.data,
      revision: m.seq,
    };
    this.#offer(
      user,
      capabilitiesFromEntry(entry, (e) => this.#invalid(user, e), this.#compile),
      this.#epoch,
    );
  }

  /**
   * Applies `caps` (read or watched in watch generation `epoch`) when it is newer than what the
   * user's entry holds (or `force`d), and tells the user's sessions when it changed anything.
   */
  #offer(user: string, caps: UserCapabilities, epoch: number, force = false): void {
    const entry = this.#users.get(user);
    if (!entry) return;
    if (!force && epoch < entry.epoch) return;
    if (!force && epoch === entry.epoch && caps.revision <= entry.caps.revision) return;
    const changed = !_same(caps, entry.caps);
    entry.caps = caps;
    entry.epoch = epoch;
    if (!changed) return;
    this.reloads++;
    for (const l of entry.listeners) {
      try {
        l(entry.caps);
      } catch (err) {
        this.#log.error("capability listener failed", { error: err });
      }
    }
  }

  /** Reads every tracked user again (after the watch restarted). */
  async #resync(): Promise<void> {
    const epoch = this.#epoch;
    await Promise.all([...this.#users.keys()].map(async (user) => {
      try {
        const got = await this.#kv.get(userKey(user));
        this.#offer(
          user,
          capabilitiesFromEntry(got, (e) => this.#invalid(user, e), this.#compile),
          epoch,
        );
      } catch (err) {
        this.#log.warn("cannot read capabilities after the watch restarted", { user, error: err });
      }
    }));
  }

  #invalid(user: string, errors: string[]): void {
    this.#log.warn("invalid capability document: treated as no capabilities", {
      user,
      errors: errors.slice(0, 5),
    });
  }

  /**
   * Whether capabilities can be read right now: NATS connected and the bucket answering a read
   * (what `/readyz` reports, so a balancer stops sending clients that would be refused).
   */
  async readable(): Promise<boolean> {
    if (this.#closed || !this.#connected || this.#src.nc.isClosed()) return false;
    try {
      await this.#kv.get("natsgate.readyz"); // outside users.: no user can own this key
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Registers a listener for `user` and returns the user's current capabilities, read from the
   * bucket now. Rejects when the bucket cannot be read (the caller fails closed).
   */
  async acquire(user: string, listener: CapabilityListener): Promise<UserCapabilities> {
    let entry = this.#users.get(user);
    if (!entry) {
      entry = { caps: _NONE, epoch: this.#epoch, listeners: new Set() };
      this.#users.set(user, entry);
    }
    entry.listeners.add(listener);
    try {
      if (!this.#connected || this.#src.nc.isClosed()) {
        throw new Error("NATS is disconnected: capabilities cannot be read");
      }
      entry.loading ??= this.#load(user, entry);
      await entry.loading;
      return entry.caps;
    } catch (err) {
      this.release(user, listener);
      throw err;
    }
  }

  async #load(user: string, entry: _UserEntry): Promise<UserCapabilities> {
    const epoch = this.#epoch;
    try {
      const got = await this.#kv.get(userKey(user));
      const caps = capabilitiesFromEntry(
        got,
        (errors) => this.#invalid(user, errors),
        this.#compile,
      );
      if (entry.caps.revision === 0 && entry.epoch <= epoch) {
        entry.caps = caps;
        entry.epoch = epoch;
      } else if (caps.revision > entry.caps.revision) {
        this.#offer(user, caps, epoch);
      } else if (!_same(caps, entry.caps) && (await this.#created()) !== this.#incarnation) {
        // The bucket disagrees with the watch at an older revision, and it is not the bucket
        // the watch runs on: it was re-created (revisions start again). What was just read is
        // the truth; the watch moves to the new bucket and reads every user again.
        this.#log.warn("auth bucket was re-created; restarting its watch", {
          bucket: this.#src.bucket,
        });
        this.#offer(user, caps, entry.epoch, true);
        this.#feed?.close();
      }
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
    this.#feed?.close();
    this.#statusStop?.();
    this.#users.clear();
  }
}

function _same(a: UserCapabilities, b: UserCapabilities): boolean {
  return a.revision === b.revision && JSON.stringify(a.doc) === JSON.stringify(b.doc);
}
