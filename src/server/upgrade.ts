/** A WebSocket upgrade request becoming a session: origin check, admission per client address,
 * the token (query, bearer or cookie) verified before the upgrade, then the session on the socket.
 * @module */

import { originAllowed, requestToken, type VerifiedToken } from "../auth/verify.ts";
import { type AuthFailureReason, authFailureReason } from "../auth/auth_failure.ts";
import type { Logger } from "../log/log.ts";
import { GatewayError } from "../protocol/errors.ts";
import { Session, type SessionContext } from "../session/session.ts";
import { type ConnInfo, upgradeWebSocket } from "../transport/mod.ts";
import { addressKey, type Cidr, clientIp, type ProxyHeader } from "./client_ip.ts";
import type { IpGate, IpRefusal } from "./ip_gate.ts";
import type { GatewayMetrics } from "./metrics.ts";

/** What an upgrade needs of its gateway. */
export interface UpgradeDeps {
  /** True while draining or closed: upgrades are refused (503). */
  closing(): boolean;
  /** Proxies whose forwarding header names the client. */
  trusted: Cidr[];
  /** The header those proxies set. */
  proxyHeader: ProxyHeader;
  /** Admission per client address. */
  ipGate: IpGate;
  /** Metrics. */
  metrics: GatewayMetrics;
  /** Logger. */
  log: Logger;
  /** The gateway-wide pending byte counter the socket adds to. */
  pending: { bytes: number };
  /** Cookie carrying the token. */
  cookieName: string;
  /** Allowed Origins. */
  allowedOrigins: string[];
  /** Token verification. */
  verify: (t: string) => Promise<VerifiedToken>;
  /** Close timeout of the socket. */
  closeTimeoutMs: number;
  /** What each session gets. */
  context: SessionContext;
  /** Called with each new session before it starts. */
  opened(session: Session): void;
}

/**
 * Answers a request on the WebSocket path: refusals as plain HTTP responses (426, 403, 429, 401,
 * 400, 503), else the 101 response with a started session on the socket. A plain GET is checked
 * like an upgrade (so a browser can ask why its upgrade was refused) but not counted again.
 *
 * @example
 * ```ts
 * if (url.pathname === "/ws") return await upgradeSession(req, url, info, deps);
 * ```
 */
export async function upgradeSession(
  req: Request,
  url: URL,
  info: ConnInfo,
  d: UpgradeDeps,
): Promise<Response> {
  if (d.closing()) return new Response("shutting down\n", { status: 503 });
  const peer = info.remoteAddr;
  const ip = clientIp(peer.hostname, req.headers, d.trusted, d.proxyHeader);
  const key = addressKey(ip);
  const remote = ip !== peer.hostname
    ? ip
    : ip.includes(":")
    ? `[${ip}]:${peer.port}`
    : `${ip}:${peer.port}`;
  // A plain GET asking why an upgrade was refused repeats a refusal already counted and logged.
  const upgrade = req.headers.get("upgrade")?.toLowerCase() === "websocket";
  const refusedAuth = (
    reason: AuthFailureReason,
    msg: string,
    fields: Record<string, unknown>,
  ) => {
    if (upgrade) d.metrics.authFailed(reason);
    d.log[upgrade ? "info" : "debug"](msg, { remote, reason, ...fields });
  };
  if (!originAllowed(req.headers.get("origin"), d.allowedOrigins, req.headers.get("host"))) {
    refusedAuth("origin", "upgrade refused: origin not allowed", {
      origin: req.headers.get("origin"),
    });
    return new Response("origin not allowed\n", { status: 403 });
  }
  // Admission before any token work or per-client state.
  const refusal = d.ipGate.admit(key, performance.now());
  if (refusal !== undefined) return _refuse(d, refusal, remote);
  let admitted = true;
  const releaseIp = () => {
    if (admitted) d.ipGate.release(key);
    admitted = false;
  };
  try {
    const token = requestToken(req, url, d.cookieName);
    let verified: VerifiedToken | undefined;
    if (token !== undefined) {
      try {
        verified = await d.verify(token);
      } catch (err) {
        const message = err instanceof GatewayError ? err.message : "invalid token";
        refusedAuth(authFailureReason(err), "upgrade refused: bad token", { message });
        releaseIp();
        return new Response(`unauthorized: ${message}\n`, { status: 401 });
      }
    }
    // A plain GET is checked like an upgrade before it is told to upgrade, so a browser, whose
    // WebSocket cannot read the HTTP status, can ask why its upgrade was refused (the SDK does).
    if (!upgrade) {
      releaseIp();
      return new Response("expected a WebSocket upgrade\n", { status: 426 });
    }
    // The request is consumed by the upgrade: read what the session needs first.
    const userAgent = req.headers.get("user-agent") ?? undefined;
    let up;
    try {
      up = upgradeWebSocket(req, {
        pending: d.pending,
        closeTimeoutMs: d.closeTimeoutMs,
        idleTimeoutMs: 60_000,
      });
    } catch (err) {
      releaseIp();
      return new Response(`bad WebSocket handshake: ${(err as Error).message}\n`, {
        status: 400,
      });
    }
    const { socket, response } = up;
    const session = new Session(socket, d.context, { remote, ip, userAgent });
    d.opened(session);
    socket.onmessage = (text) => session.receive(text);
    socket.onbinary = (bytes) => session.receive(bytes);
    socket.onclose = (code, reason) => {
      releaseIp();
      session.socketClosed(code, reason);
    };
    session.start(verified);
    return response;
  } catch (err) {
    releaseIp();
    throw err;
  }
}

function _refuse(d: UpgradeDeps, refusal: IpRefusal, remote: string): Response {
  d.metrics.refused(refusal);
  d.log.info("upgrade refused", { reason: refusal, remote });
  const text = refusal === "conns_per_ip"
    ? "too many connections from this address"
    : refusal === "upgrade_rate"
    ? "too many connection attempts from this address"
    : "refused for a while after abuse from this address";
  return new Response(`${text}\n`, { status: 429, headers: { "retry-after": "1" } });
}
