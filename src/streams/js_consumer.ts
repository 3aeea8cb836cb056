/** `js_sub`: JetStream subscriptions with start positions, flow control, acks and durables.
 * Non-ack subscriptions are ordered and gapless across NATS reconnects and the loss of the NATS
 * node holding their consumer ({@link OrderedFeed}); durables are per user.
 * @module */

import { PULL_HIGH_WATER } from "../session/outbound.ts";
import { OrderedFeed, PULL_EXPIRES_MS, streamGone } from "../nats/ordered_feed.ts";
import { headersJson } from "../protocol/headers.ts";
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { type CapabilitySet, checkStream } from "../auth/capabilities.ts";
import { isCount, isObject } from "../protocol/envelope.ts";
import {
  BadRequestError,
  ForbiddenError,
  InvalidSubjectError,
  LimitError,
  NotFoundError,
  toGatewayError,
} from "../protocol/errors.ts";
import { renderPayload } from "../protocol/payload.ts";
import { jsMsgData, streamMsgHead, streamMsgTail } from "../protocol/frames.ts";
import type {
  GatewayRuntime,
  SessionSubscription,
  SubscriptionFactory,
  SubscriptionRequest,
} from "../session/types.ts";
import {
  deliverableTo,
  tokenizePattern,
  validateStreamName,
  validateSubject,
} from "../protocol/subject.ts";

/** Settings of {@link jsSubscriptionFactory}. */
export interface JsSettings {
  /** Upper bound of `batch`. */
  maxBatch: number;
  /** Idle durable consumers expire after this many milliseconds. */
  durableInactiveMs: number;
  /** Durable consumers one user may hold on one stream (new names beyond: `limit_exceeded`). */
  maxDurablesPerUser: number;
}

/** A validated `js_sub` request. */
export interface JsSubRequest {
  /** Stream name. */
  stream: string;
  /** Filter subject, or undefined for the whole stream. */
  filter?: string;
  /** Deliver policy and its start. */
  start:
    | { policy: "new" | "all" | "last" | "last_per_subject" }
    | { policy: "seq"; seq: number }
    | { policy: "time"; time: string };
  /** Messages in flight to the client at most. */
  batch: number;
  /** At-least-once with client acks. */
  ack: boolean;
  /** Redelivery delay for unacked messages. */
  ackWaitMs: number;
  /** Durable name (user-scoped by the gateway). */
  durable?: string;
}

const _DELIVER = new Set(["new", "all", "last", "last_per_subject"]);
const _DURABLE = /^[A-Za-z0-9_-]{1,64}$/;
const _RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const _FIELDS = new Set([
  "filter",
  "start_seq",
  "start_time",
  "time_delta",
  "deliver",
  "batch",
  "ack",
  "ack_wait_ms",
  "durable",
]);

