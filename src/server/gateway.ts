/** The natsgate gateway: our own HTTP/WebSocket transport, sessions, NATS and the auth bucket.
 * `Gateway.start()` returns a running server; `close()` shuts it down cleanly (1001 to clients).
 * @module */

import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { createTokenVerifier, type VerifiedToken } from "../auth/verify.ts";
import { CapabilityStore } from "../auth/capability_store.ts";
import { validateRoleName } from "../auth/roles.ts";
import { CloseCode } from "../protocol/errors.ts";
import type { SessionInfo } from "../nats/control.ts";
import { DEFAULT_LIMITS, type GatewayOptions } from "./options.ts";
import { connectNats } from "../nats/connect.ts";
import { createLogger, type Logger } from "../log/log.ts";
import { GatewayMetrics } from "./metrics.ts";
import { type Readiness, ReadinessProbe } from "./readiness.ts";
import type { Session, SessionContext } from "../session/session.ts";
import type { GatewayRuntime, SessionLimits } from "../session/types.ts";
import { SubjectHub } from "../session/subject_hub.ts";
import { validateBucketName } from "../protocol/subject.ts";
import { type ConnInfo, type Handler, HttpServer } from "../transport/mod.ts";
import { addressKey, type Cidr, inCidrs, parseCidr, type ProxyHeader } from "./client_ip.ts";
import { IpGate } from "./ip_gate.ts";
import { overBudget } from "../session/backpressure.ts";
import type { PendingBudget } from "../session/outbound.ts";
import { ControlPlane, watchNatsStatus } from "./control_plane.ts";
import { UserSlots } from "./user_slots.ts";
import { type UpgradeDeps, upgradeSession } from "./upgrade.ts";

