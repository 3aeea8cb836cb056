/** Stream subscription kinds plugged into sessions: `kv_sub` (KV watch) and `js_sub`
 * (JetStream consumers, durables), built on the session contract in ../session/types.ts.
 * @module */

export * from "./extensions.ts";
export * from "./kv_watch.ts";
export * from "./js_consumer.ts";
