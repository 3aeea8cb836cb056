/** The client: one connection to a gateway (or several, tried in turn), authenticated by an
 * `auth` frame, reconnecting with backoff, refreshing its token, and renewing every subscription
 * on each new connection.
 * @module */

import type { Capabilities, CapUpdateData, ClientFrame, ServerFrame } from "../protocol/types.ts";
import { backoffDelay } from "./backoff.ts";
import { PendingCalls } from "./calls.ts";
import { Connection } from "./connection.ts";
import { CoreSubscription } from "./core_subscription.ts";
import { closeError, describeOp, errorFromFrame } from "./error_map.ts";
import {
  ClientClosedError,
  ConnectionError,
  InternalError,
  NatsgateError,
  NotConnectedError,
  TimeoutError,
  UnauthorizedError,
} from "./errors.ts";
import type { ConnectionState, NatsgateClientEventMap } from "./events.ts";
import { JsSubscription } from "./js_subscription.ts";
import { KvWatch } from "./kv_watch.ts";
import type { JsMsg, KvEvent, Msg, Reply } from "./messages.ts";
import {
  type ClientConfig,
  type ConnectOptions,
  type JsSubscribeOptions,
  type KvWatchOptions,
  type PublishOptions,
  type RequestOptions,
  resolveConfig,
  type SubscribeOptions,
} from "./options.ts";
import { payloadFields } from "./payload.ts";
import { whyNotOpened } from "./probe.ts";
import { isFinalEnd, mayRetry } from "./reconnect.ts";
import { type Deferred, deferred, type Subscription } from "./subscription.ts";
import { SubscriptionRegistry } from "./subscriptions.ts";
import { TokenKeeper } from "./token_keeper.ts";
import { wsUrl } from "./url.ts";

/** Extra time the client waits past a request's server-side timeout before giving up itself. */
const _REQUEST_GRACE_MS = 2_000;

type _AnySub = Subscription<unknown>;

/**
 * Connects to a gateway and resolves once authenticated (after the first `cap_update`).
 * Rejects with a {@link NatsgateError} when the first attempt fails (after one try of each URL
 * when several are given), unless `waitOnFirstConnect` is set: `UnauthorizedError` for a refused
 * token (with the gateway's reason), `ConnectionError` naming the URL and cause when unreachable.
 *
 * @example
 * ```ts
 * const client = await connect("wss://gw.example/ws", { getToken: () => fetchToken() });
 * ```
 */
export async function connect(
  url: string | URL | Array<string | URL>,
  options: ConnectOptions,
): Promise<NatsgateClient> {
  const client = new NatsgateClient(url, options);
  await client.opened;
  return client;
}

/**
 * A connection to a natsgate gateway. Authenticates with an `auth` frame, reconnects with
 * exponential backoff and jitter, re-subscribes everything on reconnect, resumes JetStream
 * subscriptions after the last delivered sequence and re-syncs KV watches without spurious
 * events. Dispatches `state`, `capabilities`, `revoked` and `error` events (`CustomEvent`s; see
 * {@link NatsgateClient.on}).
 *
 * @example
 * ```ts
 * const client = new NatsgateClient("/ws", { token });
 * client.on("state", (d) => console.log(d.state, d.error?.message));
 * await client.opened;
 * ```
 */
export class NatsgateClient extends EventTarget {
  readonly #urls: string[];
  #urlIndex = 0;
  readonly #cfg: ClientConfig;
  #state: ConnectionState = "connecting";
  #conn: Connection | undefined;
  /** The current socket has been authenticated. */
  #authed = false;
  readonly #tokens: TokenKeeper;
  #everOpened = false;
  #attempt = 0;
  readonly #calls = new PendingCalls();
  readonly #subs: SubscriptionRegistry;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #authInbox: string | undefined;
  /** What the gateway answered to the last `auth` frame when it refused it. */
  #authError: NatsgateError | undefined;
  #caps: Capabilities = {};
  #user: string | undefined;
  #session: string | undefined;
  readonly #opened: Deferred = deferred();
  #lastClose: { code: number; reason: string } | undefined;

