/** Stream subscription kinds plugged into sessions: `kv_sub` (KV watch) and `js_sub`
 * (JetStream: factory, request parsing, durables, the subscription), built on the session
 * contract in ../session/types.ts.
 * @module */

export * from "./extensions.ts";
export * from "./kv_watch.ts";
export * from "./js_consumer.ts";
export * from "./js_request.ts";
export * from "./js_subscription.ts";
export * from "./durables.ts";
