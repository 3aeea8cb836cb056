/** Who may do what: token verification and minting, user keys, the capability document and
 * the live capability store read from the auth KV bucket. Fails closed.
 * @module */

export * from "./verify.ts";
export * from "./mint.ts";
export * from "./user_key.ts";
export * from "./capabilities.ts";
export * from "./capability_store.ts";
