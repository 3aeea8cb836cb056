/** One live `js_sub`: an ordered consumer (no acks, no durable: gapless across reconnects and
 * node losses) or a pull consumer with explicit acks; delivery pauses while the client is
 * behind (flow control), and client acks go to the messages held for them.
 * @module */

import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  jetstream,
  JetStreamApiError,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { type CapabilitySet, checkStream } from "../auth/capabilities.ts";
import { OrderedFeed, PULL_EXPIRES_MS } from "../nats/ordered_feed.ts";
import { BadRequestError, NotFoundError, toGatewayError } from "../protocol/errors.ts";
import { jsMsgData, streamMsgHead, streamMsgTail } from "../protocol/frames.ts";
import { headersJson } from "../protocol/headers.ts";
import { renderPayload } from "../protocol/payload.ts";
import { deliverableTo, tokenizePattern } from "../protocol/subject.ts";
import { PULL_HIGH_WATER } from "../session/outbound.ts";
import type { GatewayRuntime, SessionSubscription, SubscriptionRequest } from "../session/types.ts";
import { consumerStart, type JsSettings, type JsSubRequest } from "./js_request.ts";

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
      ...consumerStart(r),
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
      start: consumerStart(r),
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
