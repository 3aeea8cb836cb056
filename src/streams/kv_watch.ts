/** `kv_sub`: a KV bucket watch with snapshot, `ready` marker and live updates in revision order.
 * Built on an {@link OrderedFeed}, which resumes after NATS reconnects and NATS node losses
 * without gap or repeat.
 * @module */

import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { type CapabilitySet, checkKv } from "../auth/capabilities.ts";
import { isObject } from "../protocol/envelope.ts";
import {
  BadRequestError,
  ForbiddenError,
  InvalidSubjectError,
  NotFoundError,
  toGatewayError,
} from "../protocol/errors.ts";
import { OrderedFeed } from "../nats/ordered_feed.ts";
import { readableHeaders } from "../protocol/headers.ts";
import { PULL_HIGH_WATER } from "../session/outbound.ts";
import { renderPayload } from "../protocol/payload.ts";
import {
  kvEntryData,
  type KvOperation,
  kvReadyData,
  streamMsgHead,
  streamMsgTail,
} from "../protocol/frames.ts";
import type {
  GatewayRuntime,
  SessionSubscription,
  SubscriptionFactory,
  SubscriptionRequest,
} from "../session/types.ts";
import { validateBucketName, validateKvKey } from "../protocol/subject.ts";

/** A validated `kv_sub` request. */
export interface KvSubRequest {
  /** Bucket name. */
  bucket: string;
  /** Key pattern (default `>`). */
  pattern: string;
  /** Skip the snapshot. */
  updatesOnly: boolean;
  /** Include every stored revision, not only the last per key. */
  history: boolean;
}

/** Validates a `kv_sub` target and data; throws `invalid_subject` or `bad_request`. */
export function parseKvSub(target: string | undefined, data: unknown): KvSubRequest {
  if (typeof target !== "string" || target === "") {
    throw new BadRequestError("target (the bucket) is required");
  }
  const bErr = validateBucketName(target);
  if (bErr) throw new InvalidSubjectError(`invalid bucket: ${bErr}`);
  if (data !== undefined && !isObject(data)) {
    throw new BadRequestError("data must be an object");
  }
  const d = (data ?? {}) as Record<string, unknown>;
  let pattern = ">";
  if (d.pattern !== undefined) {
    if (typeof d.pattern !== "string") {
      throw new BadRequestError("pattern must be a string");
    }
    const kErr = validateKvKey(d.pattern);
    if (kErr) throw new InvalidSubjectError(`invalid key pattern: ${kErr}`);
    pattern = d.pattern;
  }
  for (const f of ["updates_only", "history"]) {
    if (d[f] !== undefined && typeof d[f] !== "boolean") {
      throw new BadRequestError(`${f} must be a boolean`);
    }
  }
  return {
    bucket: target,
    pattern,
    updatesOnly: d.updates_only === true,
    history: d.history === true,
  };
}

/** Creates `kv_sub` subscriptions on the gateway's NATS connection. */
export function kvSubscriptionFactory(rt: GatewayRuntime): SubscriptionFactory {
  let jsm: Promise<JetStreamManager> | undefined;
  return async (req) => {
    const r = parseKvSub(req.env.target, req.env.data);
    if (!checkKv(req.caps, r.bucket, r.pattern).allowed) {
      throw new ForbiddenError("not allowed");
    }
    jsm ??= jetstreamManager(rt.nc);
    let lastSeq: number;
    try {
      lastSeq = (await (await jsm).streams.info(`KV_${r.bucket}`)).state.last_seq;
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) {
        throw new NotFoundError("no such bucket");
      }
      throw toGatewayError(err);
    }
    return new KvWatch(rt, req, r, lastSeq);
  };
}

const _OP: Record<string, Exclude<KvOperation, "put">> = { DEL: "delete", PURGE: "purge" };

/** One live `kv_sub`. */
export class KvWatch implements SessionSubscription {
  /** Always `kv`. */
  readonly kind = "kv" as const;
  /** Subscription id. */
  readonly sid: string;
  /** The bucket. */
  readonly target: string;
  #rt: GatewayRuntime;
  #req: SubscriptionRequest;
  #r: KvSubRequest;
  #prefix: string;
  #envPrefix: string;
  #envSuffix: string;
  #lastSeq: number;
  #last = 0;
  #ready = false;
  #closed = false;
  #feed?: OrderedFeed;

  /** Prepares a watch; nothing is delivered before {@link KvWatch.start}. */
  constructor(rt: GatewayRuntime, req: SubscriptionRequest, r: KvSubRequest, lastSeq: number) {
    this.#rt = rt;
    this.#req = req;
    this.#r = r;
    this.sid = req.sid;
    this.target = r.bucket;
    this.#lastSeq = lastSeq;
    this.#prefix = `$KV.${r.bucket}.`;
    this.#envPrefix = streamMsgHead(`kv:${r.bucket}`);
    this.#envSuffix = streamMsgTail(req.sid);
  }

  /** Still allowed under new capabilities? */
  allowed(caps: CapabilitySet): boolean {
    return checkKv(caps, this.#r.bucket, this.#r.pattern).allowed;
  }

  /** Starts the snapshot (unless updates only), then live updates. */
  start(): void {
    this.#run().catch((err) => {
      if (this.#closed) return;
      this.#rt.log.warn("kv watch failed", { bucket: this.#r.bucket, error: err });
      this.#req.fail(toGatewayError(err));
    });
  }

  async #run(): Promise<void> {
    const policy = this.#r.updatesOnly
      ? DeliverPolicy.New
      : this.#r.history
      ? DeliverPolicy.All
      : DeliverPolicy.LastPerSubject;
    const feed = new OrderedFeed(this.#rt, {
      stream: `KV_${this.#r.bucket}`,
      filterSubjects: [this.#prefix + this.#r.pattern],
      start: { deliver_policy: policy },
      maxMessages: 256,
    });
    this.#feed = feed;
    if (this.#closed) return;
    const info = await feed.open();
    if (this.#closed) return feed.close();
    if (this.#r.updatesOnly || info.num_pending === 0) {
      this.#sendReady(this.#lastSeq);
    }
    // Pauses while the client is behind, so a large snapshot never reads far ahead of a reader
    // that drains steadily (which must not be cut for it).
    await feed.run((m) => {
      if (this.#closed) return;
      if (this.#req.pendingBytes() <= PULL_HIGH_WATER) return this.#deliver(m);
      return this.#req.drained(PULL_HIGH_WATER).then(() => {
        if (!this.#closed) this.#deliver(m);
      });
    });
  }

  #sendReady(revision: number): void {
    this.#ready = true;
    this.#req.send(this.#envPrefix + kvReadyData(revision) + this.#envSuffix);
  }

  #deliver(m: JsMsg): void {
    const seq = m.seq;
    if (seq <= this.#last) return; // never repeat a revision (ordered consumer restarts)
    this.#last = seq;
    const key = m.subject.slice(this.#prefix.length);
    const opHeader = readableHeaders(m)?.get("KV-Operation") ?? "";
    const op: KvOperation = Object.hasOwn(_OP, opHeader) ? _OP[opHeader] : "put";
    const value = op === "put" ? renderPayload(m.data) : undefined;
    const data = kvEntryData(key, seq, op, value, m.time);
    this.#req.send(this.#envPrefix + data + this.#envSuffix);
    if (!this.#ready && m.info.pending === 0) this.#sendReady(seq);
  }

  /** Stops the watch and deletes its consumer. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Deletes the ordered consumer it runs on now: left alone it would stay on the server for
    // its 5-minute inactive threshold, one per ended kv_sub.
    this.#feed?.close();
  }
}
