/** Wires the KV (`kv_sub`) and JetStream (`js_sub`) subscription factories into a gateway.
 * Kept apart from gateway.ts so the core stays independent of JetStream specifics.
 * @module */

import type { GatewayRuntime, SubscriptionFactory } from "../session/types.ts";
import { kvSubscriptionFactory } from "./kv_watch.ts";
import { jsSubscriptionFactory } from "./js_consumer.ts";

/** Settings of the stream subscriptions. */
export interface StreamSubscriptionSettings {
  /** Upper bound of `js_sub` `batch` (default 1000). */
  maxJsBatch?: number;
  /** Idle durable consumers expire after this many milliseconds (default 24 h). */
  durableInactiveMs?: number;
  /** Durable consumers one user may hold on one stream (default 16). */
  maxDurablesPerUser?: number;
}

/** The gateway options that plug stream subscriptions in (`GatewayOptions` accepts them). */
export interface StreamFactories {
  /** Makes the `kv_sub` factory for a gateway. */
  kvSubscribe: (rt: GatewayRuntime) => SubscriptionFactory;
  /** Makes the `js_sub` factory for a gateway. */
  jsSubscribe: (rt: GatewayRuntime) => SubscriptionFactory;
}

/** Returns the gateway options that enable `kv_sub` and `js_sub`. */
export function gatewayExtensions(
  settings: StreamSubscriptionSettings = {},
): StreamFactories {
  return {
    kvSubscribe: (rt) => kvSubscriptionFactory(rt),
    jsSubscribe: (rt) =>
      jsSubscriptionFactory(rt, {
        maxBatch: settings.maxJsBatch ?? 1000,
        durableInactiveMs: settings.durableInactiveMs ?? 86_400_000,
        maxDurablesPerUser: settings.maxDurablesPerUser ?? 16,
      }),
  };
}
