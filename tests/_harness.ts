/** Test harness: a real nats-server plus a real gateway, and WebSocket clients that speak protocol v1.
 * Each test reads as its scenario: `await using stack = await Stack.start(); const c = await stack.client("u")`.
 * @module */

import { dialWebSocket } from "../src/transport/raw_client.ts";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type KV, Kvm } from "@nats-io/kv";
import { Gateway, type GatewayOptions } from "../src/server/gateway.ts";
import { gatewayExtensions } from "../src/streams/extensions.ts";
import { createLogger, silentLogger } from "../src/log/log.ts";
import { NatsServer, type NatsServerOptions } from "../src/nats/launcher.ts";
import { mintToken } from "../src/auth/mint.ts";
import { userKey } from "../src/auth/user_key.ts";
import type { Capabilities } from "../src/auth/capabilities.ts";

const _ROOT = new URL("..", import.meta.url).pathname;

/** The secret every test gateway uses. */
export const TEST_SECRET = "test-secret-0123456789abcdef0123456789abcdef";

/** A server envelope as received. */
export interface Envelope {
  v?: number;
  op: string;
  target?: string;
  inbox?: string;
  sid?: string;
  // deno-lint-ignore no-explicit-any
  data?: any;
  encoding?: string;
  headers?: Record<string, string | string[]>;
}

/** Waits until `fn` returns a truthy value or `ms` pass. */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  ms = 5000,
  what = "condition",
): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  while (true) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Retries `fn` until it succeeds or `ms` pass, pausing `pauseMs` between tries; rethrows the last error. */
export async function retry<T>(fn: () => Promise<T>, ms = 10_000, pauseMs = 50): Promise<T> {
  const end = Date.now() + ms;
  while (true) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
}

/** Options of {@link TestClient.connect}. */
export interface ClientOptions {
  /** Token sent as `?token=` (default: none). */
  query?: string;
  /** Token sent as `Authorization: Bearer`. */
  bearer?: string;
  /** Cookie header value. */
  cookie?: string;
  /** Origin header. */
  origin?: string;
  /** More request headers (e.g. `X-Forwarded-For` through a loopback proxy the gateway trusts). */
  headers?: Record<string, string>;
}

/** A protocol v1 client on a real WebSocket, recording everything it receives. */
export class TestClient {
  readonly ws: WebSocket;
  /** Every envelope received, in order. */
  readonly received: Envelope[] = [];
  /** Raw frames received (to check coalescing). */
  readonly frames: string[] = [];
  /** Resolves with the close event's code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<() => void> = [];
  #inbox = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (e) => {
        resolve({ code: e.code, reason: e.reason });
        this.#wake();
      });
    });
    ws.addEventListener("message", (e) => {
      const text = typeof e.data === "string" ? e.data : "";
      this.frames.push(text);
      for (const line of text.split("\n")) {
        if (line) this.received.push(JSON.parse(line));
      }
      this.#wake();
    });
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Opens a WebSocket; resolves when open (rejects if the upgrade is refused). */
  static connect(url: string, opts: ClientOptions = {}): Promise<TestClient> {
    const u = new URL(url);
    if (opts.query) u.searchParams.set("token", opts.query);
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
    if (opts.cookie) headers.cookie = opts.cookie;
    if (opts.origin) headers.origin = opts.origin;
    // Deno's WebSocket accepts headers as a second-argument option.
    const ws = new WebSocket(u.toString(), { headers } as unknown as string[]);
    const client = new TestClient(ws);
    return new Promise((resolve, reject) => {
      ws.addEventListener("open", () => resolve(client), { once: true });
      ws.addEventListener(
        "error",
        (e) => reject(new Error(`connect failed: ${(e as ErrorEvent).message}`)),
        { once: true },
      );
    });
  }

  /** Sends envelopes (several make one NDJSON frame). */
  send(...envs: Array<Record<string, unknown>>): void {
    this.ws.send(envs.map((e) => JSON.stringify(e)).join("\n"));
  }

  /** Sends a raw text frame. */
  sendRaw(frame: string | Uint8Array): void {
    this.ws.send(frame);
  }

  /** A fresh inbox id. */
  inbox(): string {
    return `i${++this.#inbox}`;
  }

