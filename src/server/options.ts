/** What a gateway can be configured with ({@link GatewayOptions}) and the session limits it
 * applies by default ({@link DEFAULT_LIMITS}).
 * @module */

import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../log/log.ts";
import type { GatewayRuntime, SessionLimits, SubscriptionFactory } from "../session/types.ts";
import type { ProxyHeader } from "./client_ip.ts";

/** Everything a gateway can be configured with; see {@link DEFAULT_LIMITS} for limit defaults. */
export interface GatewayOptions {
  /** Listen host (default `0.0.0.0`). */
  hostname?: string;
  /** Listen port (default 8080; 0 picks a free one). */
  port?: number;
  /** WebSocket path (default `/ws`). */
  wsPath?: string;
  /** NATS server URLs. Ignored when `nc` is given. */
  nats?: string[];
  /** An already connected NATS connection (the gateway does not close it). */
  nc?: NatsConnection;
  /** Auth bucket (default `auth`), created when missing. */
  authBucket?: string;
  /** A role every authenticated user holds (`--default-role`). */
  defaultRole?: string;
  /** A token claim listing role names that apply too, if they exist (`--jwt-roles-claim`). */
  jwtRolesClaim?: string;
  /** HS256 secret. */
  jwtSecret?: string;
  /** PEM public key (RS256, ES256 or EdDSA). */
  jwtPublicKey?: string;
  /** JWKS URL. */
  jwksUrl?: string;
  /** Required `iss`. */
  jwtIssuer?: string;
  /** Required `aud`. */
  jwtAudience?: string;
  /** Accept tokens without `exp` (default false: they are refused). A refresh never removes an
   * expiry either way. */
  allowNoExp?: boolean;
  /** Cookie carrying the token (default `natsgate_token`). */
  authCookie?: string;
  /** Allowed Origins; `*` allows any; empty: same origin only (default). */
  allowedOrigins?: string[];
  /** Connections per user (default 32). */
  maxConnsPerUser?: number;
  /** Session limits (defaults: {@link DEFAULT_LIMITS}). */
  limits?: Partial<SessionLimits>;
  /** Gateway id in control events and listings (default: random). */
  id?: string;
  /** Logger (default: info, text, stderr). */
  log?: Logger;
  /** `kv_sub` support. */
  kvSubscribe?: (ctx: GatewayRuntime) => SubscriptionFactory;
  /** `js_sub` support. */
  jsSubscribe?: (ctx: GatewayRuntime) => SubscriptionFactory;
  /** TLS (wss://): PEM certificate chain and key files, re-read by `reloadTls()`. */
  tls?: {
    certFile: string;
    keyFile: string;
  };
  /** Time for the TLS handshake and the request head, on every listener (default 10 s). */
  headerTimeoutMs?: number;
  /** Open sockets on the listener; more are closed at once (default 50 000). */
  maxConns?: number;
  /** Open WebSocket connections per client address (default 1 000). */
  maxConnsPerIp?: number;
  /** Upgrades per second per client address, burst twice that (default 100). */
  upgradeRatePerIp?: number;
  /** Proxies (CIDRs) whose forwarding header names the client (default: none). */
  trustProxy?: string[];
  /** The one header the trusted proxies set (default `x-forwarded-for`). */
  trustProxyHeader?: ProxyHeader;
  /** Pending outbound bytes of all connections together (default 1 GiB). */
  maxPendingTotal?: number;
  /** After the gateway closes a WebSocket, the socket is torn down by then (default 5 s). */
  closeTimeoutMs?: number;
  /** Extra HTTP routes tried before 404 (e.g. the console page). */
  httpHandler?: (
    req: Request,
    url: URL,
  ) => Response | undefined | Promise<Response | undefined>;
}

/** Default limits of docs/protocol.md section 6. */
export const DEFAULT_LIMITS: SessionLimits = Object.freeze({
  maxFrameBytes: 65536,
  maxSubs: 256,
  rate: 200,
  burst: 400,
  maxLinesPerFrame: 400,
  maxPendingCmds: 64,
  maxPendingBytes: 8 * 1024 * 1024,
  backpressureTimeoutMs: 250,
  writeDeadlineMs: 5000,
  maxCmdTimeoutMs: 30000,
  authTimeoutMs: 5000,
});
