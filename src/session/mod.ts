/** One client connection: the session state machine, op handlers, outbound queue and
 * backpressure, rate limits and the shared core subscriptions; types.ts is the plug-in contract.
 * @module */

export * from "./types.ts";
export * from "./session.ts";
export * from "./outbound.ts";
export * from "./backpressure.ts";
export * from "./rate_limit.ts";
export * from "./subject_hub.ts";
