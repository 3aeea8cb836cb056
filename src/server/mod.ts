/** The gateway process: HTTP handler and WebSocket upgrades over src/transport/, admission
 * per client address, metrics, static assets (SDK and console) and the control plane.
 * @module */

export * from "./gateway.ts";
export * from "./options.ts";
export * from "./upgrade.ts";
export * from "./control_plane.ts";
export * from "./user_slots.ts";
export * from "./client_ip.ts";
export * from "./ip_gate.ts";
export * from "./metrics.ts";
export * from "./static_assets.ts";