/** Validates a `js_sub` target and data; throws `invalid_subject` or `bad_request`. */
export function parseJsSub(
  target: string | undefined,
  data: unknown,
  maxBatch: number,
): JsSubRequest {
  if (typeof target !== "string" || target === "") {
    throw new BadRequestError("target (the stream) is required");
  }
  const sErr = validateStreamName(target);
  if (sErr) throw new InvalidSubjectError(`invalid stream: ${sErr}`);
  if (data !== undefined && !isObject(data)) {
    throw new BadRequestError("data must be an object");
  }
  const d = (data ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(d)) {
    if (!_FIELDS.has(k)) throw new BadRequestError(`unknown field ${k}`);
  }
  let filter: string | undefined;
  if (d.filter !== undefined) {
    if (typeof d.filter !== "string") {
      throw new BadRequestError("filter must be a string");
    }
    const fErr = validateSubject(d.filter);
    if (fErr) throw new InvalidSubjectError(`invalid filter: ${fErr}`);
    if (d.filter !== ">") filter = d.filter;
  }
  for (const f of ["start_seq", "time_delta", "batch", "ack_wait_ms"]) {
    if (d[f] !== undefined && !isCount(d[f])) {
      throw new BadRequestError(`${f} must be a non-negative integer`);
    }
  }
  let start: JsSubRequest["start"];
  if (d.start_seq !== undefined) {
    start = { policy: "seq", seq: Math.max(1, d.start_seq as number) };
  } else if (d.start_time !== undefined) {
    if (
      typeof d.start_time !== "string" || !_RFC3339.test(d.start_time) ||
      Number.isNaN(Date.parse(d.start_time))
    ) {
      throw new BadRequestError("start_time must be an RFC 3339 time");
    }
    start = { policy: "time", time: new Date(d.start_time).toISOString() };
  } else if (d.time_delta !== undefined) {
    start = {
      policy: "time",
      time: new Date(Date.now() - (d.time_delta as number) * 1000).toISOString(),
    };
  } else {
    const deliver = d.deliver ?? "new";
    if (typeof deliver !== "string" || !_DELIVER.has(deliver)) {
      throw new BadRequestError("deliver must be new, all, last or last_per_subject");
    }
    start = { policy: deliver as "new" };
  }
  const batch = (d.batch as number | undefined) ?? Math.min(100, maxBatch);
  if (batch < 1 || batch > maxBatch) {
    throw new BadRequestError(`batch must be 1..${maxBatch}`);
  }
  if (d.ack !== undefined && typeof d.ack !== "boolean") {
    throw new BadRequestError("ack must be a boolean");
  }
  if (d.durable !== undefined && (typeof d.durable !== "string" || !_DURABLE.test(d.durable))) {
    throw new BadRequestError("durable must be 1..64 of A-Z a-z 0-9 _ -");
  }
  return {
    stream: target,
    filter,
    start,
    batch,
    ack: d.ack === true,
    ackWaitMs: Math.max(100, (d.ack_wait_ms as number | undefined) ?? 30_000),
    durable: d.durable as string | undefined,
  };
}

/**
 * The consumer name of a user's durable: `ng_<first 16 hex of SHA-256(user id)>_<name>`. Two
 * users with the same durable name get different consumers; the user id itself never appears.
 */
export async function durableName(user: string, name: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(user)),
  );
  const hex = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  return `ng_${hex}_${name}`;
}

/**
 * Refuses a new durable when the user already holds `max` durables on the stream (names share
 * the user's `ng_<hash>_` prefix). Re-attaching to an existing durable is always allowed.
 */
async function _checkDurableQuota(
  jsm: JetStreamManager,
  stream: string,
  durable: string,
  max: number,
): Promise<void> {
  try {
    await jsm.consumers.info(stream, durable);
    return; // exists: resuming it creates nothing
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) {
      throw toGatewayError(err);
    }
  }
  const prefix = durable.slice(0, durable.indexOf("_", 3) + 1);
  let held = 0;
  for await (const ci of jsm.consumers.list(stream)) {
    if (ci.name.startsWith(prefix) && ++held >= max) {
      throw new LimitError(
        `at most ${max} durable consumers per user on a stream; reuse or let one expire`,
      );
    }
  }
}

/** True when some subject matches both patterns. */
export function patternsIntersect(a: string, b: string): boolean {
  const x = tokenizePattern(a);
  const y = tokenizePattern(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] === ">" || y[i] === ">") return i < x.length && i < y.length;
    if (i >= x.length || i >= y.length) return false;
    if (x[i] !== "*" && y[i] !== "*" && x[i] !== y[i]) return false;
  }
  return true;
}

/** Creates `js_sub` subscriptions. */
export function jsSubscriptionFactory(
  rt: GatewayRuntime,
  settings: JsSettings,
): SubscriptionFactory {
  let jsm: Promise<JetStreamManager> | undefined;
  return async (req) => {
    const r = parseJsSub(req.env.target, req.env.data, settings.maxBatch);
    if (!checkStream(req.caps, r.stream, r.filter ?? ">").allowed) {
      throw new ForbiddenError("not allowed");
    }
    jsm ??= jetstreamManager(rt.nc);
    const m = await jsm;
    let subjects: string[];
    let replicas: number;
    try {
      const info = await m.streams.info(r.stream);
      subjects = info.config.subjects ?? [];
      replicas = info.config.num_replicas ?? 1;
    } catch (err) {
      if (streamGone(err)) throw new NotFoundError("no such stream");
      throw toGatewayError(err);
    }
    if (r.filter && !subjects.some((s) => patternsIntersect(r.filter!, s))) {
      throw new BadRequestError("filter is outside the stream's subjects");
    }
    const durable = r.durable ? await durableName(req.user, r.durable) : undefined;
    if (durable) await _checkDurableQuota(m, r.stream, durable, settings.maxDurablesPerUser);
    return new JsSubscription(rt, m, req, r, durable, settings, replicas);
  };
}