export { DEFAULT_LIMITS, type GatewayOptions } from "./options.ts";

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
  #server: HttpServer;
  #tlsFiles?: { certFile: string; keyFile: string };
  #ipGate: IpGate;
  /** Raw sockets per peer address (untrusted peers), counted before anything is read. */
  #socketGate: IpGate;
  #trusted: Cidr[];
  #proxyHeader: ProxyHeader;
  #budget: PendingBudget;
  #budgetScheduled = false;
  #closeTimeoutMs: number;
  #sweepTimer: ReturnType<typeof setInterval>;
  #sessions = new Set<Session>();
  #userSlots: UserSlots;
  #store: CapabilityStore;
  #hub: SubjectHub;
  #ownsNc: boolean;
  #control: ControlPlane;
  #handler?: Handler;
  /** Checks waiting for sessions or sockets to go (drain, close): run when one goes. */
  #gone = new Set<() => void>();
  #closing = false;
  #closed?: Promise<void>;
  #wsPath: string;
  #metrics: GatewayMetrics;
  #readiness: ReadinessProbe;
  #closedTraffic = { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0 };

  private constructor(init: {
    id: string;
    nc: NatsConnection;
    ownsNc: boolean;
    log: Logger;
    store: CapabilityStore;
    server: (g: Gateway) => HttpServer;
    wsPath: string;
    tlsFiles?: { certFile: string; keyFile: string };
    opts: GatewayOptions;
    limits: SessionLimits;
  }) {
    const opts = init.opts;
    this.#ipGate = new IpGate({
      maxConnsPerIp: opts.maxConnsPerIp ?? 1000,
      upgradeRatePerIp: opts.upgradeRatePerIp ?? 100,
    });
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? 5000;
    this.#userSlots = new UserSlots(opts.maxConnsPerUser ?? 32);
    this.#socketGate = new IpGate({ maxConnsPerIp: opts.maxConnsPerIp ?? 1000 });
    this.#trusted = (opts.trustProxy ?? []).map(parseCidr);
    this.#proxyHeader = opts.trustProxyHeader ?? "x-forwarded-for";
    this.#budget = {
      counter: { bytes: 0 },
      max: opts.maxPendingTotal ?? 1024 * 1024 * 1024,
      onOver: () => {
        if (this.#budgetScheduled) return;
        this.#budgetScheduled = true;
        queueMicrotask(() => {
          this.#budgetScheduled = false;
          this.#enforceBudget();
        });
      },
    };
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
      sessions: () => this.sessionCount,
      sockets: () => this.#server?.connections ?? 0,
      pendingBytes: () => this.#budget.counter.bytes,
      sessionsPerUser: () => this.#userSlots.counts(),
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
    }, {
      onProcUnavailable: (err) =>
        this.log.info("process metrics: /proc is not readable (Deno needs --allow-all for it)", {
          missing: "process_virtual_memory_bytes process_open_fds process_max_fds",
          error: err,
        }),
    });
    this.#readiness = new ReadinessProbe(async () => {
      return await this.#store.readable()
        ? { ready: true }
        : { ready: false, reason: "auth bucket not readable" };
    }, { timeoutReason: "auth bucket read not answered within 1000 ms" });
    this.#control = new ControlPlane({
      id: this.id,
      nc: this.nc,
      log: this.log,
      metrics: this.#metrics,
      sessions: () => this.#sessions,
      stopped: () => this.#closed !== undefined,
    });
    try {
      this.#server = init.server(this);
    } catch (err) {
      // Not listening (e.g. the port is taken): nothing started here may outlive this, and the
      // teardown must not read as NATS trouble (the caller closes NATS).
      this.#metrics.close();
      this.#store.close();
      throw err;
    }
    watchNatsStatus(this.nc, this.log, this.#metrics, () => this.#closed !== undefined);
    this.addr = this.#server.addr;
    // Stalled readers are found by a sweep: nobody pushes to them, so no push notices.
    const every = Math.max(50, Math.min(1000, init.limits.writeDeadlineMs / 5));
    this.#sweepTimer = setInterval(() => this.#sweep(), every);
  }

  #sweep(): void {
    const now = performance.now();
    for (const s of this.#sessions) s.checkPressure(now);
    this.#ipGate.sweep(now);
    this.#socketGate.sweep(now);
    if (this.#budget.counter.bytes > this.#budget.max) this.#enforceBudget();
  }

  /**
   * Over the gateway's pending budget: cut the largest open queues until they fit it again.
   * Sockets already closing are left out: their bytes go within the close timeout anyway, and
   * counting them would cut every open client for what closing ones hold.
   */
  #enforceBudget(): void {
    const open = [...this.#sessions].filter((s) => !s.closed).map((s) => ({
      s,
      pending: s.pendingBytes,
    }));
    for (const { s } of overBudget(open, this.#budget.max)) s.cutForBudget();
  }

  /**
   * Right after accept(), before anything is read: a peer that is not a trusted proxy may hold
   * at most `--max-conns-per-ip` sockets, request heads and plain HTTP included.
   */
  #acceptSocket(peer: Deno.NetAddr): boolean {
    if (inCidrs(peer.hostname, this.#trusted)) return true;
    return this.#socketGate.admit(addressKey(peer.hostname), performance.now()) === undefined;
  }

  #socketClosed(peer: Deno.NetAddr): void {
    if (!inCidrs(peer.hostname, this.#trusted)) this.#socketGate.release(addressKey(peer.hostname));
    this.#notifyGone();
  }

  #notifyGone(): void {
    for (const check of [...this.#gone]) check();
  }

  /** Resolves once `done()` holds (checked whenever a session or socket goes), or after `ms`. */
  #until(done: () => boolean, ms: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.#gone.delete(check);
        resolve();
      };
      const check = () => {
        if (done()) finish();
      };
      const timer = setTimeout(finish, Math.min(Math.max(0, ms), 2 ** 31 - 1));
      this.#gone.add(check);
    });
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
    const roleErr = opts.defaultRole === undefined ? null : validateRoleName(opts.defaultRole);
    if (roleErr) throw new Error(`invalid default role: ${roleErr}`);
    if (opts.jwtRolesClaim === "") throw new Error("invalid roles claim: empty");
    const ownsNc = !opts.nc;
    const nc = opts.nc ?? await connectNats({
      servers: opts.nats ?? ["nats://127.0.0.1:4222"],
      reconnectForever: true,
    });
    try {
      const kv = await new Kvm(nc).create(bucket, { history: 10 });
      const store = await CapabilityStore.open(kv, log, {
        nc,
        bucket,
        policy: { defaultRole: opts.defaultRole, rolesClaim: opts.jwtRolesClaim },
      });
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
        opts,
        limits,
        server: (g) => {
          g.#handler = g.handler(opts, limits, verify, runtime);
          return HttpServer.listen({
            hostname: opts.hostname ?? "0.0.0.0",
            port: opts.port ?? 8080,
            tls,
            headerTimeoutMs: opts.headerTimeoutMs,
            maxConns: opts.maxConns ?? 50_000,
            onAccept: (peer) => g.#acceptSocket(peer),
            onConnClosed: (peer) => g.#socketClosed(peer),
            onError: (err, where) => log.warn("transport error", { where, error: err }),
          }, g.#handler);
        },
      });
      gw.#control.start();
      log.info("gateway listening", {
        id,
        addr: `${gw.addr.hostname}:${gw.addr.port}`,
        path: gw.#wsPath,
        nats: nc.getServer(),
      });
      return gw;
    } catch (err) {
      if (ownsNc) {
        await nc.close().catch((e) => log.debug("NATS close after a failed start", { error: e }));
      }
      throw err;
    }
  }

  /**
   * The gateway's HTTP handler: the WebSocket path, health, readiness, metrics, then
   * `httpHandler` (console), else 404. Built apart from listening, so any server can drive it.
   */
  handler(
    opts: GatewayOptions,
    limits: SessionLimits,
    verify: (t: string) => Promise<VerifiedToken>,
    runtime: GatewayRuntime,
  ): Handler {
    const cookieName = opts.authCookie ?? "natsgate_token";
    const allowedOrigins = opts.allowedOrigins ?? [];
    const context: SessionContext = {
      nc: this.nc,
      hub: this.#hub,
      store: this.#store,
      verify,
      limits,
      log: this.log,
      acquireUserSlot: (user) => this.#userSlots.acquire(user),
      releaseUserSlot: (user) => this.#userSlots.release(user),
      onClosed: (s) => {
        if (!this.#sessions.delete(s)) return;
        // Every accepted connection ends here once, authenticated or not (4001s included).
        this.#metrics.closed(s.closeCode ?? 1006);
        const t = this.#closedTraffic;
        t.msgsIn += s.msgsIn;
        t.bytesIn += s.bytesIn;
        t.msgsOut += s.msgsOut;
        t.bytesOut += s.outStats.bytes;
        this.#notifyGone();
      },
      observeCmd: (seconds, outcome) => this.#metrics.cmd(seconds, outcome),
      emit: (s, event, fields) => this.#control.emit(s, event, fields),
      kvSubscribe: opts.kvSubscribe?.(runtime),
      jsSubscribe: opts.jsSubscribe?.(runtime),
      budget: this.#budget,
      onCut: (reason) => this.#metrics.cut(reason),
      onAuthFailure: (s, reason, message) => {
        this.#metrics.authFailed(reason);
        this.log.info("auth failed", { session: s.id, remote: s.meta.remote, reason, message });
      },
      onAbuse: (s) => {
        const ms = this.#ipGate.penalize(addressKey(s.meta.ip), performance.now());
        this.log.info("client address penalised for abuse", { ip: s.meta.ip, ms });
      },
    };
    const deps: UpgradeDeps = {
      closing: () => this.#closing,
      trusted: this.#trusted,
      proxyHeader: this.#proxyHeader,
      ipGate: this.#ipGate,
      metrics: this.#metrics,
      log: this.log,
      pending: this.#budget.counter,
      cookieName,
      allowedOrigins,
      verify,
      closeTimeoutMs: opts.closeTimeoutMs ?? 5000,
      context,
      opened: (session) => {
        this.#sessions.add(session);
        this.#metrics.connection();
      },
    };
    return async (req: Request, info: ConnInfo): Promise<Response> => {
      const url = new URL(req.url);
      if (url.pathname === this.#wsPath) {
        const res = await upgradeSession(req, url, info, deps);
        // A refusal's reason is readable by a page on another origin (no credentials involved).
        if (res.status >= 400) res.headers.set("access-control-allow-origin", "*");
        return res;
      }
      if (url.pathname === "/healthz") return new Response("ok\n");
      if (url.pathname === "/metrics") return await this.#metrics.render();
      if (url.pathname === "/readyz") {
        const r = await this.#ready();
        return r.ready
          ? new Response("ready\n")
          : new Response(`not ready: ${r.reason}\n`, { status: 503 });
      }
      const extra = await opts.httpHandler?.(req, url);
      if (extra) return extra;
      return new Response("not found\n", { status: 404 });
    };
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
    if (!this.#tlsFiles || this.#closing) return;
    const tls = await _readTls(this.#tlsFiles);
    await this.#server.reloadTls(tls.cert, tls.key);
    this.log.info("TLS certificate reloaded", { cert: this.#tlsFiles.certFile });
  }

  /**
   * Ready: not draining, NATS connected, and the auth bucket readable (probed at most 1/s,
   * answered within 1 s even while NATS does not answer).
   */
  #ready(): Promise<Readiness> {
    if (this.#closing) return Promise.resolve({ ready: false, reason: "draining" });
    if (this.nc.isClosed()) {
      return Promise.resolve({ ready: false, reason: "NATS connection closed" });
    }
    return this.#readiness.probe();
  }

  /** Open sessions on this gateway (closing ones left out), optionally of one user. */
  sessions(user?: string): SessionInfo[] {
    return this.#control.sessions(user);
  }

  /**
   * The HTTP handler the listener serves (see {@link Gateway.handler}): any server built on
   * src/transport/ can serve it too, e.g. a second `HttpServer` on port 0 in a test.
   */
  get requestHandler(): Handler {
    return this.#handler!;
  }

  /** Number of open sessions (a closing one counts until it is closed, not until its socket is gone). */
  get sessionCount(): number {
    let n = 0;
    for (const s of this.#sessions) if (!s.closed) n++;
    return n;
  }

  /** Open TCP sockets on the listener, closing ones included. */
  get socketCount(): number {
    return this.#server.connections;
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
    await this.#until(() => this.#sessions.size === 0 || this.#closed !== undefined, timeoutMs);
    await this.close();
  }

  /**
   * Shuts down: refuses new upgrades, closes every session with 1001, stops listening, and
   * drains NATS when the gateway opened the connection. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#closed = (async () => {
      this.#closing = true;
      for (const s of [...this.#sessions]) s.close(CloseCode.GOING_AWAY, "server shutting down");
      // Give the close frames (1001) a moment to reach the clients before the sockets go.
      await this.#until(() => this.#server.connections === 0, Math.min(2000, this.#closeTimeoutMs));
      this.#control.close();
      clearInterval(this.#sweepTimer);
      this.#metrics.close();
      this.#hub.close();
      this.#store.close();
      await this.#server.close();
      if (this.#ownsNc && !this.nc.isClosed()) {
        await this.nc.drain().catch((e) => this.log.debug("NATS drain failed", { error: e }));
      }
      this.log.info("gateway stopped", { id: this.id });
    })();
    this.#notifyGone(); // a drain waiting for the last session ends now
    return this.#closed;
  }
}

async function _readTls(f: { certFile: string; keyFile: string }) {
  return { cert: await Deno.readTextFile(f.certFile), key: await Deno.readTextFile(f.keyFile) };
}