  /**
   * Starts connecting at once; `opened` resolves when authenticated.
   * @param url `ws://`, `wss://`, `http(s)://` or, in a browser, a path like `/ws`; with several,
   *   each reconnect attempt moves to the next one
   */
  constructor(url: string | URL | Array<string | URL>, options: ConnectOptions) {
    super();
    if (
      !options ||
      (typeof options.token !== "string" && typeof options.getToken !== "function")
    ) {
      throw new TypeError("connect: options.token or options.getToken is required");
    }
    const urls = Array.isArray(url) ? url : [url];
    if (urls.length === 0) throw new TypeError("connect: at least one gateway URL is required");
    this.#urls = urls.map(wsUrl);
    this.#cfg = resolveConfig(options);
    this.#tokens = new TokenKeeper(options.token, options.getToken);
    this.#subs = new SubscriptionRegistry({
      call: (env, timeoutMs) => this.#call(env, timeoutMs),
      connection: () => this.#conn,
      isOpen: () => this.#state === "open" && this.#authed,
      report: (error, sub) => this.#emitError(error, sub),
      revoked: (subs) =>
        this.#dispatch("revoked", { subscriptions: subs, capabilities: this.#caps }),
      backoff: (n) => this.#backoff(n),
      requestTimeoutMs: this.#cfg.requestTimeoutMs,
    });
    queueMicrotask(() => this.#dial());
  }

  /** Resolves when the client is first authenticated; rejects if it closes before that. */
  get opened(): Promise<void> {
    return this.#opened.promise;
  }

  /** `connecting`, `open`, `reconnecting` or `closed`. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The WebSocket URL of the gateway in use (or tried next). */
  get url(): string {
    return this.#urls[this.#urlIndex];
  }

  /** Every gateway URL given, in the order they are tried. */
  get urls(): string[] {
    return [...this.#urls];
  }

  /** The effective capabilities from the latest `cap_update`. */
  get capabilities(): Capabilities {
    return this.#caps;
  }

  /** The authenticated user id (the token's `sub`). */
  get user(): string | undefined {
    return this.#user;
  }

  /** The gateway's id of the current session (changes on reconnect). */
  get session(): string | undefined {
    return this.#session;
  }

  /** Live subscriptions of every kind. */
  get subscriptions(): _AnySub[] {
    return this.#subs.all;
  }

  /** Adds a listener for a client event; returns a function that removes it. */
  on<K extends keyof NatsgateClientEventMap>(
    type: K,
    listener: (
      detail: NatsgateClientEventMap[K]["detail"],
      event: NatsgateClientEventMap[K],
    ) => void,
  ): () => void {
    const fn = (e: Event) => {
      const ce = e as NatsgateClientEventMap[K];
      listener(ce.detail, ce);
    };
    this.addEventListener(type, fn);
    return () => this.removeEventListener(type, fn);
  }

  /**
   * Subscribes to a core NATS subject (wildcards allowed). Without a handler, iterate it with
   * `for await`.
   */
  subscribe<T = unknown>(
    subject: string,
    handler?: (msg: Msg<T>) => unknown,
    options?: SubscribeOptions,
  ): CoreSubscription<T>;
  /** Subscribes without a handler: iterate the subscription with `for await`. */
  subscribe<T = unknown>(subject: string, options: SubscribeOptions): CoreSubscription<T>;
  subscribe<T = unknown>(
    subject: string,
    a?: ((msg: Msg<T>) => unknown) | SubscribeOptions,
    b?: SubscribeOptions,
  ): CoreSubscription<T> {
    const [handler, options] = typeof a === "function" || a === undefined ? [a, b] : [b, a];
    return this.#add(
      new CoreSubscription<T>(
        this.#subs.api,
        subject,
        handler as ((msg: Msg<T>) => unknown) | undefined,
        (options as SubscribeOptions | undefined) ?? {},
      ),
    );
  }

  /** Watches a KV bucket, keeping a local key → entry map; `ready` resolves after the snapshot. */
  kvWatch<T = unknown>(
    bucket: string,
    options?: KvWatchOptions,
    handler?: (event: KvEvent<T>) => unknown,
  ): KvWatch<T>;
  /** Watches a whole KV bucket. */
  kvWatch<T = unknown>(bucket: string, handler: (event: KvEvent<T>) => unknown): KvWatch<T>;
  kvWatch<T = unknown>(
    bucket: string,
    a?: KvWatchOptions | ((event: KvEvent<T>) => unknown),
    b?: (event: KvEvent<T>) => unknown,
  ): KvWatch<T> {
    const [options, handler] = typeof a === "function" ? [{}, a] : [a ?? {}, b];
    return this.#add(new KvWatch<T>(this.#subs.api, bucket, options, handler));
  }

  /** Follows a JetStream stream; resumes after reconnects without gap or duplicate. */
  jsSubscribe<T = unknown>(
    stream: string,
    options?: JsSubscribeOptions,
    handler?: (msg: JsMsg<T>) => unknown,
  ): JsSubscription<T>;
  /** Follows a whole JetStream stream from new messages on. */
  jsSubscribe<T = unknown>(stream: string, handler: (msg: JsMsg<T>) => unknown): JsSubscription<T>;
  jsSubscribe<T = unknown>(
    stream: string,
    a?: JsSubscribeOptions | ((msg: JsMsg<T>) => unknown),
    b?: (msg: JsMsg<T>) => unknown,
  ): JsSubscription<T> {
    const [options, handler] = typeof a === "function" ? [{}, a] : [a ?? {}, b];
    return this.#add(new JsSubscription<T>(this.#subs.api, stream, options, handler));
  }

  /**
   * Sends a command (NATS request) and resolves with the reply, typed as `Res`. Rejects with a
   * {@link NatsgateError} subclass: `ForbiddenError`, `NoRespondersError`, `TimeoutError`,
   * `NotConnectedError`, ...
   */
  request<Req = unknown, Res = unknown>(
    subject: string,
    payload?: Req,
    options: RequestOptions = {},
  ): Promise<Reply<Res>> {
    const timeoutMs = options.timeoutMs ?? this.#cfg.requestTimeoutMs;
    const env: ClientFrame = {
      op: "cmd",
      target: subject,
      timeout_ms: timeoutMs,
      ...payloadFields(payload, options),
    };
    if (options.headers) env.headers = options.headers;
    return this.#call(env, timeoutMs + _REQUEST_GRACE_MS).then((e) => {
      const reply: Reply<Res> = { payload: e.data as Res };
      if (e.encoding) reply.encoding = e.encoding;
      if (e.headers) reply.headers = e.headers;
      return reply;
    });
  }

  /**
   * Publishes a message; resolves when the gateway accepted it. The returned promise may be
   * ignored: its rejection is never reported as unhandled.
   */
  publish<T = unknown>(subject: string, payload?: T, options: PublishOptions = {}): Promise<void> {
    const env: ClientFrame = { op: "pub", target: subject, ...payloadFields(payload, options) };
    if (options.headers) env.headers = options.headers;
    const p = this.#call(env, this.#cfg.requestTimeoutMs).then(() => undefined);
    p.catch(() => {});
    return p;
  }

  /** Closes the connection for good; pending requests reject with `ClientClosedError`. */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    const conn = this.#conn;
    this.#finish(new ClientClosedError(`client closed (gateway ${this.url})`), undefined);
    await conn?.shutdown("client closed");
  }

  /** `await using client = await connect(...)` closes it at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- internals ----

  #add<S extends _AnySub>(sub: S): S {
    if (this.#state === "closed") {
      sub.fail(new ClientClosedError(`${sub.kind} subscription ${sub.target}: client closed`));
      return sub;
    }
    return this.#subs.add(sub);
  }

  /** Sends an op with an inbox and settles with its answer. */
  #call(env: ClientFrame, timeoutMs: number): Promise<ServerFrame> {
    const what = describeOp(env);
    const context = { op: env.op, ...(env.target === undefined ? {} : { target: env.target }) };
    if (this.#state !== "open" || !this.#authed) {
      return Promise.reject(
        new NotConnectedError(`${what}: not connected to ${this.url} (${this.#state})`, {
          context,
          url: this.url,
        }),
      );
    }
    const inbox = this.#calls.inbox();
    const url = this.url;
    const answer = this.#calls.wait(
      inbox,
      what,
      timeoutMs,
      () =>
        new TimeoutError(`${what}: no answer from gateway ${url} within ${timeoutMs} ms`, {
          context,
          url,
        }),
    );
    this.#send({ ...env, inbox });
    return answer;
  }

  #send(env: ClientFrame): void {
    this.#conn?.send(env);
  }

  // ---- connection ----

  /** Whether the client has closed for good (a method, so checks after an await stay honest). */
  #isClosed(): boolean {
    return this.#state === "closed";
  }

  async #dial(): Promise<void> {
    if (this.#isClosed()) return;
    this.#reconnectTimer = undefined;
    let token: string;
    try {
      token = await this.#tokens.current(this.#everOpened || this.#attempt > 0);
    } catch (err) {
      if (this.#isClosed()) return;
      const e = _tokenError(err);
      this.#emitError(e);
      this.#retry(e);
      return;
    }
    if (this.#isClosed()) return;
    let conn: Connection;
    try {
      conn = new Connection(this.url, {
        envelope: (env) => {
          if (this.#conn !== conn) return;
          try {
            this.#onEnvelope(env);
          } catch (err) {
            this.#emitError(new InternalError(`client failure: ${_message(err)}`, { cause: err }));
          }
        },
        unreadable: (err) => {
          this.#emitError(
            new InternalError(`unreadable frame from gateway ${conn.url}`, { cause: err }),
          );
        },
        closed: (code, reason, opened, err) => this.#onClose(conn, code, reason, opened, err),
      });
    } catch (err) {
      this.#finish(
        new ConnectionError(`invalid gateway URL ${this.url}: ${_message(err)}`, {
          url: this.url,
          cause: err,
        }),
        undefined,
      );
      return;
    }
    this.#conn = conn;
    this.#authed = false;
    this.#authError = undefined;
    this.#authInbox = this.#calls.inbox();
    conn.authenticate(token, this.#authInbox);
  }

  #onEnvelope(env: ServerFrame): void {
    switch (env.op) {
      case "msg": {
        const sub = typeof env.sid === "string" ? this.#subs.bySid(env.sid) : undefined;
        // Unknown sid: a late message of a closed subscription.
        if (sub) sub.deliver(_record(env.data), env.target);
        return;
      }
      case "reply":
      case "pong":
      case "error": {
        if (env.inbox !== undefined && env.inbox === this.#authInbox) {
          this.#onAuthAnswer(env);
          return;
        }
        if (this.#calls.settle(env, errorFromFrame)) return;
        if (env.op === "error") this.#onStrayError(errorFromFrame(env.data));
        return;
      }
      case "cap_update":
        this.#onCapUpdate(_record(env.data) as Partial<CapUpdateData>);
        return;
    }
  }

  #onAuthAnswer(env: ServerFrame): void {
    if (env.op === "error") {
      // The gateway closes with 4001 next: its reason ("token expired") goes into that error.
      this.#authError = errorFromFrame(env.data);
      if (this.#authed) this.#emitError(this.#authError);
      return;
    }
    if (this.#authed) this.#scheduleRefresh(); // an answered refresh
  }

  #onStrayError(err: NatsgateError): void {
    this.#subs.streamFailed(err.context?.op, err.context?.target);
    this.#emitError(err);
  }

  #onCapUpdate(data: Partial<CapUpdateData>): void {
    this.#caps = data.capabilities ?? {};
    if (data.user !== undefined) this.#user = data.user;
    if (data.session !== undefined) this.#session = data.session;
    const revoked = this.#subs.revoke(Array.isArray(data.revoked) ? data.revoked : []);
    if (!this.#authed) this.#onOpen();
    this.#dispatch("capabilities", {
      capabilities: this.#caps,
      user: this.#user,
      session: this.#session,
      revoked,
    });
    if (revoked.length > 0) {
      this.#dispatch("revoked", { subscriptions: revoked, capabilities: this.#caps });
    }
  }

  #onOpen(): void {
    this.#authed = true;
    this.#attempt = 0;
    this.#lastClose = undefined;
    const first = !this.#everOpened;
    this.#everOpened = true;
    this.#setState("open", {});
    this.#scheduleRefresh();
    this.#conn?.keepAlive(this.#cfg.pingIntervalMs, () => this.#calls.inbox());
    this.#subs.renewAll();
    if (first) this.#opened.resolve();
  }

  /** The socket closed (or is given up: `err` set). */
  async #onClose(
    conn: Connection,
    code: number,
    reason: string,
    opened: boolean,
    err?: NatsgateError,
  ): Promise<void> {
    if (this.#conn !== conn) return;
    // What ended it, known now unless the socket never opened (then it is asked below); pending
    // ops reject with it as their cause.
    const known = err ?? (opened ? closeError(this.url, code, reason, this.#authError) : undefined);
    this.#dropConnection(known);
    this.#lastClose = { code, reason };
    if (this.#state === "closed") return;
    let error = known;
    if (error === undefined) {
      // Never opened: a browser hides why (a refused upgrade, a dead host); ask over HTTP.
      error = await whyNotOpened(this.url, code);
      if (this.#isClosed() || this.#conn !== undefined) return;
    }
    if (isFinalEnd(code, error.httpStatus, this.#tokens.refreshes)) {
      this.#finish(error, { code, reason });
      return;
    }
    this.#retry(error);
  }

  #retry(err: NatsgateError): void {
    if (this.#state === "closed") return;
    const retry = mayRetry({
      ...this.#cfg,
      everOpened: this.#everOpened,
      attempt: this.#attempt,
      urlCount: this.#urls.length,
    });
    if (!retry) {
      this.#finish(err, this.#lastClose);
      return;
    }
    // Several gateways: each attempt goes to the next one (a dead gateway is not retried first).
    this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    const delayMs = this.#backoff(this.#attempt++);
    this.#setState(this.#everOpened ? "reconnecting" : "connecting", {
      attempt: this.#attempt,
      delayMs,
      code: this.#lastClose?.code,
      reason: this.#lastClose?.reason,
      error: err,
    });
    this.#reconnectTimer = setTimeout(() => this.#dial(), delayMs);
  }

  #backoff(n: number): number {
    return backoffDelay(n, this.#cfg.initialDelayMs, this.#cfg.maxDelayMs, Math.random());
  }

  /** Forgets everything tied to the current socket; pending ops reject with `cause` inside. */
  #dropConnection(cause?: NatsgateError): void {
    const conn = this.#conn;
    const url = this.url;
    this.#conn = undefined;
    this.#authed = false;
    this.#authInbox = undefined;
    this.#authError = undefined;
    this.#tokens.cancel();
    this.#subs.disconnected();
    this.#calls.rejectAll((what) =>
      cause instanceof ClientClosedError
        ? cause
        : new ConnectionError(`${what}: connection to ${url} lost`, { url, cause })
    );
    conn?.drop();
  }

  /** Ends the client: no more reconnects. */
  #finish(err: NatsgateError, close: { code: number; reason: string } | undefined): void {
    if (this.#state === "closed") return;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#setState("closed", { code: close?.code, reason: close?.reason, error: err });
    if (this.#conn) this.#dropConnection(err);
    this.#subs.failAll(err);
    this.#opened.reject(err);
  }

  #setState(state: ConnectionState, info: Record<string, unknown>): void {
    const previous = this.#state;
    if (previous === state && state !== "reconnecting" && state !== "connecting") return;
    this.#state = state;
    this.#dispatch("state", { ...info, state, previous });
  }

  #scheduleRefresh(): void {
    const conn = this.#conn;
    this.#tokens.schedule(() => this.#refresh(conn));
  }

  async #refresh(conn: Connection | undefined): Promise<void> {
    let token: string;
    try {
      token = await this.#tokens.current(true);
    } catch (err) {
      this.#emitError(_tokenError(err));
      if (this.#conn === conn && this.#authed) this.#tokens.retryLater(() => this.#refresh(conn));
      return;
    }
    if (this.#conn !== conn || !this.#authed || !conn) return;
    this.#authInbox = this.#calls.inbox();
    this.#send({ op: "auth", inbox: this.#authInbox, data: { token } });
  }

  #emitError(error: NatsgateError, subscription?: _AnySub): void {
    this.#dispatch("error", subscription ? { error, subscription } : { error });
  }

  #dispatch(type: keyof NatsgateClientEventMap, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** The error for a `getToken()` that threw or returned nothing. */
function _tokenError(err: unknown): NatsgateError {
  return err instanceof NatsgateError
    ? err
    : new UnauthorizedError(`getToken failed: ${_message(err)}`, { cause: err });
}

function _record(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null ? v as Record<string, unknown> : {};
}

function _message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