function _policy(
  r: JsSubRequest,
): Pick<ConsumerConfig, "deliver_policy" | "opt_start_seq" | "opt_start_time"> {
  switch (r.start.policy) {
    case "seq":
      return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: r.start.seq };
    case "time":
      return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: r.start.time };
    case "all":
      return { deliver_policy: DeliverPolicy.All };
    case "last":
      return { deliver_policy: DeliverPolicy.Last };
    case "last_per_subject":
      return { deliver_policy: DeliverPolicy.LastPerSubject };
    default:
      return { deliver_policy: DeliverPolicy.New };
  }
}

/** Ack wait of durables the gateway acks itself (no client acks). */
const _AUTO_ACK_WAIT_MS = 5000;

/** One live `js_sub`. */
export class JsSubscription implements SessionSubscription {
  /** Always `js`. */
  readonly kind = "js" as const;
  /** Subscription id. */
  readonly sid: string;
  /** The stream. */
  readonly target: string;
  #rt: GatewayRuntime;
  #jsm: JetStreamManager;
  #req: SubscriptionRequest;
  #r: JsSubRequest;
  #durable?: string;
  #settings: JsSettings;
  #envPrefix: string;
  #envSuffix: string;
  #filterTokens: readonly string[];
  #last = 0;
  #closed = false;
  #messages?: ConsumerMessages;
  #consumer?: Consumer;
  #feed?: OrderedFeed;
  #ephemeral?: string;
  #unacked = new Map<number, JsMsg>();
  #replicas: number;

  /** Prepares the subscription; nothing is delivered before {@link JsSubscription.start}. */
  constructor(
    rt: GatewayRuntime,
    jsm: JetStreamManager,
    req: SubscriptionRequest,
    r: JsSubRequest,
    durable: string | undefined,
    settings: JsSettings,
    streamReplicas = 1,
  ) {
    this.#replicas = streamReplicas;
    this.#rt = rt;
    this.#jsm = jsm;
    this.#req = req;
    this.#r = r;
    this.#durable = durable;
    this.#settings = settings;
    this.sid = req.sid;
    this.target = r.stream;
    this.#envPrefix = streamMsgHead(`js:${r.stream}`);
    this.#envSuffix = streamMsgTail(req.sid);
    this.#filterTokens = tokenizePattern(r.filter ?? ">");
  }

  /** Still allowed under new capabilities? */
  allowed(caps: CapabilitySet): boolean {
    return checkStream(caps, this.#r.stream, this.#r.filter ?? ">").allowed;
  }

  /** Starts delivery. */
  start(): void {
    this.#run().catch((err) => {
      if (this.#closed) return;
      this.#rt.log.warn("js subscription failed", { stream: this.#r.stream, error: err });
      this.#req.fail(toGatewayError(err));
    });
  }

