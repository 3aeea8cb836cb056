/** The natsgate gateway: Deno.serve with WebSocket upgrades, sessions, NATS and the auth bucket.
 * `Gateway.start()` returns a running server; `close()` shuts it down cleanly (1001 to clients).
 * @module */

import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { createTokenVerifier, originAllowed, requestToken, type VerifiedToken } from "./auth.ts";
import { CapabilityStore } from "./capability_store.ts";
import { CloseCode, GatewayError } from "./errors.ts";
import {
  CONTROL_PREFIX,
  eventSubject,
  INBOX_PREFIX,
  type KickRequest,
  type SessionInfo,
  SESSIONS_KICK_SUBJECT,
  SESSIONS_LIST_SUBJECT,
  type SessionsListRequest,
} from "./control.ts";
import { createLogger, type Logger } from "./log.ts";
import { GatewayMetrics } from "./metrics.ts";
import {
  Session,
  type SessionContext,
  type SessionEvent,
  type SessionLimits,
  type SubscriptionFactory,
} from "./session.ts";
import { SubjectHub } from "./subject_hub.ts";
import { TlsFront } from "./tls_front.ts";
import { validateBucketName } from "./subject.ts";

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
    /** Time for the handshake and first request head (default 10 s; slow-loris defence). */
    headerTimeoutMs?: number;
  };
  /** Extra HTTP routes tried before 404 (e.g. the console page). */
  httpHandler?: (
    req: Request,
    url: URL,
  ) => Response | undefined | Promise<Response | undefined>;
}

/** What subscription factories may use. */
export interface GatewayRuntime {
  /** The NATS connection. */
  nc: NatsConnection;
  /** Logger. */
  log: Logger;
  /** Limits in force. */
  limits: SessionLimits;
}

/** Default limits of PROTOCOL.md section 6. */
export const DEFAULT_LIMITS: SessionLimits = Object.freeze({
  maxFrameBytes: 65536,
  maxSubs: 256,
  rate: 200,
  burst: 400,
  maxLinesPerFrame: 400,
  maxPendingCmds: 64,
  maxPendingBytes: 1024 * 1024,
  backpressureTimeoutMs: 250,
  maxCmdTimeoutMs: 30000,
  authTimeoutMs: 5000,
});

/** A running gateway. */
export class Gateway {
  /** Gateway id. */
  readonly id: string;
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** The NATS connection. */
  readonly nc: NatsConnection;
  /** Logger. */
  readonly log: Logger;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #front?: TlsFront;
  #tlsFiles?: { certFile: string; keyFile: string };
  #sessions = new Set<Session>();
  #userSlots = new Map<string, number>();
  #store: CapabilityStore;
  #hub: SubjectHub;
  #ownsNc: boolean;
  #controlSubs: Subscription[] = [];
  #closing = false;
  #closed?: Promise<void>;
  #wsPath: string;
  #metrics: GatewayMetrics;
  #closedTraffic = { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0 };

