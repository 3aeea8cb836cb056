/** PLACEHOLDER until the JetStream consumer lands: js_sub answers `unavailable`.
 * @module */
import type { GatewayRuntime } from "./gateway.ts";
import type { SubscriptionFactory } from "./session.ts";
import { GatewayError } from "./errors.ts";
/** Placeholder factory. */
export function jsSubscriptionFactory(
  _rt: GatewayRuntime,
  _opts: { maxBatch: number; durableInactiveMs: number },
): SubscriptionFactory {
  return () => Promise.reject(new GatewayError("unavailable", "js_sub is not available"));
}
