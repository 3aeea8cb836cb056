/** A JetStream ordered consumer that survives NATS reconnects and the loss of its NATS node.
 * Shared by `js_sub`, `kv_sub` and the capability watch; hands out stream order without gaps.
 * @module */

import {
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JsMsg,
  type OrderedConsumerOptions,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { NotFoundError } from "../protocol/errors.ts";
import type { Logger } from "../log/log.ts";

/** Pull expiry; the server sends idle heartbeats at half of it while a pull waits. */
export const PULL_EXPIRES_MS = 5000;

/** An ordered consumer that shows no sign of life this long is probed (consumer info). */
const _STALL_MS = 6000;

/** After a NATS reconnect the consumer is probed this soon (nats.js gets to repair it first). */
const _RECONNECT_PROBE_MS = 1500;

/** Consumer notifications that prove the consumer's server answers our pull requests. */
const _LIFE = new Set([
  "heartbeat",
  "debug",
  "discard",
  "exceeded_limits",
  "ordered_consumer_recreated",
]);

/** Consumer notifications worth a debug line. */
const _TROUBLE = new Set([
  "heartbeats_missed",
  "no_responders",
  "consumer_not_found",
  "stream_not_found",
  "consumer_deleted",
  "reset",
]);

/** What an {@link OrderedFeed} reads. */
export interface OrderedFeedOptions {
  /** Stream name. */
  stream: string;
  /** Filter subjects (none: the whole stream). */
  filterSubjects?: string[];
  /** Where the first consumer starts. */
  start: Pick<ConsumerConfig, "deliver_policy" | "opt_start_seq" | "opt_start_time">;
  /** Messages per pull. */
  maxMessages: number;
  /**
   * Replace a lost consumer (default). When false, {@link OrderedFeed.run} resolves instead, and
   * the owner decides how to go on.
   */
  replace?: boolean;
}

/** What an {@link OrderedFeed} needs from the gateway. */
export interface FeedRuntime {
  /** The NATS connection. */
  nc: NatsConnection;
  /** Logger. */
  log: Logger;
}

/** Whether a JetStream API error says the stream does not exist. */
export function streamGone(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/**
 * A JetStream ordered consumer that survives the loss of the NATS node it lives on.
 *
 * nats.js re-creates an ordered consumer only when the server says "consumer not found" or
 * delivery skips a sequence. An ordered consumer is R1 (one server, in memory): when that server
 * dies in a cluster, the consumer still exists in the cluster's metadata and every consumer info
 * answers "consumer is offline" (10119), which nats.js retries forever without ever pulling
 * again, so the subscription stalls for good. The feed watches for life (messages, heartbeats,
 * pull expiries); a consumer silent for {@link _STALL_MS} (or soon after a NATS reconnect) is
 * probed, and if the probe fails it is dropped and a new ordered consumer starts at the stream
 * sequence after the last one handed out. Sequences below that point are never handed out
 * again, so the caller sees stream order without gaps or repeats.
 */
export class OrderedFeed {
  #rt: FeedRuntime;
  #o: OrderedFeedOptions;
  #js: JetStreamClient;
  #consumer?: Consumer;
  #messages?: ConsumerMessages;
  /** Next stream sequence to hand out (0: not pinned yet, use the start policy). */
  #next = 0;
  #closed = false;
  #life = 0;
  #busy = false;
  /** The last probe found the stream gone. */
  #gone = false;
  /** Consumers re-created by the feed (not by nats.js). */
  recreated = 0;

  /** Prepares a feed; {@link OrderedFeed.open} creates the first consumer. */
  constructor(rt: FeedRuntime, o: OrderedFeedOptions) {
    this.#rt = rt;
    this.#o = o;
    this.#js = jetstream(rt.nc);
  }

  /** Next stream sequence the feed will hand out (0 before the start is pinned). */
  get next(): number {
    return this.#next;
  }

  /**
   * Creates the first consumer and returns its info; rejects as `js.consumers.get` does (for
   * instance when the stream does not exist).
   */
  async open(): Promise<ConsumerInfo> {
    const consumer = await this.#js.consumers.get(this.#o.stream, this.#options());
    this.#adopt(consumer);
    const info = await consumer.info(true);
    // Pin the start as a sequence, so a consumer re-created before anything was delivered
    // neither skips (deliver new/last) nor replays (nats.js restarts those at sequence 1).
    // last_per_subject is not a sequence range: it stays a policy until the first message.
    if (this.#o.start.deliver_policy !== DeliverPolicy.LastPerSubject) {
      this.#next = info.delivered.stream_seq + 1;
    }
    return info;
  }

  #options(): Partial<OrderedConsumerOptions> {
    const f = this.#o.filterSubjects ? { filter_subjects: this.#o.filterSubjects } : {};
    if (this.#next > 0) {
      return { ...f, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#next };
    }
    return { ...f, ...this.#o.start } as Partial<OrderedConsumerOptions>;
  }

  /**
   * Hands messages to `onMsg` in stream order, one at a time (awaiting it), until closed. A
   * lost consumer is replaced (or, with `replace: false`, run resolves); rejects with
   * `not_found` when the stream is gone.
   */
  async run(onMsg: (m: JsMsg) => void | Promise<void>): Promise<void> {
    const nc = this.#rt.nc;
    // nats.js returns a stoppable iterator; stopping it drops the listener.
    const status = nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
    (async () => {
      for await (const s of status) {
        if (s.type === "reconnect") {
          this.#life = Math.min(this.#life, Date.now() - _STALL_MS + _RECONNECT_PROBE_MS);
        }
      }
    })().catch((err) => this.#rt.log.debug("NATS status stream ended", { error: err }));
    try {
      let failures = 0;
      let gone = 0;
      while (!this.#closed) {
        if (!this.#consumer) {
          try {
            this.#adopt(await this.#js.consumers.get(this.#o.stream, this.#options()));
          } catch (err) {
            if (this.#closed || nc.isClosed()) return;
            if (streamGone(err)) {
              if (++gone >= 3) throw new NotFoundError("the stream no longer exists");
            } else gone = 0;
            failures++;
            this.#rt.log.debug("ordered consumer re-creation failed; retrying", {
              stream: this.#o.stream,
              attempt: failures,
              error: err,
            });
            await _sleep(Math.min(100 * 2 ** failures, 2000) + Math.random() * 100);
            continue;
          }
          failures = 0;
          gone = 0;
          this.recreated++;
          this.#rt.log.info("ordered consumer re-created", {
            stream: this.#o.stream,
            from_seq: this.#next,
          });
        }
        const consumer = this.#consumer;
        if (!consumer || this.#closed) break;
        const messages = await consumer.consume({
          max_messages: this.#o.maxMessages,
          expires: PULL_EXPIRES_MS,
        });
        this.#messages = messages;
        if (this.#closed) break;
        const stopWatch = this.#watch(consumer, messages);
        try {
          for await (const m of messages) {
            if (this.#closed) break;
            const seq = m.seq;
            if (seq >= this.#next) { // below: handed out already (or before a pinned start)
              const wait = onMsg(m);
              if (wait) {
                this.#busy = true;
                try {
                  await wait;
                } finally {
                  this.#busy = false;
                }
              }
              this.#next = seq + 1;
            }
            this.#life = Date.now();
          }
        } catch (err) {
          if (this.#closed || nc.isClosed()) return;
          this.#rt.log.warn("ordered consumer failed; re-creating it", {
            stream: this.#o.stream,
            error: err,
          });
        } finally {
          stopWatch();
        }
        if (this.#closed || nc.isClosed()) return;
        this.#delete(consumer);
        this.#consumer = undefined;
        this.#messages = undefined;
        if (this.#gone) throw new NotFoundError("the stream no longer exists");
        if (this.#o.replace === false) return;
      }
    } finally {
      status.stop?.();
    }
  }

  /** Watches a consume for life; stops it when it went silent and its consumer is unreachable. */
  #watch(consumer: Consumer, messages: ConsumerMessages): () => void {
    this.#life = Date.now();
    (async () => {
      for await (const s of messages.status()) {
        if (_LIFE.has(s.type)) this.#life = Date.now();
        else if (_TROUBLE.has(s.type)) {
          // nats.js saw two heartbeats missed: probe at the next tick rather than after the stall.
          if (s.type === "heartbeats_missed") this.#life = 0;
          if (this.#rt.log.enabled("debug")) {
            this.#rt.log.debug("ordered consumer status", { stream: this.#o.stream, ...s });
          }
        }
      }
    })().catch((err) => this.#rt.log.debug("consumer status stream ended", { error: err }));
    let probing = false;
    const timer = setInterval(() => {
      if (this.#busy) {
        // The caller holds a message (client backpressure): nobody pulls, silence is expected.
        this.#life = Date.now();
        return;
      }
      if (probing || this.#closed || Date.now() - this.#life < _STALL_MS) return;
      probing = true;
      consumer.info().then(
        () => {
          this.#life = Date.now();
        },
        (err) => {
          if (this.#closed || this.#rt.nc.isClosed() || this.#messages !== messages) return;
          this.#gone = streamGone(err);
          this.#rt.log.info("ordered consumer unreachable", {
            stream: this.#o.stream,
            from_seq: this.#next,
            error: err,
          });
          messages.stop();
        },
      ).finally(() => probing = false);
    }, 1000);
    return () => clearInterval(timer);
  }

  /**
   * Makes `consumer` the current one. A feed closed while the consumer was being created deletes
   * it at once: close() could not see it, and it would stay on the server for its 5-minute
   * inactive threshold.
   */
  #adopt(consumer: Consumer): void {
    this.#consumer = consumer;
    if (this.#closed) this.#delete(consumer);
  }

  /**
   * Deletes a consumer we no longer read, best effort: when it fails (NATS away, the consumer
   * or stream already gone) its inactive threshold removes it on the server.
   */
  #delete(consumer: Consumer): void {
    consumer.delete().catch((err) => {
      this.#rt.log.debug("consumer delete failed; it expires by itself", {
        stream: this.#o.stream,
        error: err,
      });
    });
  }

  /** Stops delivery and deletes the consumer it runs on now (best effort). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#messages?.stop();
    if (this.#consumer) this.#delete(this.#consumer);
  }
}

function _sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
