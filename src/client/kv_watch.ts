/** KV watches (`kv_sub`): a local key → entry map kept equal to a bucket across reconnects,
 * re-synced by diffing a fresh snapshot so only real changes produce events.
 * @module */

import type { ClientFrame, PayloadEncoding } from "../protocol/types.ts";
import type { KvEntry, KvEvent } from "./messages.ts";
import type { KvWatchOptions } from "./options.ts";
import { type ClientApi, Subscription } from "./subscription.ts";

/** Detail of a {@link KvWatch}'s `ready` event. */
export interface KvReadyDetail {
  /** The bucket revision the map reflects. */
  revision: number;
  /** True after a reconnect's re-watch, false for the first snapshot. */
  resync: boolean;
}

/** One entry change as the gateway sends it. */
interface _Change {
  key: string;
  op: "put" | "delete" | "purge";
  revision: number;
  value?: unknown;
  encoding?: PayloadEncoding;
  created?: string;
}

/**
 * A KV watch with a local key → entry map. Its `ready` event fires each time the map matches
 * the bucket again: after the first snapshot and after each reconnect's resync.
 *
 * @example
 * ```ts
 * const watch = client.kvWatch<string>("cfg", { pattern: "ui.>" });
 * await watch.ready;
 * watch.get("ui.theme"); // string | undefined
 * ```
 */
export class KvWatch<T = unknown> extends Subscription<KvEvent<T>> {
  declare readonly kind: "kv";
  /** The local map. */
  readonly entries: Map<string, KvEntry<T>> = new Map();
  /** The options it was created with. */
  readonly options: KvWatchOptions;
  /** The highest bucket revision accounted for. */
  revision = 0;
  /** The map reflects the bucket (false while a snapshot loads). */
  synced = false;
  /** Snapshot buffered during a resync. */
  #snapshot: Map<string, _Change> | undefined;
  /** Subscriptions made so far (the first one may skip the snapshot; later ones resync). */
  #count = 0;

  /** @internal Made by the client. */
  constructor(
    api: ClientApi,
    bucket: string,
    options: KvWatchOptions,
    handler: ((e: KvEvent<T>) => unknown) | undefined,
  ) {
    super(api, "kv", bucket, handler);
    this.options = options;
  }

  /** The value stored under `key`, or undefined. */
  get(key: string): T | undefined {
    return this.entries.get(key)?.value;
  }

  protected _envelope(): ClientFrame {
    const data: Record<string, unknown> = {};
    if (this.options.pattern) data.pattern = this.options.pattern;
    // A resync always takes a full snapshot, to learn what changed while away.
    if (this.options.updatesOnly && this.#count === 0) data.updates_only = true;
    return { op: "kv_sub", target: this.target, data };
  }

  protected override _onSubscribed(): void {
    this.synced = false;
    this.#snapshot = this.#count++ > 0 ? new Map() : undefined;
  }

  /** @internal */
  override disconnected(): void {
    super.disconnected();
    this.synced = false;
    this.#snapshot = undefined;
  }

  /** @internal */
  deliver(d: Record<string, unknown>): void {
    if (d.op === "ready") {
      this.#onReady(typeof d.revision === "number" ? d.revision : 0);
      return;
    }
    if (typeof d.key !== "string" || typeof d.revision !== "number") return;
    const c = d as unknown as _Change;
    if (this.#snapshot) {
      this.#snapshot.set(c.key, c); // last per key wins
      return;
    }
    if (!this.synced) {
      // Initial snapshot: tombstones of long-deleted keys are not news.
      this.revision = Math.max(this.revision, c.revision);
      if (c.op === "put") this.#apply(c, false);
      return;
    }
    if (c.revision <= this.revision) return; // defensive: never repeat a revision
    this.revision = c.revision;
    this.#apply(c, false);
  }

  #apply(d: _Change, resync: boolean): void {
    const previous = this.entries.get(d.key);
    const event: KvEvent<T> = { key: d.key, op: d.op, revision: d.revision };
    if (d.op === "put") {
      const entry: KvEntry<T> = {
        key: d.key,
        value: d.value as T,
        revision: d.revision,
        created: d.created as string,
      };
      if (d.encoding) entry.encoding = d.encoding;
      this.entries.set(d.key, entry);
      event.value = d.value as T;
      if (d.encoding) event.encoding = d.encoding;
    } else {
      this.entries.delete(d.key);
    }
    if (d.created !== undefined) event.created = d.created;
    if (previous) event.previous = previous;
    if (resync) event.resync = true;
    this._emit(event);
  }

  #onReady(revision: number): void {
    const snapshot = this.#snapshot;
    this.#snapshot = undefined;
    if (snapshot) this.#diff(snapshot, revision);
    this.revision = Math.max(this.revision, revision);
    this.synced = true;
    const resync = this.#count > 1;
    this.failures = 0;
    this.dispatchEvent(
      new CustomEvent<KvReadyDetail>("ready", { detail: { revision: this.revision, resync } }),
    );
    this._ready.resolve();
  }

  /** Reconciles the local map with a fresh snapshot: only real changes produce events. */
  #diff(snapshot: Map<string, _Change>, readyRevision: number): void {
    const changes: _Change[] = [];
    for (const [key, d] of snapshot) {
      if (d.op !== "put") continue;
      const cur = this.entries.get(key);
      if (cur) {
        if (cur.revision === d.revision) continue;
      } else if (this.options.updatesOnly && d.revision <= this.revision) {
        continue; // existed before this watch began: an updates-only watch never saw it
      }
      changes.push(d);
    }
    for (const [key, cur] of this.entries) {
      const d = snapshot.get(key);
      if (d && d.op === "put") continue;
      changes.push(d ?? { key, op: "delete", revision: Math.max(readyRevision, cur.revision) });
    }
    changes.sort((a, b) => a.revision - b.revision);
    for (const d of changes) this.#apply(d, true);
  }
}
