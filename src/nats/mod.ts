/** NATS plumbing: connecting (servers, credentials), launching nats-server, the ordered feed
 * that survives reconnects, and the control-plane subjects gateways and the CLI share.
 * @module */

export * from "./connect.ts";
export * from "./control.ts";
export * from "./install.ts";
export * from "./launcher.ts";
export * from "./ordered_feed.ts";
