/** Capabilities of connected users and the roles they hold, read from the auth KV bucket and
 * kept live by one watch of `users.>` and `roles.>`. Fails closed: a missing, deleted or malformed
 * document grants nothing (a role: that role's part only), and a session is only admitted on a
 * user document read from the bucket at that moment.
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
import { heldRoles, roleFromKey, roleKey, type RolePolicy, ROLES_PREFIX } from "./roles.ts";
import { EffectiveCache, type EffectiveCapabilities } from "./effective.ts";

/** A user's effective capabilities at a KV revision. */
export interface UserCapabilities {
  /** The validated document (`{}` when none or invalid). */
  doc: Capabilities;
  /** The compiled engine form. */
  set: CapabilitySet;
  /** KV revision the state came from (0: never written). */
  revision: number;
}

/**
 * What a session computes its effective capabilities from (see effective.ts): the user's own
 * document, the role documents the store holds, and the gateway's role policy.
 */
export interface CapabilityView extends UserCapabilities {
  /** Role documents by name (null: deleted or malformed; absent: not held by anyone here). */
  roles: ReadonlyMap<string, Capabilities | null>;
  /** `--default-role` and `--jwt-roles-claim`. */
  policy: RolePolicy;
}

/** Hears changes of one user's capabilities or of a role the session holds. */
export type CapabilityListener = (caps: CapabilityView) => void;

/** One session's registration: its listener, its token claims and the roles it depends on. */
interface _Reg {
  user: string;
  listener: CapabilityListener;
  claims?: Readonly<Record<string, unknown>>;
  deps: Set<string>;
}

interface _UserEntry {
  caps: UserCapabilities;
  /** Watch generation `caps` belongs to (revisions restart when the bucket is re-created). */
  epoch: number;
  regs: Map<CapabilityListener, _Reg>;
  loading?: Promise<UserCapabilities>;
}

interface _RoleEntry {
  doc: Capabilities | null;
  revision: number;
  epoch: number;
  /** Read from the bucket or the watch at least once. */
  loaded: boolean;
  holders: Set<_Reg>;
  loading?: Promise<void>;
}

/** Options of {@link CapabilityStore.acquire}. */
export interface AcquireOptions {
  /** The session's token claims (for `--jwt-roles-claim`). */
  claims?: Readonly<Record<string, unknown>>;
}

/** The part of a KV entry capabilities are read from. */
export type CapabilityEntry = Pick<KvEntry, "operation" | "length" | "value" | "revision">;

/** Where the store reads from: the bucket's name and the NATS connection it lives on. */
export interface CapabilitySource {
  /** The gateway's NATS connection. */
  nc: NatsConnection;
  /** Auth bucket name. */
  bucket: string;
  /** `--default-role` and `--jwt-roles-claim`. */
  policy?: RolePolicy;
}

const _NONE: UserCapabilities = Object.freeze({
  doc: Object.freeze({}) as Capabilities,
  set: EMPTY_CAPABILITIES,
  revision: 0,
});

/**
 * Turns a KV entry of a role into its document: missing, deleted, purged or malformed → null
 * (grants nothing). `onInvalid` hears why a present document was rejected.
 */
export function roleFromEntry(
  entry: CapabilityEntry | null,
  onInvalid?: (errors: string[]) => void,
): Capabilities | null {
  if (!entry || entry.operation !== "PUT" || entry.length === 0) return null;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(entry.value);
  } catch {
    onInvalid?.(["document is not UTF-8"]);
    return null;
  }
  const parsed = parseCapabilitiesJson(text, { kind: "role" });
  if (!parsed.ok) {
    onInvalid?.(parsed.errors);
    return null;
  }
  return parsed.value;
}

