/** `js_sub`: the factory that checks a request against capabilities and the stream, then makes
 * a {@link JsSubscription}. Requests are parsed in js_request.ts, durables named and capped in
 * durables.ts, delivery, flow control and acks live in js_subscription.ts.
 * @module */

import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { checkStream } from "../auth/capabilities.ts";
import {
  BadRequestError,
  ForbiddenError,
  NotFoundError,
  toGatewayError,
} from "../protocol/errors.ts";
import { streamGone } from "../nats/ordered_feed.ts";
import type { GatewayRuntime, SubscriptionFactory } from "../session/types.ts";
import { checkDurableQuota, durableName } from "./durables.ts";
import { type JsSettings, parseJsSub, patternsIntersect } from "./js_request.ts";
import { JsSubscription } from "./js_subscription.ts";

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
    if (durable) await checkDurableQuota(m, r.stream, durable, settings.maxDurablesPerUser);
    return new JsSubscription(rt, m, req, r, durable, settings, replicas);
  };
}
