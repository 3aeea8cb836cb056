/** `js_sub` requests: the op's fields validated into a {@link JsSubRequest}, the consumer start
 * position they ask for, and the filter-versus-stream subject check.
 * @module */

import { type ConsumerConfig, DeliverPolicy } from "@nats-io/jetstream";
import { isCount, isObject } from "../protocol/envelope.ts";
import { BadRequestError, InvalidSubjectError } from "../protocol/errors.ts";
import { tokenizePattern, validateStreamName, validateSubject } from "../protocol/subject.ts";

/** Settings of `js_sub` (`jsSubscriptionFactory` in js_consumer.ts). */
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

/**
 * The consumer's start position for a request (deliver policy and its start).
 *
 * @example
 * ```ts
 * consumerStart(parseJsSub("CHAT", { start_seq: 5 }, 1000)); // StartSequence from 5
 * ```
 */
export function consumerStart(
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