/**
 * Turns a KV entry into the user's own capabilities: missing, deleted, purged or malformed → none.
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
  #roles = new Map<string, _RoleEntry>();
  /** Role documents of `#roles` that are loaded (what views hand out). */
  #roleDocs = new Map<string, Capabilities | null>();
  #policy: RolePolicy;
  #effective = new EffectiveCache();
  #feed?: OrderedFeed;
  #statusStop?: () => void;
  #connected = true;
  #epoch = 0;
  /** Creation time of the bucket's stream the watch runs on (tells a re-created bucket). */
  #incarnation?: string;
  #closed = false;
  /** Pending re-reads of documents that could not be read after the watch restarted. */
  #retryTimers = new Set<ReturnType<typeof setTimeout>>();
  /** Number of capability documents applied from the watch (metrics). */
  reloads = 0;

  private constructor(kv: KV, log: Logger, src: CapabilitySource) {
    this.#kv = kv;
    this.#log = log;
    this.#src = src;
    this.#compile = { reservedBuckets: [src.bucket] };
    this.#policy = Object.freeze({ ...src.policy });
  }

  /** The gateway's role policy. */
  get policy(): RolePolicy {
    return this.#policy;
  }

  /** Compile options for effective capabilities (the auth bucket is reserved). */
  get compileOptions(): CompileOptions {
    return this.#compile;
  }

  /**
   * A session's effective capabilities under `view` (see effective.ts), shared between sessions
   * when no template is involved.
   */
  effective(
    view: CapabilityView,
    user: string,
    session: string,
    claims?: Readonly<Record<string, unknown>>,
  ): EffectiveCapabilities {
    return this.#effective.get({
      user,
      session,
      claims,
      userDoc: view.doc,
      roles: view.roles,
      policy: view.policy,
      compile: this.#compile,
    });
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
      filterSubjects: [
        `$KV.${this.#src.bucket}.${USERS_PREFIX}>`,
        `$KV.${this.#src.bucket}.${ROLES_PREFIX}>`,
      ],
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
    })().catch((err) => this.#log.debug("NATS status stream ended", { error: err }));
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
    const key = m.subject.slice(`$KV.${this.#src.bucket}.`.length);
    const op = readableHeaders(m)?.get("KV-Operation");
    const entry: CapabilityEntry = {
      operation: op === "DEL" || op === "PURGE" ? op : "PUT",
      length: m.data.length,
      value: m.data,
      revision: m.seq,
    };
    const role = roleFromKey(key);
    if (role !== null) {
      this.#offerRole(role, this.#roleDoc(role, entry), entry.revision, this.#epoch, true);
      return;
    }
    const user = userFromKey(key);
    if (user === null) return;
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
    for (const reg of entry.regs.values()) {
      // The document may name other roles: load those first, then tell the session.
      const loads = this.#bind(reg);
      // Told at once: what the edit took away goes now, not after a role read. Roles not loaded
      // yet grant nothing meanwhile (fail closed); the session is told again once they load.
      this.#notify(reg);
      if (loads !== null) {
        // A role that cannot be read now grants nothing until the watch brings it (fail closed).
        const done = () => entry.regs.get(reg.listener) === reg && this.#notify(reg);
        loads.then(done, (err) => {
          this.#log.warn("cannot read a role the user now holds", { user, error: err });
          done();
        });
      }
    }
  }

  #notify(reg: _Reg): void {
    const entry = this.#users.get(reg.user);
    if (!entry) return;
    try {
      reg.listener(this.#view(entry));
    } catch (err) {
      this.#log.error("capability listener failed", { error: err });
    }
  }

  #view(entry: _UserEntry): CapabilityView {
    return { ...entry.caps, roles: this.#roleDocs, policy: this.#policy };
  }

  #roleDoc(name: string, entry: CapabilityEntry | null): Capabilities | null {
    return roleFromEntry(entry, (errors) => {
      this.#log.warn("invalid role document: the role grants nothing", {
        role: name,
        errors: errors.slice(0, 5),
      });
    });
  }

  /**
   * Applies a role's document (read or watched in generation `epoch`) when it is newer than what
   * the store holds, and tells every session holding the role when it changed.
   */
  #offerRole(
    name: string,
    doc: Capabilities | null,
    revision: number,
    epoch: number,
    announceFirst = false,
  ): void {
    const role = this.#roles.get(name);
    if (!role) return;
    if (role.loaded) {
      if (epoch < role.epoch) return;
      if (epoch === role.epoch && revision <= role.revision) return;
    }
    const changed = !role.loaded || role.revision !== revision ||
      JSON.stringify(role.doc) !== JSON.stringify(doc);
    const wasLoaded = role.loaded;
    role.doc = doc;
    role.revision = revision;
    role.epoch = epoch;
    role.loaded = true;
    this.#roleDocs.set(name, doc);
    // A first read is announced only when it comes from the watch (a role that could not be
    // read at admission); readers at admission or after a user change announce it themselves.
    if (!changed || (!wasLoaded && !announceFirst)) return;
    this.reloads++;
    for (const reg of role.holders) this.#notify(reg);
  }

  /**
   * Points `reg` at the roles it holds now (user document, default role, its claims), and starts
   * reading the ones not loaded yet: their promise, or null when every one is loaded.
   */
  #bind(reg: _Reg): Promise<void> | null {
    const entry = this.#users.get(reg.user);
    const names = new Set(
      heldRoles(entry?.caps.doc.roles, this.#policy, reg.claims).map((h) => h.name),
    );
    for (const old of reg.deps) if (!names.has(old)) this.#unhold(old, reg);
    const loads: Promise<void>[] = [];
    for (const name of names) {
      let role = this.#roles.get(name);
      if (!role) {
        role = { doc: null, revision: 0, epoch: this.#epoch, loaded: false, holders: new Set() };
        this.#roles.set(name, role);
      }
      role.holders.add(reg);
      if (!role.loaded) loads.push(role.loading ??= this.#loadRole(name, role));
    }
    reg.deps = names;
    return loads.length === 0 ? null : Promise.all(loads).then(() => {});
  }

  #unhold(name: string, reg: _Reg): void {
    const role = this.#roles.get(name);
    if (!role) return;
    role.holders.delete(reg);
    if (role.holders.size === 0) {
      this.#roles.delete(name);
      this.#roleDocs.delete(name);
    }
  }

  async #loadRole(name: string, role: _RoleEntry): Promise<void> {
    const epoch = this.#epoch;
    try {
      const got = await this.#kv.get(roleKey(name));
      this.#offerRole(name, this.#roleDoc(name, got), got?.revision ?? 0, epoch);
    } finally {
      role.loading = undefined;
    }
  }

  /** Reads every tracked user and role again (after the watch restarted). */
  async #resync(): Promise<void> {
    const epoch = this.#epoch;
    await Promise.all([...this.#roles.keys()].map(async (name) => {
      try {
        const got = await this.#kv.get(roleKey(name));
        this.#offerRole(name, this.#roleDoc(name, got), got?.revision ?? 0, epoch, true);
      } catch (err) {
        // Edits made while the watch was down are unknown: the role grants nothing until read.
        this.#log.warn(
          "cannot read a role after the watch restarted: it grants nothing until read",
          {
            role: name,
            error: err,
          },
        );
        this.#offerRole(name, null, 0, epoch, true);
        this.#retry(() => this.#resyncRole(name));
      }
    }));
    await Promise.all([...this.#users.keys()].map(async (user) => {
      try {
        const got = await this.#kv.get(userKey(user));
        this.#offer(
          user,
          capabilitiesFromEntry(got, (e) => this.#invalid(user, e), this.#compile),
          epoch,
        );
      } catch (err) {
        // Edits made while the watch was down are unknown, and the new watch starts at new
        // changes only: fail closed until a read succeeds.
        this.#log.warn("cannot read capabilities after the watch restarted: none until read", {
          user,
          error: err,
        });
        this.#offer(user, _NONE, epoch, true);
        this.#retry(() => this.#resyncUser(user));
      }
    }));
  }

  async #resyncRole(name: string): Promise<void> {
    if (!this.#roles.has(name)) return;
    const epoch = this.#epoch;
    const got = await this.#kv.get(roleKey(name));
    this.#offerRole(name, this.#roleDoc(name, got), got?.revision ?? 0, epoch, true);
  }

  async #resyncUser(user: string): Promise<void> {
    if (!this.#users.has(user)) return;
    const epoch = this.#epoch;
    const got = await this.#kv.get(userKey(user));
    this.#offer(
      user,
      capabilitiesFromEntry(got, (e) => this.#invalid(user, e), this.#compile),
      epoch,
    );
  }

  /** Runs `read` again after a growing pause until it succeeds or the store closes. */
  #retry(read: () => Promise<void>, delayMs = 250): void {
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer);
      if (this.#closed) return;
      read().catch((err) => {
        this.#log.debug("capability read retry failed", { error: err });
        this.#retry(read, Math.min(delayMs * 2, 5_000));
      });
    }, delayMs);
    this.#retryTimers.add(timer);
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
   * Registers a listener for `user` (one per session) and returns the user's current capabilities,
   * the user document read from the bucket now, with the roles the session holds loaded. Rejects
   * when the bucket cannot be read (the caller fails closed).
   */
  async acquire(
    user: string,
    listener: CapabilityListener,
    opts: AcquireOptions = {},
  ): Promise<CapabilityView> {
    let entry = this.#users.get(user);
    if (!entry) {
      entry = { caps: _NONE, epoch: this.#epoch, regs: new Map() };
      this.#users.set(user, entry);
    }
    const reg: _Reg = { user, listener, claims: opts.claims, deps: new Set() };
    entry.regs.set(listener, reg);
    try {
      if (!this.#connected || this.#src.nc.isClosed()) {
        throw new Error("NATS is disconnected: capabilities cannot be read");
      }
      entry.loading ??= this.#load(user, entry);
      await entry.loading;
      await this.#bind(reg);
      return this.#view(entry);
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

  /**
   * New claims for a session (a token refresh): it holds the roles they name from now on; resolves
   * with the view once those roles are loaded.
   */
  async updateClaims(
    user: string,
    listener: CapabilityListener,
    claims: Readonly<Record<string, unknown>> | undefined,
  ): Promise<CapabilityView | undefined> {
    const entry = this.#users.get(user);
    const reg = entry?.regs.get(listener);
    if (!entry || !reg) return undefined;
    reg.claims = claims;
    await this.#bind(reg);
    return this.#view(entry);
  }

  /** Removes a listener; the user's entry goes with its last listener. */
  release(user: string, listener: CapabilityListener): void {
    const entry = this.#users.get(user);
    if (!entry) return;
    const reg = entry.regs.get(listener);
    if (reg) { for (const name of reg.deps) this.#unhold(name, reg); }
    entry.regs.delete(listener);
    if (entry.regs.size === 0) this.#users.delete(user);
  }

  /** Stops the watch. */
  close(): void {
    this.#closed = true;
    for (const t of this.#retryTimers) clearTimeout(t);
    this.#retryTimers.clear();
    this.#feed?.close();
    this.#statusStop?.();
    this.#users.clear();
    this.#roles.clear();
    this.#roleDocs.clear();
  }
}

function _same(a: UserCapabilities, b: UserCapabilities): boolean {
  return a.revision === b.revision && JSON.stringify(a.doc) === JSON.stringify(b.doc);
}
