/** Who may do what: token verification and minting, user keys, the capability document, roles
 * and templates, effective capabilities, and the live capability store read from the auth KV
 * bucket. Fails closed.
 * @module */

export * from "./verify.ts";
export * from "./auth_failure.ts";
export * from "./mint.ts";
export * from "./user_key.ts";
export * from "./capabilities.ts";
export * from "./capability_store.ts";
export * from "./roles.ts";
export * from "./templates.ts";
export * from "./effective.ts";
