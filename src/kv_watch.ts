/** PLACEHOLDER until the KV watch lands: kv_sub answers `unavailable`.
 * @module */
import type { GatewayRuntime } from "./gateway.ts";
import type { SubscriptionFactory } from "./session.ts";
import { GatewayError } from "./errors.ts";
/** Placeholder factory. */
export function kvSubscriptionFactory(_rt: GatewayRuntime): SubscriptionFactory {
  return () => Promise.reject(new GatewayError("unavailable", "kv_sub is not available"));
}
