/** One client connection: the session state machine, the op table and its handlers, the
 * subscriptions, outbound queue and backpressure, rate limits and the shared core subscriptions;
 * types.ts is the plug-in contract.
 * @module */

export * from "./types.ts";
export * from "./session.ts";
export * from "./outbound.ts";
export * from "./backpressure.ts";
export * from "./rate_limit.ts";
export * from "./subject_hub.ts";
export { OP_HANDLERS, type OpHandler } from "./ops.ts";
export type { OpScope, SessionState } from "./op_scope.ts";
export { SessionSubscriptions, type Vanished } from "./subscriptions.ts";
export { CoreSubscription, type CoreSubscriptionHost } from "./core_subscription.ts";