  async #run(): Promise<void> {
    const r = this.#r;
    if (!r.ack && !this.#durable) return await this.#runOrdered();
    const js = jetstream(this.#rt.nc);
    const filter = r.filter ? { filter_subjects: [r.filter] } : {};
    const config: Partial<ConsumerConfig> = {
      ..._policy(r),
      ...filter,
      ack_policy: AckPolicy.Explicit,
      // Without client acks the gateway acks on send; a short wait bounds how long a message
      // sent to a dead session's pull request (after a disconnect) waits before redelivery.
      ack_wait: nanos(r.ack ? r.ackWaitMs : _AUTO_ACK_WAIT_MS),
      max_ack_pending: r.batch,
      inactive_threshold: nanos(this.#durable ? this.#settings.durableInactiveMs : 30_000),
    };
    if (this.#durable) {
      config.durable_name = this.#durable;
      config.name = this.#durable;
    } else if (this.#replicas > 1) {
      // Ephemerals default to one replica: losing that node would stall the subscription with
      // the consumer "offline". Replicated like the stream (as durables are), it fails over.
      config.num_replicas = this.#replicas;
    }
    let info;
    try {
      info = await this.#jsm.consumers.add(r.stream, config);
    } catch (err) {
      if (this.#durable && err instanceof JetStreamApiError) {
        // The durable exists with another start/filter: keep its position, follow its config.
        info = await this.#jsm.consumers.info(r.stream, this.#durable);
        if (
          JSON.stringify(
            info.config.filter_subjects ?? [info.config.filter_subject ?? ""].filter(Boolean),
          ) !==
            JSON.stringify(r.filter ? [r.filter] : [])
        ) {
          throw new BadRequestError("durable exists with a different filter");
        }
      } else throw err;
    }
    if (!this.#durable) this.#ephemeral = info.name;
    this.#consumer = await js.consumers.get(r.stream, info.name);
    if (this.#closed) return this.#cleanup();
    // Short pull expiry: a pull request left by a closed session dies soon.
    this.#messages = await this.#consumer.consume({
      max_messages: r.batch,
      expires: PULL_EXPIRES_MS,
    });
    if (this.#closed) return this.#cleanup();
    for await (const m of this.#messages) {
      if (this.#closed) break;
      await this.#waitForClient();
      if (this.#closed) break;
      this.#deliver(m);
    }
  }

  /** Non-ack, non-durable: an ordered consumer, gapless across reconnects and node losses. */
  async #runOrdered(): Promise<void> {
    const r = this.#r;
    const feed = new OrderedFeed(this.#rt, {
      stream: r.stream,
      filterSubjects: r.filter ? [r.filter] : undefined,
      start: _policy(r),
      maxMessages: r.batch,
    });
    this.#feed = feed;
    if (this.#closed) return;
    await feed.open();
    if (this.#closed) return feed.close();
    await feed.run((m) => {
      if (this.#req.pendingBytes() <= PULL_HIGH_WATER) return this.#deliver(m);
      return this.#waitForClient().then(() => {
        if (!this.#closed) this.#deliver(m);
      });
    });
  }

  /** Delivery pauses while the client's outbound queue holds more than {@link PULL_HIGH_WATER}. */
  #waitForClient(): Promise<void> {
    return this.#req.drained(PULL_HIGH_WATER);
  }

  #deliver(m: JsMsg): void {
    const seq = m.seq;
    if (!deliverableTo(this.#filterTokens, m.subject)) {
      // $ rule: a wildcard-first filter never delivers `$…` subjects stored in the stream.
      this.#last = Math.max(this.#last, seq);
      if (this.#r.ack || this.#durable) m.ack();
      return;
    }
    const redelivered = m.redelivered;
    if (!this.#r.ack) {
      // Ordered and gapless: never repeat a sequence (consumer resets after reconnects).
      if (seq <= this.#last) {
        if (this.#durable) m.ack();
        return;
      }
      this.#last = seq;
    }
    const data = jsMsgData(
      seq,
      m.subject,
      renderPayload(m.data),
      headersJson(m),
      m.time,
      redelivered,
    );
    const sent = this.#req.send(this.#envPrefix + data + this.#envSuffix);
    if (this.#r.ack) this.#unacked.set(seq, m);
    else if (this.#durable && sent) m.ack();
  }

  /** Acknowledges stream sequence `seq` (ack subscriptions only). */
  ack(seq: number): void {
    if (!this.#r.ack) throw new BadRequestError("subscription does not take acks");
    const m = this.#unacked.get(seq);
    if (!m) throw new NotFoundError("no unacknowledged message with that seq");
    this.#unacked.delete(seq);
    m.ack();
  }

  #cleanup(): void {
    this.#feed?.close();
    this.#messages?.stop();
    if (this.#durable) return;
    if (this.#ephemeral) {
      // Best effort: when it fails (NATS away, stream gone) the ephemeral's 30 s inactive
      // threshold removes it on the server.
      this.#jsm.consumers.delete(this.#r.stream, this.#ephemeral).catch((err) => {
        this.#rt.log.debug("ephemeral consumer delete failed", {
          stream: this.#r.stream,
          error: err,
        });
      });
    }
  }

  /** Stops delivery; ephemeral consumers are deleted, durables kept. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unacked.clear();
    this.#cleanup();
  }
}
