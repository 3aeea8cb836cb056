/** The client: one connection to a gateway (or several, tried in turn), authenticated by an
 * `auth` frame, reconnecting with backoff, refreshing its token, and renewing every subscription
 * on each new connection.
 * @module */

import {
  type Capabilities,
  type CapUpdateData,
  type ClientFrame,
  CloseCode,
  type ServerFrame,
} from "../protocol/types.ts";
import { backoffDelay } from "./backoff.ts";
import { PendingCalls } from "./calls.ts";
import { CoreSubscription } from "./core_subscription.ts";
import { closeError, describeOp, errorFromFrame } from "./error_map.ts";
import {
  ClientClosedError,
  ConnectionError,
  ForbiddenError,
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
import { coalesce } from "./outbox.ts";
import { payloadFields } from "./payload.ts";
import { whyNotOpened } from "./probe.ts";
import { type ClientApi, type Deferred, deferred, type Subscription } from "./subscription.ts";
import { tokenRefreshDelay } from "./token.ts";
import { wsUrl } from "./url.ts";

/** Extra time the client waits past a request's server-side timeout before giving up itself. */
const _REQUEST_GRACE_MS = 2_000;

/** Coalesced frames are cut at this many UTF-16 units (the gateway's default limit is 64 KiB). */
const _MAX_COALESCED_CHARS = 16_384;

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
  readonly #opts: ConnectOptions;
  readonly #cfg: ClientConfig;
  #state: ConnectionState = "connecting";
  #ws: WebSocket | undefined;
  /** The current socket opened (a close before that is probed for its reason). */
  #wsOpened = false;
  /** The current socket has been authenticated. */
  #authed = false;
  #token: string | undefined;
  #everOpened = false;
  #attempt = 0;
  readonly #calls = new PendingCalls();
  readonly #subs = new Set<_AnySub>();
  readonly #bySid = new Map<string, _AnySub>();
  #outbox: string[] = [];
  #flushQueued = false;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pingInbox: string | undefined;
  #authInbox: string | undefined;
  /** What the gateway answered to the last `auth` frame when it refused it. */
  #authError: NatsgateError | undefined;
  #caps: Capabilities = {};
  #user: string | undefined;
  #session: string | undefined;
  readonly #opened: Deferred = deferred();
  #lastClose: { code: number; reason: string } | undefined;
  /** Resubscription timers. */
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();

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
    this.#opts = options;
    this.#cfg = resolveConfig(options);
    this.#token = options.token;
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
    return [...this.#subs];
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
        this.#api(),
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
    return this.#add(new KvWatch<T>(this.#api(), bucket, options, handler));
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
    return this.#add(new JsSubscription<T>(this.#api(), stream, options, handler));
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
    const ws = this.#ws;
    this.#finish(new ClientClosedError(`client closed (gateway ${this.url})`), undefined);
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const closed = new Promise<void>((resolve) => {
        ws.addEventListener("close", () => resolve(), { once: true });
        timer = setTimeout(resolve, 1000);
      });
      try {
        ws.close(1000, "client closed");
      } catch {
        // already closing
      }
      await closed;
      clearTimeout(timer);
    }
  }

  /** `await using client = await connect(...)` closes it at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- internals shared with subscriptions ----

  #api(): ClientApi {
    return {
      request: (req) => this.#subscribeOp(req.sub, req.env),
      call: (env) => this.#call(env, this.#cfg.requestTimeoutMs),
      isOpen: () => this.#state === "open" && this.#authed,
      release: (sub) => this.#release(sub),
      report: (error, sub) => this.#emitError(error, sub),
    };
  }

  #add<S extends _AnySub>(sub: S): S {
    if (this.#state === "closed") {
      sub.fail(new ClientClosedError(`${sub.kind} subscription ${sub.target}: client closed`));
      return sub;
    }
    this.#subs.add(sub);
    if (this.#state === "open" && this.#authed) sub.subscribe();
    return sub;
  }

  /** Sends a subscribe op for `sub`; on success maps the new sid to it. */
  #subscribeOp(sub: _AnySub, env: ClientFrame): void {
    if (!this.#subs.has(sub)) return;
    const ws = this.#ws;
    this.#call(env, Infinity).then((e) => {
      if (this.#ws !== ws || !this.#authed) return; // the connection changed: resubscribed there
      const data = (typeof e.data === "object" && e.data !== null ? e.data : {}) as Record<
        string,
        unknown
      >;
      const sid = data.id;
      if (typeof sid !== "string") {
        sub.fail(new InternalError(`${describeOp(env)}: subscribe reply without an id`));
        return;
      }
      if (!this.#subs.has(sub)) {
        this.#unsub(sid);
        return;
      }
      this.#bySid.set(sid, sub);
      sub.subscribed(sid, data);
    }, (err) => {
      if (this.#ws !== ws || !this.#authed || !this.#subs.has(sub)) return; // renewed on reconnect
      if (!(err instanceof NatsgateError)) return;
      if (err.code === "unavailable") {
        // The gateway cannot reach NATS right now: try again later on this connection.
        this.#emitError(err, sub);
        this.#resubscribeLater(sub);
        return;
      }
      if (err.code === "forbidden" && sub.everSubscribed) {
        // Capabilities shrank while we were away: the same as a live revocation.
        this.#release(sub);
        sub.fail(err, true);
        this.#dispatch("revoked", { subscriptions: [sub], capabilities: this.#caps });
        return;
      }
      this.#release(sub);
      sub.fail(err);
      this.#emitError(err, sub);
    });
  }

  #release(sub: _AnySub): void {
    this.#subs.delete(sub);
    const sid = sub.sid;
    if (sid !== undefined && this.#bySid.get(sid) === sub) {
      this.#bySid.delete(sid);
      this.#unsub(sid);
    }
  }

  /** Drops a server subscription, ignoring the answer (it may already be gone). */
  #unsub(sid: string): void {
    if (this.#state !== "open" || !this.#authed) return;
    this.#call({ op: "unsub", data: { id: sid } }, this.#cfg.requestTimeoutMs).catch(() => {});
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

  /** Queues an envelope; all envelopes queued in one task go out as one NDJSON frame. */
  #send(env: ClientFrame): void {
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) return;
    this.#outbox.push(JSON.stringify(env));
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    const lines = this.#outbox;
    this.#outbox = [];
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    for (const frame of coalesce(lines, _MAX_COALESCED_CHARS)) ws.send(frame);
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
      token = await this.#currentToken(this.#everOpened || this.#attempt > 0);
    } catch (err) {
      if (this.#isClosed()) return;
      const e = _tokenError(err);
      this.#emitError(e);
      this.#retry(e);
      return;
    }
    if (this.#isClosed()) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
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
    this.#ws = ws;
    this.#wsOpened = false;
    this.#authed = false;
    this.#authError = undefined;
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      this.#wsOpened = true;
      // Browsers cannot set headers: the token goes in the first frame.
      this.#authInbox = this.#calls.inbox();
      ws.send(JSON.stringify({ op: "auth", inbox: this.#authInbox, data: { token } }));
    };
    ws.onmessage = (e) => {
      if (this.#ws === ws && typeof e.data === "string") this.#onFrame(e.data);
    };
    ws.onclose = (e) => this.#onClose(ws, e.code, e.reason);
    ws.onerror = () => {};
  }

  /** The token to present; `fresh` asks `getToken()` again. */
  async #currentToken(fresh: boolean): Promise<string> {
    const getToken = this.#opts.getToken;
    if (getToken && (fresh || this.#token === undefined)) {
      const t = await getToken();
      if (typeof t !== "string" || t === "") {
        throw new UnauthorizedError("getToken() returned no token");
      }
      this.#token = t;
    }
    return this.#token as string;
  }

  #onFrame(text: string): void {
    for (const line of text.split("\n")) {
      if (line === "") continue;
      let env: unknown;
      try {
        env = JSON.parse(line);
      } catch (err) {
        this.#emitError(
          new InternalError(`unreadable frame from gateway ${this.url}`, { cause: err }),
        );
        continue;
      }
      if (typeof env !== "object" || env === null) continue;
      try {
        this.#onEnvelope(env as ServerFrame);
      } catch (err) {
        this.#emitError(new InternalError(`client failure: ${_message(err)}`, { cause: err }));
      }
      if (this.#state === "closed") return;
    }
  }

  #onEnvelope(env: ServerFrame): void {
    switch (env.op) {
      case "msg": {
        const sub = typeof env.sid === "string" ? this.#bySid.get(env.sid) : undefined;
        // Unknown sid: a late message of a closed subscription.
        if (sub) sub.deliver(_record(env.data), env.target);
        return;
      }
      case "reply":
      case "pong":
      case "error": {
        if (env.op === "pong" && env.inbox === this.#pingInbox) {
          this.#pingInbox = undefined;
          return;
        }
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
    const op = err.context?.op;
    const target = err.context?.target;
    if ((op === "kv_sub" || op === "js_sub") && target !== undefined) {
      // A stream subscription failed on the server after it started (no inbox, no sid):
      // resubscribe every live one of that kind and target; each resumes where it was.
      const kind = op === "kv_sub" ? "kv" : "js";
      for (const sub of this.#subs) {
        if (sub.kind === kind && sub.target === target) this.#resubscribeLater(sub);
      }
    }
    this.#emitError(err);
  }

  #resubscribeLater(sub: _AnySub): void {
    const sid = sub.sid;
    if (sid !== undefined) {
      this.#bySid.delete(sid);
      // The server may still hold it (we cannot tell which one failed): drop it quietly.
      this.#unsub(sid);
    }
    sub.disconnected();
    const ws = this.#ws;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#ws === ws && this.#authed && this.#subs.has(sub)) sub.subscribe();
    }, this.#backoff(sub.failures++));
    this.#timers.add(timer);
  }

  #onCapUpdate(data: Partial<CapUpdateData>): void {
    this.#caps = data.capabilities ?? {};
    if (data.user !== undefined) this.#user = data.user;
    if (data.session !== undefined) this.#session = data.session;
    const revoked: _AnySub[] = [];
    for (const sid of Array.isArray(data.revoked) ? data.revoked : []) {
      const sub = this.#bySid.get(sid);
      if (!sub) continue;
      this.#bySid.delete(sid);
      this.#subs.delete(sub);
      const op = sub.kind === "core" ? "sub" : `${sub.kind}_sub`;
      sub.fail(
        new ForbiddenError(`${op} ${sub.target}: revoked (capabilities changed)`, {
          context: { op, target: sub.target },
        }),
        true,
      );
      revoked.push(sub);
    }
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
    this.#startPing();
    for (const sub of this.#subs) {
      sub.failures = 0;
      sub.subscribe();
    }
    if (first) this.#opened.resolve();
  }

  /** The socket closed (or is given up: `err` set). */
  async #onClose(ws: WebSocket, code: number, reason: string, err?: NatsgateError): Promise<void> {
    if (this.#ws !== ws) return;
    const opened = this.#wsOpened;
    const said = this.#authError;
    this.#dropConnection(err);
    this.#lastClose = { code, reason };
    if (this.#state === "closed") return;
    let error = err;
    if (error === undefined && !opened) {
      // Never opened: a browser hides why (a refused upgrade, a dead host); ask over HTTP.
      error = await whyNotOpened(this.url, code);
      if (this.#isClosed() || this.#ws !== undefined) return;
    }
    error ??= closeError(this.url, code, reason, said);
    const refused = error.httpStatus === 401 || error.httpStatus === 403;
    const retryable = this.#cfg.reconnect &&
      !refused &&
      code !== CloseCode.UNAUTHORIZED &&
      !(code === CloseCode.TOKEN_EXPIRED && !this.#opts.getToken) &&
      (this.#everOpened || this.#cfg.waitOnFirstConnect || this.#attempt < this.#urls.length - 1);
    if (!retryable) {
      this.#finish(error, { code, reason });
      return;
    }
    this.#retry(error);
  }

  #retry(err: NatsgateError): void {
    if (this.#state === "closed") return;
    if (!this.#cfg.reconnect || this.#attempt >= this.#cfg.maxAttempts) {
      this.#finish(err, this.#lastClose);
      return;
    }
    // The first connect gives up after one try of each URL, unless told to wait.
    if (
      !this.#everOpened && !this.#cfg.waitOnFirstConnect && this.#attempt >= this.#urls.length - 1
    ) {
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
    const ws = this.#ws;
    const url = this.url;
    this.#ws = undefined;
    this.#authed = false;
    this.#authInbox = undefined;
    this.#authError = undefined;
    this.#outbox = [];
    this.#stopPing();
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    this.#bySid.clear();
    for (const sub of this.#subs) sub.disconnected();
    this.#calls.rejectAll(() =>
      cause instanceof ClientClosedError
        ? cause
        : new ConnectionError(`connection to ${url} lost`, { url, cause })
    );
    if (ws) {
      ws.onopen =
        ws.onmessage =
        ws.onerror =
        ws.onclose =
          null;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        try {
          ws.close(1000);
        } catch {
          // ignore
        }
      }
    }
  }

  /** Ends the client: no more reconnects. */
  #finish(err: NatsgateError, close: { code: number; reason: string } | undefined): void {
    if (this.#state === "closed") return;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#setState("closed", { code: close?.code, reason: close?.reason, error: err });
    if (this.#ws) this.#dropConnection(err);
    const subs = [...this.#subs];
    this.#subs.clear();
    for (const sub of subs) sub.fail(err);
    this.#opened.reject(err);
  }

  #setState(state: ConnectionState, info: Record<string, unknown>): void {
    const previous = this.#state;
    if (previous === state && state !== "reconnecting" && state !== "connecting") return;
    this.#state = state;
    this.#dispatch("state", { ...info, state, previous });
  }

  #scheduleRefresh(): void {
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    if (!this.#opts.getToken || this.#token === undefined) return;
    const delay = tokenRefreshDelay(this.#token);
    if (delay === undefined) return;
    const ws = this.#ws;
    this.#refreshTimer = setTimeout(
      () => this.#refresh(ws),
      Math.max(1000, Math.min(delay, 2 ** 31 - 1)),
    );
  }

  async #refresh(ws: WebSocket | undefined): Promise<void> {
    this.#refreshTimer = undefined;
    let token: string;
    try {
      token = await this.#currentToken(true);
    } catch (err) {
      this.#emitError(_tokenError(err));
      if (this.#ws === ws && this.#authed) {
        this.#refreshTimer = setTimeout(() => this.#refresh(ws), 5000);
      }
      return;
    }
    if (this.#ws !== ws || !this.#authed || !ws) return;
    this.#authInbox = this.#calls.inbox();
    this.#send({ op: "auth", inbox: this.#authInbox, data: { token } });
  }

  #startPing(): void {
    this.#stopPing();
    const every = this.#cfg.pingIntervalMs;
    if (!(every > 0)) return;
    const ws = this.#ws;
    const url = this.url;
    this.#pingTimer = setInterval(() => {
      if (this.#ws !== ws || !ws) return;
      if (this.#pingInbox !== undefined) {
        // No pong for a whole interval: the connection is dead even if the socket says open.
        this.#onClose(
          ws,
          4000,
          "ping timeout",
          new ConnectionError(`connection to ${url} lost: no pong within ${every} ms`, {
            url,
            closeCode: 4000,
          }),
        );
        return;
      }
      this.#pingInbox = this.#calls.inbox();
      this.#send({ op: "ping", inbox: this.#pingInbox });
    }, every);
  }

  #stopPing(): void {
    if (this.#pingTimer !== undefined) clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
    this.#pingInbox = undefined;
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
