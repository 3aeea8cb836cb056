/** natsgate as a library: run a gateway in your own process, check capabilities the way the
 * gateway does, mint tokens and encode user keys from a backend, and launch nats-server in tests.
 * The binary's entry is main.ts; internals (sessions, queues, the transport) stay unexported.
 *
 * @example
 * ```ts
 * import { Gateway, gatewayExtensions } from "@natsgate/natsgate";
 * const gw = await Gateway.start({
 *   nats: ["nats://127.0.0.1:4222"],
 *   jwtSecret: "a secret of at least 32 bytes, for HS256 tokens",
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   ...gatewayExtensions(),
 * });
 * await gw.close();
 * ```
 * @module */

// Running a gateway.
export { DEFAULT_LIMITS, Gateway, type GatewayOptions } from "./server/gateway.ts";
export { consoleHandler, type ConsoleOptions } from "./server/static_assets.ts";
export {
  gatewayExtensions,
  type StreamFactories,
  type StreamSubscriptionSettings,
} from "./streams/extensions.ts";
export type { SessionLimits } from "./session/types.ts";

// Identity and capabilities, as the gateway decides them.
export {
  type Capabilities,
  type CapabilitySet,
  checkCommand,
  checkKv,
  checkPublish,
  checkStream,
  checkSubscribe,
  compileCapabilities,
  type Decision,
  parseCapabilities,
  parseCapabilitiesJson,
} from "./auth/capabilities.ts";
export { createTokenVerifier, type JwtOptions, type VerifiedToken } from "./auth/verify.ts";
export { type MintOptions, mintToken } from "./auth/mint.ts";
export { decodeUserId, encodeUserId, userKey, validateUserId } from "./auth/user_key.ts";
export { roleKey, type RolePolicy, validateRoleName } from "./auth/roles.ts";
export { encodeTemplateValue, expandPattern, type TemplateContext } from "./auth/templates.ts";
export {
  type EffectiveCapabilities,
  effectiveCapabilities,
  type EffectiveInput,
} from "./auth/effective.ts";

// Protocol values a tool or backend may need.
export { CloseCode, type ErrorCode, GatewayError } from "./protocol/errors.ts";
export type {
  KickRequest,
  SessionEventRecord,
  SessionInfo,
  SessionsListReply,
  SessionsListRequest,
} from "./nats/control.ts";
export { eventsFilter, SESSIONS_KICK_SUBJECT, SESSIONS_LIST_SUBJECT } from "./nats/control.ts";

// NATS plumbing.
export { connectNats, type NatsAccess } from "./nats/connect.ts";
export { NatsServer, type NatsServerOptions } from "./nats/launcher.ts";
export { findNatsServer } from "./nats/install.ts";
export { createLogger, type Logger, type LoggerOptions } from "./log/log.ts";