  private constructor(init: {
    id: string;
    nc: NatsConnection;
    ownsNc: boolean;
    log: Logger;
    store: CapabilityStore;
    server: (g: Gateway) => Deno.HttpServer<Deno.NetAddr>;
    wsPath: string;
    tlsFiles?: { certFile: string; keyFile: string };
  }) {
    this.#tlsFiles = init.tlsFiles;
    this.id = init.id;
    this.nc = init.nc;
    this.#ownsNc = init.ownsNc;
    this.log = init.log;
    this.#store = init.store;
    this.#wsPath = init.wsPath;
    this.#hub = new SubjectHub(init.nc, (err, subject) => {
      this.log.warn("NATS subscription error", { subject, error: err });
    });
    this.#metrics = new GatewayMetrics({
      sessions: () => this.#sessions.size,
      sessionsPerUser: () => this.#userSlots.values(),
      subscriptionsByKind: () => {
        const by: Record<string, number> = {};
        for (const s of this.#sessions) s.countSubscriptions(by);
        return by;
      },
      traffic: () => {
        const t = { ...this.#closedTraffic };
        for (const s of this.#sessions) {
          t.msgsIn += s.msgsIn;
          t.bytesIn += s.bytesIn;
          t.msgsOut += s.msgsOut;
          t.bytesOut += s.outStats.bytes;
        }
        return t;
      },
      capabilityReloads: () => this.#store.reloads,
    });
    this.#watchNatsStatus();
    this.#server = init.server(this);
    this.addr = this.#front?.addr ?? this.#server.addr;
  }

  /** Starts a gateway: connects NATS, opens the auth bucket, listens. */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    if (!opts.jwtSecret && !opts.jwtPublicKey && !opts.jwksUrl) {
      throw new Error("a JWT key is required (secret, public key or JWKS URL)");
    }
    const log = opts.log ?? createLogger();
    const bucket = opts.authBucket ?? "auth";
    const bucketErr = validateBucketName(bucket);
    if (bucketErr) throw new Error(`invalid auth bucket name: ${bucketErr}`);
    const ownsNc = !opts.nc;
    const nc = opts.nc ?? await connect({
      servers: opts.nats ?? ["nats://127.0.0.1:4222"],
      name: "natsgate",
      noAsyncTraces: true,
      inboxPrefix: INBOX_PREFIX,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
    });
    try {
      const kv = await new Kvm(nc).create(bucket, { history: 10 });
      const store = await CapabilityStore.open(kv, log, { nc, bucket });
      const limits: SessionLimits = { ...DEFAULT_LIMITS, ...opts.limits };
      const runtime: GatewayRuntime = { nc, log, limits };
      const verify = await createTokenVerifier({
        secret: opts.jwtSecret,
        publicKeyPem: opts.jwtPublicKey,
        jwksUrl: opts.jwksUrl,
        issuer: opts.jwtIssuer,
        audience: opts.jwtAudience,
        requireExp: !opts.allowNoExp,
      });
      const id = opts.id ?? crypto.randomUUID().slice(0, 8);
      const tls = opts.tls ? await _readTls(opts.tls) : undefined;
      const gw: Gateway = new Gateway({
        id,
        nc,
        ownsNc,
        log,
        store,
        wsPath: opts.wsPath ?? "/ws",
        tlsFiles: opts.tls,
        server: (g) => g.#listen(opts, limits, verify, runtime, tls),
      });
      gw.#startControl();
      log.info("gateway listening", {
        id,
        addr: `${gw.addr.hostname}:${gw.addr.port}`,
        path: gw.#wsPath,
        nats: nc.getServer(),
      });
      return gw;
    } catch (err) {
      if (ownsNc) await nc.close().catch(() => {});
      throw err;
    }
  }

  #listen(
    opts: GatewayOptions,
    limits: SessionLimits,
    verify: (t: string) => Promise<VerifiedToken>,
    runtime: GatewayRuntime,
    tls: { cert: string; key: string } | undefined,
  ): Deno.HttpServer<Deno.NetAddr> {
    const cookieName = opts.authCookie ?? "natsgate_token";
    const allowedOrigins = opts.allowedOrigins ?? [];
    const maxConns = opts.maxConnsPerUser ?? 32;
    const context: SessionContext = {
      nc: this.nc,
      hub: undefined as unknown as SubjectHub,
      store: this.#store,
      verify,
      limits,
      log: this.log,
      acquireUserSlot: (user) => {
        const n = this.#userSlots.get(user) ?? 0;
        if (n >= maxConns) return false;
        this.#userSlots.set(user, n + 1);
        return true;
      },
      releaseUserSlot: (user) => {
        const n = (this.#userSlots.get(user) ?? 1) - 1;
        if (n <= 0) this.#userSlots.delete(user);
        else this.#userSlots.set(user, n);
      },
      onClosed: (s) => {
        if (!this.#sessions.delete(s)) return;
        const t = this.#closedTraffic;
        t.msgsIn += s.msgsIn;
        t.bytesIn += s.bytesIn;
        t.msgsOut += s.msgsOut;
        t.bytesOut += s.outStats.bytes;
      },
      observeCmd: (seconds, outcome) => this.#metrics.cmd(seconds, outcome),
      emit: (s, event, fields) => this.#emit(s, event, fields),
      kvSubscribe: opts.kvSubscribe?.(runtime),
      jsSubscribe: opts.jsSubscribe?.(runtime),
    };
    Object.defineProperty(context, "hub", { get: () => this.#hub });
    const handler = async (
      req: Request,
      info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    ): Promise<Response> => {
      const url = new URL(req.url);
      if (url.pathname === this.#wsPath) {
        // Read the peer address now: Deno refuses it once the handler has awaited.
        const remote = this.#front?.remoteFor(info.remoteAddr.port) ?? _remote(info);
        return await this.#upgrade(req, url, remote, context, {
          cookieName,
          allowedOrigins,
          verify,
        });
      }
      if (url.pathname === "/healthz") return new Response("ok\n");
      if (url.pathname === "/metrics") return await this.#metrics.render();
      if (url.pathname === "/readyz") {
        const ready = await this.#ready();
        return new Response(ready ? "ready\n" : "not ready\n", { status: ready ? 200 : 503 });
      }
      const extra = await opts.httpHandler?.(req, url);
      if (extra) return extra;
      return new Response("not found\n", { status: 404 });
    };
    const hostname = opts.hostname ?? "0.0.0.0";
    const port = opts.port ?? 8080;
    if (!tls) return Deno.serve({ hostname, port, onListen: () => {} }, handler);
    // TLS: a TLS front on the public port pipes to a plain listener on loopback, so the
    // certificate can be swapped without touching established connections.
    const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
    try {
      this.#front = new TlsFront(
        { hostname, port, ...tls, headerTimeoutMs: opts.tls?.headerTimeoutMs },
        backend.addr.port,
      );
    } catch (err) {
      backend.shutdown();
      throw err;
    }
    return backend;
  }

  /** Whether the gateway serves wss://. */
  get tls(): boolean {
    return this.#tlsFiles !== undefined;
  }

  /**
   * Re-reads the TLS certificate and key (on SIGHUP). New connections get the new certificate;
   * established ones are not touched. A pair that cannot be used throws and changes nothing.
   */
  async reloadTls(): Promise<void> {
    if (!this.#tlsFiles || !this.#front || this.#closing) return;
    const tls = await _readTls(this.#tlsFiles);
    await this.#front.reload(tls.cert, tls.key);
    this.log.info("TLS certificate reloaded", { cert: this.#tlsFiles.certFile });
  }

  async #upgrade(
    req: Request,
    url: URL,
    remote: string,
    context: SessionContext,
    cfg: {
      cookieName: string;
      allowedOrigins: string[];
      verify: (t: string) => Promise<VerifiedToken>;
    },
  ): Promise<Response> {
    if (this.#closing) return new Response("shutting down\n", { status: 503 });
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade\n", { status: 426 });
    }
    if (!originAllowed(req.headers.get("origin"), cfg.allowedOrigins, req.headers.get("host"))) {
      this.log.info("upgrade refused: origin not allowed", { origin: req.headers.get("origin") });
      return new Response("origin not allowed\n", { status: 403 });
    }
    const token = requestToken(req, url, cfg.cookieName);
    let verified: VerifiedToken | undefined;
    if (token !== undefined) {
      try {
        verified = await cfg.verify(token);
      } catch (err) {
        const reason = err instanceof GatewayError ? err.message : "invalid token";
        this.log.info("upgrade refused: bad token", { reason, remote });
        return new Response(`unauthorized: ${reason}\n`, { status: 401 });
      }
    }
    // The request is consumed by the upgrade: read what the session needs first.
    const userAgent = req.headers.get("user-agent") ?? undefined;
    const { socket, response } = Deno.upgradeWebSocket(req, { idleTimeout: 60 });
    const session = new Session(socket, context, { remote, userAgent });
    this.#sessions.add(session);
    this.#metrics.connection();
    socket.onopen = () => session.start(verified);
    socket.onmessage = (e) => session.receive(e.data);
    socket.onclose = (e) => session.socketClosed(e.code, e.reason);
    socket.onerror = () => {};
    return response;
  }

  /** Probe result, shared by `/readyz` requests within a second of each other. */
  #readyProbe?: { at: number; ok: Promise<boolean> };

  /** Ready: not draining, NATS connected, and the auth bucket readable (probed at most 1/s). */
  #ready(): Promise<boolean> {
    if (this.#closing || this.nc.isClosed()) return Promise.resolve(false);
    const now = Date.now();
    if (!this.#readyProbe || now - this.#readyProbe.at > 1000) {
      this.#readyProbe = { at: now, ok: this.#store.readable() };
    }
    return this.#readyProbe.ok;
  }

  #watchNatsStatus(): void {
    (async () => {
      for await (const st of this.nc.status()) {
        if (st.type === "reconnect") {
          this.#metrics.natsReconnect();
          this.log.info("NATS reconnected", { server: st.server });
        } else if (st.type === "disconnect") {
          this.log.warn("NATS disconnected", { server: st.server });
        } else if (st.type === "error") {
          // The server's reason, e.g. "Authorization Violation" or a permissions violation.
          this.log.warn("NATS server error", { error: st.error?.message ?? String(st.error) });
        } else if (st.type === "ldm") {
          this.log.info("NATS server entering lame duck mode", { server: st.server });
        } else if (st.type === "close" && !this.#closed) {
          this.log.error("NATS connection closed for good: clients get unavailable", {});
        }
      }
    })().catch(() => {});
  }

  #count(event: SessionEvent, fields?: Record<string, unknown>): void {
    switch (event) {
      case "disconnect":
        this.#metrics.closed(typeof fields?.code === "number" ? fields.code : 0);
        return;
      case "denied":
        this.#metrics.denied(String(fields?.op ?? "unknown"));
        return;
      case "backpressure":
        this.#metrics.limit("backpressure");
        return;
      case "limit":
        this.#metrics.limit(String(fields?.limit ?? "unknown"));
        return;
      case "revoke":
        this.#metrics.revoked(Array.isArray(fields?.revoked) ? fields.revoked.length : 0);
        return;
    }
  }

  #emit(s: Session, event: SessionEvent, fields?: Record<string, unknown>): void {
    this.#count(event, fields);
    if (this.log.enabled("debug")) {
      this.log.debug(`session ${event}`, { session: s.id, user: s.user, ...fields });
    } else if (event === "connect" || event === "disconnect") {
      this.log.info(`session ${event}`, { session: s.id, user: s.user, ...fields });
    }
    if (this.nc.isClosed() || this.#closed) return;
    try {
      this.nc.publish(
        eventSubject(this.id, event),
        JSON.stringify({
          event,
          time: new Date().toISOString(),
          gateway: this.id,
          session: s.id,
          user: s.user,
          remote: s.meta.remote,
          ...fields,
        }),
      );
    } catch {
      // NATS closed or draining: events are best effort.
    }
  }

  #startControl(): void {
    const list = this.nc.subscribe(SESSIONS_LIST_SUBJECT, {
      callback: (_err, msg) => {
        let req: SessionsListRequest = {};
        try {
          req = msg.data.length ? msg.json<SessionsListRequest>() : {};
        } catch {
          // an unreadable filter lists everything
        }
        if (req.gateway && req.gateway !== this.id) return;
        msg.respond(JSON.stringify({ gateway: this.id, sessions: this.sessions(req.user) }));
      },
    });
    const kick = this.nc.subscribe(SESSIONS_KICK_SUBJECT, {
      callback: (_err, msg) => {
        let req: KickRequest;
        try {
          req = msg.json<KickRequest>();
        } catch {
          return;
        }
        for (const s of this.#sessions) {
          if (s.id === req.session) {
            const reason = typeof req.reason === "string" ? req.reason : "kicked by an admin";
            s.close(CloseCode.PROTOCOL, reason, { kicked: true });
            msg.respond(JSON.stringify({ gateway: this.id, session: s.id, kicked: true }));
          }
        }
      },
    });
    this.#controlSubs.push(list, kick);
    void CONTROL_PREFIX;
  }

  /** Sessions on this gateway, optionally of one user. */
  sessions(user?: string): SessionInfo[] {
    const out: SessionInfo[] = [];
    for (const s of this.#sessions) {
      if (user !== undefined && s.user !== user) continue;
      const stats = s.outStats;
      out.push({
        id: s.id,
        gateway: this.id,
        user: s.user,
        remote: s.meta.remote,
        user_agent: s.meta.userAgent,
        since: s.since.toISOString(),
        subscriptions: s.subscriptions(),
        msgs_in: s.msgsIn,
        bytes_in: s.bytesIn,
        msgs_out: s.msgsOut,
        bytes_out: stats.bytes,
      });
    }
    return out;
  }

  /** Number of open sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Number of NATS subscriptions held for clients (shared per subject). */
  get natsSubscriptionCount(): number {
    return this.#hub.size;
  }

  /** WebSocket URL clients connect to (with 127.0.0.1 for a wildcard listen address). */
  get wsUrl(): string {
    const host = this.addr.hostname === "0.0.0.0" ? "127.0.0.1" : this.addr.hostname;
    return `${this.tls ? "wss" : "ws"}://${host}:${this.addr.port}${this.#wsPath}`;
  }

  /** Whether the gateway is draining or closed (readyz answers 503). */
  get draining(): boolean {
    return this.#closing;
  }

  /**
   * Drains: `/readyz` turns 503 and new upgrades are refused at once, so a balancer moves new
   * clients elsewhere; after `timeoutMs` (or when the last client has left) it closes.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#closing = true;
    this.log.info("draining", { sessions: this.#sessions.size, timeout_ms: timeoutMs });
    const end = Date.now() + timeoutMs;
    while (this.#sessions.size > 0 && Date.now() < end && !this.#closed) {
      await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, end - Date.now()))));
    }
    await this.close();
  }

  /**
   * Shuts down: refuses new upgrades, closes every session with 1001, stops listening, and
   * drains NATS when the gateway opened the connection. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      for (const s of [...this.#sessions]) s.close(CloseCode.GOING_AWAY, "server shutting down");
      for (const sub of this.#controlSubs) {
        try {
          sub.unsubscribe();
        } catch {
          // ignore
        }
      }
      this.#hub.close();
      this.#store.close();
      this.#front?.close();
      await Promise.race([this.#server.shutdown(), new Promise((r) => setTimeout(r, 2000))]);
      if (this.#ownsNc && !this.nc.isClosed()) await this.nc.drain().catch(() => {});
      this.log.info("gateway stopped", { id: this.id });
    })();
    return this.#closed;
  }
}

async function _readTls(f: { certFile: string; keyFile: string }) {
  return { cert: await Deno.readTextFile(f.certFile), key: await Deno.readTextFile(f.keyFile) };
}

function _remote(info: Deno.ServeHandlerInfo<Deno.NetAddr>): string {
  const a = info.remoteAddr;
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}