  /** Waits for the first envelope received (since the start) matching `pred`. */
  async next(pred: (e: Envelope) => boolean, ms = 5000, what = "envelope"): Promise<Envelope> {
    const end = Date.now() + ms;
    while (true) {
      for (let i = 0; i < this.received.length; i++) {
        if (pred(this.received[i])) return this.received[i];
      }
      const left = end - Date.now();
      if (left <= 0) {
        throw new Error(
          `timed out waiting for ${what}; got ${JSON.stringify(this.received.slice(-5))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the answer (reply or error) to an op carrying `inbox`. */
  answer(inbox: string, ms = 5000): Promise<Envelope> {
    return this.next(
      (e) => e.inbox === inbox && (e.op === "reply" || e.op === "error" || e.op === "pong"),
      ms,
      `answer to ${inbox}`,
    );
  }

  /** Sends an op with a fresh inbox and waits for its answer. */
  async request(env: Record<string, unknown>, ms = 5000): Promise<Envelope> {
    const inbox = this.inbox();
    this.send({ ...env, inbox });
    return await this.answer(inbox, ms);
  }

  /** Subscribes (core) and returns the sid; throws on error. */
  async sub(subject: string, data?: Record<string, unknown>): Promise<string> {
    const r = await this.request({ op: "sub", target: subject, data });
    if (r.op !== "reply") throw new Error(`sub ${subject} failed: ${JSON.stringify(r.data)}`);
    return r.data.id;
  }

  /** Messages received on a subscription id. */
  msgs(sid: string): Envelope[] {
    return this.received.filter((e) => e.op === "msg" && e.sid === sid);
  }

  /** Waits until `n` messages arrived on `sid`. */
  async waitMsgs(sid: string, n: number, ms = 5000): Promise<Envelope[]> {
    await waitFor(
      () => this.msgs(sid).length >= n || this.ws.readyState === WebSocket.CLOSED,
      ms,
      `${n} msgs on ${sid}`,
    );
    return this.msgs(sid);
  }

  /** Closes the socket and waits for the close. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    try {
      this.ws.close();
    } catch {
      // ignore
    }
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 2000))]);
  }
}

/** Options of {@link Stack.start}. */
export interface StackOptions {
  /** Gateway option overrides. */
  gateway?: Partial<GatewayOptions>;
  /** nats-server options. */
  nats?: NatsServerOptions;
  /** Log gateway output (default: silent; set NATSGATE_TEST_LOG=debug to see it). */
  verbose?: boolean;
}

/** A nats-server, an admin NATS connection, and a gateway, torn down together. */
export class Stack {
  readonly nats: NatsServer;
  readonly nc: NatsConnection;
  readonly kv: KV;
  gateway: Gateway;
  readonly clients: TestClient[] = [];
  #opts: StackOptions;

  private constructor(
    nats: NatsServer,
    nc: NatsConnection,
    kv: KV,
    gateway: Gateway,
    opts: StackOptions,
  ) {
    this.nats = nats;
    this.nc = nc;
    this.kv = kv;
    this.gateway = gateway;
    this.#opts = opts;
  }

  static async #gateway(url: string, opts: StackOptions): Promise<Gateway> {
    const level = Deno.env.get("NATSGATE_TEST_LOG");
    return await Gateway.start({
      hostname: "127.0.0.1",
      port: 0,
      nats: [url],
      jwtSecret: TEST_SECRET,
      log: level ? createLogger({ level: level as "debug" }) : silentLogger,
      // Every test client comes from 127.0.0.1: per-address admission would count them all as
      // one client. Tests of admission set these (and trustProxy) themselves.
      maxConnsPerIp: 1_000_000,
      upgradeRatePerIp: 1_000_000,
      ...gatewayExtensions(),
      ...opts.gateway,
    });
  }

  /** Starts nats-server and a gateway. */
  static async start(opts: StackOptions = {}): Promise<Stack> {
    const nats = await NatsServer.start(opts.nats);
    try {
      const nc = await connect({
        servers: nats.url,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 100,
      });
      const kv = await new Kvm(nc).create(opts.gateway?.authBucket ?? "auth", { history: 10 });
      const gateway = await Stack.#gateway(nats.url, opts);
      return new Stack(nats, nc, kv, gateway, opts);
    } catch (err) {
      await nats.stop();
      throw err;
    }
  }

  /** Starts one more gateway on the same NATS (caller closes it). */
  extraGateway(overrides: Partial<GatewayOptions> = {}): Promise<Gateway> {
    return Stack.#gateway(this.nats.url, {
      ...this.#opts,
      gateway: { ...this.#opts.gateway, ...overrides },
    });
  }

  /** Writes a user's capabilities (raw string documents are written as is). */
  async setCaps(user: string, caps: Capabilities | string): Promise<number> {
    return await this.kv.put(userKey(user), typeof caps === "string" ? caps : JSON.stringify(caps));
  }

  /** Deletes a user's capabilities. */
  async deleteCaps(user: string): Promise<void> {
    await this.kv.delete(userKey(user));
  }

  /** Mints a token for `user`. */
  token(
    user: string,
    ttlSeconds: number | null = 3600,
    extra: { issuer?: string; audience?: string } = {},
  ): Promise<string> {
    return mintToken({ secret: TEST_SECRET, user, ttlSeconds, ...extra });
  }

  /** Connects a client authenticated as `user` (token in the query) and waits for its first cap_update. */
  async client(user: string, opts: ClientOptions = {}): Promise<TestClient> {
    const c = await this.rawClient({ query: await this.token(user), ...opts });
    await c.next((e) => e.op === "cap_update", 5000, "first cap_update");
    return c;
  }

  /** Connects a client without waiting for anything. */
  async rawClient(opts: ClientOptions = {}): Promise<TestClient> {
    const c = await TestClient.connect(this.gateway.wsUrl, opts);
    this.clients.push(c);
    return c;
  }

  /** Subscription count on the nats-server (for leak checks). */
  async natsSubscriptions(): Promise<number> {
    const v = await this.nats.varz() as { subscriptions: number };
    return v.subscriptions;
  }

  /** Tears everything down. */
  async stop(): Promise<void> {
    for (const c of this.clients) await c.close().catch(() => {});
    await this.gateway.close().catch(() => {});
    await this.nc.close().catch(() => {});
    await this.nats.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Sends `envs` every 20 ms until the gateway closes the client (sustained abuse); resolves with
 * the close code.
 */
export async function floodUntilClosed(
  c: TestClient,
  ...envs: Array<Record<string, unknown>>
): Promise<number> {
  const flood = setInterval(() => {
    try {
      c.send(...envs);
    } catch {
      // closed
    }
  }, 20);
  try {
    return (await c.closed).code;
  } finally {
    clearInterval(flood);
  }
}

/** A WebSocket client on a raw TCP socket that performs the upgrade and then never reads. */
export async function stalledClient(url: string, token: string): Promise<Deno.TcpConn> {
  const u = new URL(url);
  u.searchParams.set("token", token);
  return (await dialWebSocket(u.toString())).conn;
}

/** A running `natsgate` subprocess (`deno run main.ts …`) with its output collected. */
export class NatsgateProcess {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  readonly done: Promise<Deno.CommandStatus>;
  #exited = false;
  #waiters: Array<() => void> = [];

  /** `limitMs`: killed (SIGKILL) if it is still running then, so no test can hang on it. */
  constructor(
    args: string[],
    env: Record<string, string> = {},
    opts: { cwd?: string; limitMs?: number; openFiles?: number } = {},
  ) {
    const argv = ["run", "-A", `${_ROOT}main.ts`, ...args];
    // `openFiles`: run under `ulimit -n` (a child shell that then execs deno).
    const [cmd, cmdArgs] = opts.openFiles === undefined
      ? [Deno.execPath(), argv]
      : ["bash", ["-c", `ulimit -n ${opts.openFiles} && exec "$0" "$@"`, Deno.execPath(), ...argv]];
    this.child = new Deno.Command(cmd, {
      args: cmdArgs,
      cwd: opts.cwd ?? _ROOT,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (s: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        this[key] += chunk;
        this.#wake();
      }
    };
    const out = collect(this.child.stdout, "stdout");
    const err = collect(this.child.stderr, "stderr");
    const child = this.child;
    const timer = opts.limitMs === undefined
      ? undefined
      : setTimeout(() => this.kill(), opts.limitMs);
    this.done = (async () => {
      const status = await child.status;
      clearTimeout(timer);
      await Promise.all([out, err]);
      this.#exited = true;
      this.#wake();
      return status;
    })();
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /**
   * Waits for output (stdout and stderr together) matching `re`, woken by each chunk of output;
   * fails at once when the process exits without it, or after `ms`.
   */
  async waitFor(re: RegExp, ms = 15000): Promise<RegExpExecArray> {
    const end = Date.now() + ms;
    while (true) {
      const m = re.exec(this.stdout + this.stderr);
      if (m) return m;
      const left = end - Date.now();
      if (this.#exited || left <= 0) {
        const why = this.#exited ? "it exited before printing" : "timed out waiting for";
        throw new Error(`${why} ${re}; output:\n${this.stdout}\n${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async wsUrl(path = "/ws"): Promise<string> {
    const m = await this.waitFor(/gateway listening .*addr=([\d.]+):(\d+)/);
    return `ws://127.0.0.1:${m[2]}${path}`;
  }

  async stop(): Promise<Deno.CommandStatus> {
    try {
      this.child.kill("SIGTERM");
    } catch {
      // already gone
    }
    return await this.done;
  }

  /** Kills it at once (SIGKILL). */
  kill(): void {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }

  /** Non-empty stdout lines so far. */
  lines(): string[] {
    return this.stdout.split("\n").filter((l) => l.length > 0);
  }

  /** Exit code and all output, once it has exited. */
  async result(): Promise<{ code: number; stdout: string; stderr: string }> {
    const status = await this.done;
    return { code: status.code, stdout: this.stdout, stderr: this.stderr };
  }

  /** Runs `natsgate <args>` to completion. */
  static run(
    args: string[],
    env: Record<string, string> = {},
    opts: { cwd?: string; limitMs?: number } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return new NatsgateProcess(args, env, opts).result();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
