/** The public surface of natsgate's library: the gateway, the capability engine and helpers.
 * The binary's entry is main.ts; this module is for embedding and for tools.
 * @module */

export * from "./auth.ts";
export * from "./capabilities.ts";
export * from "./capability_store.ts";
export * from "./console.ts";
export * from "./control.ts";
export * from "./envelope.ts";
export * from "./errors.ts";
export * from "./extensions.ts";
export * from "./gateway.ts";
export * from "./js_consumer.ts";
export * from "./kv_watch.ts";
export * from "./log.ts";
export * from "./nats_server.ts";
export * from "./outbound.ts";
export * from "./payload.ts";
export * from "./rate_limit.ts";
export * from "./session.ts";
export * from "./subject.ts";
export * from "./subject_hub.ts";
export * from "./token.ts";
export * from "./user_key.ts";
