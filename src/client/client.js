// @ts-self-types="./client.d.ts"
/** The natsgate client SDK: one dependency-free ES module for browsers and Deno (protocol v1).
 * Served by the gateway at `/client.js`; reconnects, re-authenticates and resumes by itself.
 * @module */

/** Protocol version spoken by this client. */
export const PROTOCOL_VERSION = 1;

/** Close codes after which the client never reconnects on its own. */
const _CLOSE_UNAUTHORIZED = 4001;
const _CLOSE_TOKEN_EXPIRED = 4003;

/** Default options; see `ConnectOptions` in client.d.ts. */
const _DEFAULTS = Object.freeze({
  reconnect: true,
  initialDelayMs: 250,
  maxDelayMs: 10_000,
  maxAttempts: Infinity,
  pingIntervalMs: 20_000,
  requestTimeoutMs: 5_000,
  waitOnFirstConnect: false,
});

/**
 * Settings in force, from the options and the defaults.
 * @typedef {object} _Config
 * @property {boolean} reconnect
 * @property {number} initialDelayMs
 * @property {number} maxDelayMs
 * @property {number} maxAttempts
 * @property {number} pingIntervalMs
 * @property {number} requestTimeoutMs
 * @property {boolean} waitOnFirstConnect
 */

/** Extra time the client waits past a request's server-side timeout before giving up itself. */
const _REQUEST_GRACE_MS = 2_000;

/** Coalesced frames are cut at this many UTF-16 units (the gateway's default limit is 64 KiB). */
const _MAX_COALESCED_CHARS = 16_384;

/**
 * An error with a protocol error code (`forbidden`, `timeout`, `unavailable`, ...), as sent by
 * the gateway or raised by the client (for example `unavailable` while disconnected).
 */
export class NatsgateError extends Error {
  /**
   * @param {string} code protocol error code
   * @param {string} message human-readable message
   * @param {{ context?: { op?: string; target?: string }; closeCode?: number; cause?: unknown }} [options]
   */
  constructor(code, message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NatsgateError";
    /** @type {string} */
    this.code = code;
    /** @type {{ op?: string; target?: string } | undefined} */
    this.context = options.context;
    /** @type {number | undefined} */
    this.closeCode = options.closeCode;
  }
}

/**
 * Decodes a JWT's payload without verifying it (the client only needs `exp` and `iat`).
 * Returns undefined for anything that is not a readable JWT.
 * @param {string} token
 * @returns {Record<string, unknown> | undefined}
 */
export function decodeJwtPayload(token) {
  const parts = typeof token === "string" ? token.split(".") : [];
  if (parts.length !== 3) return undefined;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const json = new TextDecoder().decode(_fromBase64(padded));
    const payload = JSON.parse(json);
    return typeof payload === "object" && payload !== null && !Array.isArray(payload)
      ? payload
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * When to refresh a token, in milliseconds from `nowMs`: 30 s before `exp`, or at 80 % of the
 * lifetime for tokens that live less than 150 s. Undefined for tokens without `exp`.
 * @param {string} token
 * @param {number} [nowMs]
 * @returns {number | undefined}
 */
export function tokenRefreshDelay(token, nowMs = Date.now()) {
  const p = decodeJwtPayload(token);
  if (!p || typeof p.exp !== "number") return undefined;
  const expMs = p.exp * 1000;
  const issuedMs = typeof p.iat === "number" && p.iat * 1000 <= nowMs ? p.iat * 1000 : nowMs;
  const lifetime = expMs - issuedMs;
  const at = lifetime >= 150_000 ? expMs - 30_000 : issuedMs + lifetime * 0.8;
  return Math.max(0, at - nowMs);
}

/**
 * Connects to a gateway and resolves once authenticated (after the first `cap_update`).
 * Rejects with a {@link NatsgateError} when the first attempt fails (after one try of each URL
 * when several are given), unless `waitOnFirstConnect` is set.
 * @param {string | URL | Array<string | URL>} url one gateway, or several tried in turn
 * @param {import("./client.d.ts").ConnectOptions} options
 * @returns {Promise<NatsgateClient>}
 */
export async function connect(url, options) {
  const client = new NatsgateClient(url, options);
  await client.opened;
  return client;
}

/**
 * A connection to a natsgate gateway. Dispatches `state`, `capabilities`, `revoked` and `error`
 * events (`CustomEvent`s; see `on()` for a shorthand).
 */
export class NatsgateClient extends EventTarget {
  /** @type {string[]} */
  #urls;
  #urlIndex = 0;
  /** @type {import("./client.d.ts").ConnectOptions} */
  #opts;
  /** @type {_Config} */
  #cfg;
  /** @type {"connecting" | "open" | "reconnecting" | "closed"} */
  #state = "connecting";
  /** @type {WebSocket | undefined} */
  #ws;
  /** @type {boolean} the current socket has been authenticated */
  #authed = false;
  /** @type {string | undefined} */
  #token;
  #everOpened = false;
  #attempt = 0;
  #nextInbox = 0;
  /** @type {Set<_Subscription>} */
  #subs = new Set();
  /** @type {Map<string, _Subscription>} */
  #bySid = new Map();
  /** @type {Map<string, _Pending>} */
  #pending = new Map();
  /** @type {string[]} */
  #outbox = [];
  #flushQueued = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #reconnectTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #refreshTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #pingTimer;
  /** @type {string | undefined} */
  #pingInbox;
  /** @type {Record<string, unknown>} */
  #caps = {};
  /** @type {string | undefined} */
  #user;
  /** @type {string | undefined} */
  #session;
  /** @type {{ resolve: () => void; reject: (e: unknown) => void; promise: Promise<void> }} */
  #opened;
  /** @type {{ code: number; reason: string } | undefined} */
  #lastClose;
  /** @type {Set<ReturnType<typeof setTimeout>>} resubscription timers */
  #timers = new Set();

  /**
   * Starts connecting at once; `opened` resolves when authenticated.
   * @param {string | URL | Array<string | URL>} url `ws://`, `wss://`, `http(s)://` or, in a
   *   browser, a path like `/ws`; with several, each reconnect attempt moves to the next one
   * @param {import("./client.d.ts").ConnectOptions} options
   */
  constructor(url, options) {
    super();
    if (!options || (typeof options.token !== "string" && typeof options.getToken !== "function")) {
      throw new TypeError("connect: options.token or options.getToken is required");
    }
    const urls = Array.isArray(url) ? url : [url];
    if (urls.length === 0) throw new TypeError("connect: at least one gateway URL is required");
    this.#urls = urls.map(_wsUrl);
    this.#opts = options;
    const r = typeof options.reconnect === "object" ? options.reconnect : {};
    this.#cfg = {
      reconnect: options.reconnect !== false,
      initialDelayMs: r.initialDelayMs ?? _DEFAULTS.initialDelayMs,
      maxDelayMs: r.maxDelayMs ?? _DEFAULTS.maxDelayMs,
      maxAttempts: r.maxAttempts ?? _DEFAULTS.maxAttempts,
      pingIntervalMs: options.pingIntervalMs ?? _DEFAULTS.pingIntervalMs,
      requestTimeoutMs: options.requestTimeoutMs ?? _DEFAULTS.requestTimeoutMs,
      waitOnFirstConnect: options.waitOnFirstConnect ?? _DEFAULTS.waitOnFirstConnect,
    };
    this.#token = options.token;
    this.#opened = _deferred();
    this.#opened.promise.catch(() => {});
    queueMicrotask(() => this.#dial());
  }

  /** Resolves when the client is first authenticated; rejects if it closes before that. */
  get opened() {
    return this.#opened.promise;
  }

  /** `connecting`, `open`, `reconnecting` or `closed`. */
  get state() {
    return this.#state;
  }

  /** The WebSocket URL of the gateway in use (or tried next). */
  get url() {
    return this.#urls[this.#urlIndex];
  }

  /** Every gateway URL given, in the order they are tried. */
  get urls() {
    return [...this.#urls];
  }

  /** The effective capabilities from the latest `cap_update`. */
  get capabilities() {
    return this.#caps;
  }

  /** The authenticated user id (the token's `sub`). */
  get user() {
    return this.#user;
  }

  /** The gateway's id of the current session (changes on reconnect). */
  get session() {
    return this.#session;
  }

  /** Live subscriptions of every kind. */
  get subscriptions() {
    return [...this.#subs];
  }

  /**
   * Adds an event listener and returns a function that removes it.
   * @param {string} type
   * @param {(detail: any, event: CustomEvent) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    /** @param {Event} e */
    const fn = (e) =>
      listener(/** @type {CustomEvent} */ (e).detail, /** @type {CustomEvent} */ (e));
    this.addEventListener(type, fn);
    return () => this.removeEventListener(type, fn);
  }

  /**
   * Subscribes to a core NATS subject (wildcards allowed).
   * @param {string} subject
   * @param {(msg: import("./client.d.ts").Msg) => unknown} handler
   * @param {import("./client.d.ts").SubscribeOptions} [options]
   * @returns {import("./client.d.ts").Subscription}
   */
  subscribe(subject, handler, options = {}) {
    return this.#add(new _CoreSubscription(this.#api(), subject, handler, options));
  }

  /**
   * Watches a KV bucket, keeping a local key → entry map; `ready` resolves after the snapshot.
   * @param {string} bucket
   * @param {import("./client.d.ts").KvWatchOptions} options
   * @param {(event: import("./client.d.ts").KvEvent) => unknown} handler
   * @returns {import("./client.d.ts").KvWatch}
   */
  kvWatch(bucket, options, handler) {
    if (typeof options === "function") {
      return this.#add(new _KvWatch(this.#api(), bucket, {}, options));
    }
    return this.#add(new _KvWatch(this.#api(), bucket, options ?? {}, handler));
  }

  /**
   * Follows a JetStream stream; resumes after reconnects without gap or duplicate.
   * @param {string} stream
   * @param {import("./client.d.ts").JsSubscribeOptions} options
   * @param {(msg: import("./client.d.ts").JsMsg) => unknown} handler
   * @returns {import("./client.d.ts").JsSubscription}
   */
  jsSubscribe(stream, options, handler) {
    if (typeof options === "function") {
      return this.#add(new _JsSubscription(this.#api(), stream, {}, options));
    }
    return this.#add(new _JsSubscription(this.#api(), stream, options ?? {}, handler));
  }

  /**
   * Sends a command (NATS request) and resolves with the reply. Rejects with a
   * {@link NatsgateError}: `forbidden`, `no_responders`, `timeout`, `unavailable`, ...
   * @param {string} subject
   * @param {unknown} [payload]
   * @param {import("./client.d.ts").RequestOptions} [options]
   * @returns {Promise<import("./client.d.ts").Reply>}
   */
  request(subject, payload, options = {}) {
    const timeoutMs = options.timeoutMs ?? this.#cfg.requestTimeoutMs;
    /** @type {Record<string, unknown>} */
    const env = {
      op: "cmd",
      target: subject,
      timeout_ms: timeoutMs,
      ..._payloadFields(payload, options),
    };
    if (options.headers) env.headers = options.headers;
    return /** @type {Promise<import("./client.d.ts").Reply>} */ (this.#call(
      env,
      timeoutMs + _REQUEST_GRACE_MS,
      (e) => {
        /** @type {import("./client.d.ts").Reply} */
        const reply = { payload: e.data };
        if (e.encoding) reply.encoding = e.encoding;
        if (e.headers) reply.headers = e.headers;
        return reply;
      },
    ));
  }

  /**
   * Publishes a message; resolves when the gateway accepted it. The returned promise may be
   * ignored: its rejection is never reported as unhandled.
   * @param {string} subject
   * @param {unknown} [payload]
   * @param {import("./client.d.ts").PublishOptions} [options]
   * @returns {Promise<void>}
   */
  publish(subject, payload, options = {}) {
    /** @type {Record<string, unknown>} */
    const env = { op: "pub", target: subject, ..._payloadFields(payload, options) };
    if (options.headers) env.headers = options.headers;
    const p =
      /** @type {Promise<void>} */ (this.#call(env, this.#cfg.requestTimeoutMs, () => undefined));
    p.catch(() => {});
    return p;
  }

  /** Closes the connection for good; pending requests reject with `unavailable`. */
  async close() {
    if (this.#state === "closed") return;
    const ws = this.#ws;
    this.#finish(new NatsgateError("unavailable", "client closed"), undefined);
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let timer;
      /** @type {Promise<void>} */
      const closed = new Promise((resolve) => {
        ws.addEventListener("close", () => resolve(), { once: true });
        timer = setTimeout(resolve, 1000);
      });
      closed.then(() => clearTimeout(timer));
      try {
        ws.close(1000, "client closed");
      } catch {
        // already closing
      }
      await closed;
    }
  }

  /** `await using client = await connect(...)` closes it at scope end. */
  async [Symbol.asyncDispose]() {
    await this.close();
  }

  // ---- internals shared with subscriptions ----

  /** @returns {_ClientApi} */
  #api() {
    return {
      request: (env) => this.#subscribeOp(env),
      call: (env) => this.#call(env, this.#cfg.requestTimeoutMs, () => undefined),
      isOpen: () => this.#state === "open" && this.#authed,
      release: (sub) => this.#release(sub),
      report: (error, sub) => this.#emitError(error, sub),
      backoff: (n) => this.#backoff(n),
    };
  }

  /**
   * @template {_Subscription} T
   * @param {T} sub
   * @returns {T}
   */
  #add(sub) {
    if (this.#state === "closed") {
      sub.fail(new NatsgateError("unavailable", "client closed"));
      return sub;
    }
    this.#subs.add(sub);
    if (this.#state === "open" && this.#authed) sub.subscribe();
    return sub;
  }

  /**
   * Sends a subscribe op for `sub`; on success maps the new sid to it.
   * @param {{ sub: _Subscription; env: Record<string, unknown> }} req
   */
  #subscribeOp(req) {
    const { sub, env } = req;
    if (!this.#subs.has(sub)) return;
    const ws = this.#ws;
    this.#call(env, Infinity, (e) => e.data?.id).then((sid) => {
      if (this.#ws !== ws || !this.#authed) return; // the connection changed: resubscribed there
      if (typeof sid !== "string") {
        sub.fail(new NatsgateError("internal", "subscribe reply without an id"));
        return;
      }
      if (!this.#subs.has(sub)) {
        this.#unsub(sid);
        return;
      }
      this.#bySid.set(sid, sub);
      sub.subscribed(sid);
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

  /** @param {_Subscription} sub */
  #release(sub) {
    this.#subs.delete(sub);
    const sid = sub.sid;
    if (sid !== undefined && this.#bySid.get(sid) === sub) {
      this.#bySid.delete(sid);
      this.#unsub(sid);
    }
  }

  /**
   * Drops a server subscription, ignoring the answer (it may already be gone).
   * @param {string} sid
   */
  #unsub(sid) {
    if (this.#state !== "open" || !this.#authed) return;
    this.#call({ op: "unsub", data: { id: sid } }, this.#cfg.requestTimeoutMs, () => undefined)
      .catch(() => {});
  }

  #inbox() {
    return `c${(++this.#nextInbox).toString(36)}`;
  }

  /**
   * Sends an op with an inbox and settles with its answer.
   * @param {Record<string, unknown>} env
   * @param {number} timeoutMs
   * @param {(env: any) => unknown} map
   * @returns {Promise<unknown>}
   */
  #call(env, timeoutMs, map) {
    if (this.#state !== "open" || !this.#authed) {
      return Promise.reject(
        new NatsgateError("unavailable", `not connected (${this.#state})`, {
          context: {
            op: /** @type {string} */ (env.op),
            target: /** @type {string} */ (env.target),
          },
        }),
      );
    }
    const inbox = this.#inbox();
    return new Promise((resolve, reject) => {
      /** @type {_Pending} */
      const pending = { resolve: (e) => resolve(map(e)), reject, timer: undefined };
      if (Number.isFinite(timeoutMs)) {
        pending.timer = setTimeout(() => {
          if (this.#pending.get(inbox) !== pending) return;
          this.#pending.delete(inbox);
          reject(
            new NatsgateError("timeout", "no answer from the gateway", {
              context: {
                op: /** @type {string} */ (env.op),
                target: /** @type {string} */ (env.target),
              },
            }),
          );
        }, timeoutMs);
      }
      this.#pending.set(inbox, pending);
      this.#send({ ...env, inbox });
    });
  }

  /**
   * Queues an envelope; all envelopes queued in one task go out as one NDJSON frame.
   * @param {Record<string, unknown>} env
   */
  #send(env) {
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) return;
    this.#outbox.push(JSON.stringify(env));
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  #flush() {
    this.#flushQueued = false;
    const lines = this.#outbox;
    this.#outbox = [];
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    let frame = "";
    for (const line of lines) {
      if (frame && frame.length + line.length + 1 > _MAX_COALESCED_CHARS) {
        ws.send(frame);
        frame = "";
      }
      frame = frame ? frame + "\n" + line : line;
    }
    if (frame) ws.send(frame);
  }

  // ---- connection ----

  /** Whether the client has closed for good (a method, so checks after an await stay honest). */
  #isClosed() {
    return this.#state === "closed";
  }

  async #dial() {
    if (this.#isClosed()) return;
    this.#reconnectTimer = undefined;
    let token;
    try {
      token = await this.#currentToken(this.#everOpened || this.#attempt > 0);
    } catch (err) {
      if (this.#isClosed()) return;
      const e = err instanceof NatsgateError
        ? err
        : new NatsgateError("unauthorized", `getToken failed: ${_message(err)}`, { cause: err });
      this.#emitError(e);
      this.#retry(e);
      return;
    }
    if (this.#isClosed()) return;
    /** @type {WebSocket} */
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      const e = new NatsgateError("bad_request", `invalid gateway URL: ${_message(err)}`);
      this.#finish(e, undefined);
      return;
    }
    this.#ws = ws;
    this.#authed = false;
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      // Browsers cannot set headers: the token goes in the first frame.
      this.#authInbox = this.#inbox();
      ws.send(JSON.stringify({ op: "auth", inbox: this.#authInbox, data: { token } }));
    };
    ws.onmessage = (e) => {
      if (this.#ws === ws && typeof e.data === "string") this.#onFrame(e.data);
    };
    ws.onclose = (e) => this.#onClose(ws, e.code, e.reason);
    ws.onerror = () => {};
  }

  /** @type {string | undefined} */
  #authInbox;

  /**
   * @param {boolean} fresh ask getToken() again
   * @returns {Promise<string>}
   */
  async #currentToken(fresh) {
    const getToken = this.#opts.getToken;
    if (getToken && (fresh || this.#token === undefined)) {
      const t = await getToken();
      if (typeof t !== "string" || t === "") {
        throw new NatsgateError("unauthorized", "getToken() returned no token");
      }
      this.#token = t;
    }
    return /** @type {string} */ (this.#token);
  }

  /** @param {string} text */
  #onFrame(text) {
    for (const line of text.split("\n")) {
      if (line === "") continue;
      /** @type {any} */
      let env;
      try {
        env = JSON.parse(line);
      } catch {
        this.#emitError(new NatsgateError("bad_request", "unreadable frame from the gateway"));
        continue;
      }
      if (typeof env !== "object" || env === null) continue;
      try {
        this.#onEnvelope(env);
      } catch (err) {
        this.#emitError(
          new NatsgateError("internal", `client failure: ${_message(err)}`, { cause: err }),
        );
      }
      if (this.#state === "closed") return;
    }
  }

  /** @param {any} env */
  #onEnvelope(env) {
    switch (env.op) {
      case "msg": {
        const sub = typeof env.sid === "string" ? this.#bySid.get(env.sid) : undefined;
        if (sub) sub.deliver(env); // unknown sid: a late message of a closed subscription
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
        const pending = env.inbox === undefined ? undefined : this.#pending.get(env.inbox);
        if (pending) {
          this.#pending.delete(env.inbox);
          if (pending.timer !== undefined) clearTimeout(pending.timer);
          if (env.op === "error") pending.reject(_errorFrom(env));
          else pending.resolve(env);
          return;
        }
        if (env.op === "error") this.#onStrayError(_errorFrom(env));
        return;
      }
      case "cap_update":
        this.#onCapUpdate(env.data ?? {});
        return;
    }
  }

  /** @param {any} env */
  #onAuthAnswer(env) {
    if (env.op === "error") {
      // The gateway closes with 4001 next; remember why.
      this.#emitError(_errorFrom(env));
      return;
    }
    if (this.#authed) this.#scheduleRefresh(); // an answered refresh
  }

  /** @param {NatsgateError} err */
  #onStrayError(err) {
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

  /** @param {_Subscription} sub */
  #resubscribeLater(sub) {
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

  /** @param {any} data */
  #onCapUpdate(data) {
    this.#caps = data.capabilities ?? {};
    if (data.user !== undefined) this.#user = data.user;
    if (data.session !== undefined) this.#session = data.session;
    /** @type {_Subscription[]} */
    const revoked = [];
    for (const sid of Array.isArray(data.revoked) ? data.revoked : []) {
      const sub = this.#bySid.get(sid);
      if (!sub) continue;
      this.#bySid.delete(sid);
      this.#subs.delete(sub);
      sub.fail(new NatsgateError("forbidden", "subscription revoked"), true);
      revoked.push(sub);
    }
    if (!this.#authed) {
      this.#onOpen();
    }
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

  #onOpen() {
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

  /**
   * @param {WebSocket} ws
   * @param {number} code
   * @param {string} reason
   */
  #onClose(ws, code, reason) {
    if (this.#ws !== ws) return;
    this.#dropConnection();
    this.#lastClose = { code, reason };
    if (this.#state === "closed") return;
    const retryable = this.#cfg.reconnect &&
      code !== _CLOSE_UNAUTHORIZED &&
      !(code === _CLOSE_TOKEN_EXPIRED && !this.#opts.getToken) &&
      (this.#everOpened || this.#cfg.waitOnFirstConnect || this.#attempt < this.#urls.length - 1);
    const err = _closeError(code, reason);
    if (!retryable) {
      this.#finish(err, { code, reason });
      return;
    }
    this.#retry(err);
  }

  /** @param {NatsgateError} err */
  #retry(err) {
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
    });
    this.#reconnectTimer = setTimeout(() => this.#dial(), delayMs);
  }

  /**
   * Exponential backoff with jitter: between half and all of `initial * 2^n`, capped.
   * @param {number} n
   */
  #backoff(n) {
    const base = Math.min(this.#cfg.maxDelayMs, this.#cfg.initialDelayMs * 2 ** Math.min(n, 30));
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  /** Forgets everything tied to the current socket. */
  #dropConnection() {
    const ws = this.#ws;
    this.#ws = undefined;
    this.#authed = false;
    this.#authInbox = undefined;
    this.#outbox = [];
    this.#stopPing();
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    this.#bySid.clear();
    for (const sub of this.#subs) sub.disconnected();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(new NatsgateError("unavailable", "connection lost"));
    }
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

  /**
   * Ends the client: no more reconnects.
   * @param {NatsgateError} err
   * @param {{ code: number; reason: string } | undefined} close
   */
  #finish(err, close) {
    if (this.#state === "closed") return;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#setState("closed", { code: close?.code, reason: close?.reason, error: err });
    if (this.#ws) this.#dropConnection();
    const subs = [...this.#subs];
    this.#subs.clear();
    for (const sub of subs) sub.fail(err);
    this.#opened.reject(err);
  }

  /**
   * @param {"connecting" | "open" | "reconnecting" | "closed"} state
   * @param {Record<string, unknown>} info
   */
  #setState(state, info) {
    const previous = this.#state;
    if (previous === state && state !== "reconnecting" && state !== "connecting") return;
    this.#state = state;
    this.#dispatch("state", { ...info, state, previous });
  }

  #scheduleRefresh() {
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

  /** @param {WebSocket | undefined} ws */
  async #refresh(ws) {
    this.#refreshTimer = undefined;
    let token;
    try {
      token = await this.#currentToken(true);
    } catch (err) {
      this.#emitError(
        err instanceof NatsgateError
          ? err
          : new NatsgateError("unauthorized", `getToken failed: ${_message(err)}`, { cause: err }),
      );
      if (this.#ws === ws && this.#authed) {
        this.#refreshTimer = setTimeout(() => this.#refresh(ws), 5000);
      }
      return;
    }
    if (this.#ws !== ws || !this.#authed || !ws) return;
    this.#authInbox = this.#inbox();
    this.#send({ op: "auth", inbox: this.#authInbox, data: { token } });
  }

  #startPing() {
    this.#stopPing();
    const every = this.#cfg.pingIntervalMs;
    if (!(every > 0)) return;
    const ws = this.#ws;
    this.#pingTimer = setInterval(() => {
      if (this.#ws !== ws || !ws) return;
      if (this.#pingInbox !== undefined) {
        // No pong for a whole interval: the connection is dead even if the socket says open.
        this.#onClose(ws, 4000, "ping timeout");
        return;
      }
      this.#pingInbox = this.#inbox();
      this.#send({ op: "ping", inbox: this.#pingInbox });
    }, every);
  }

  #stopPing() {
    if (this.#pingTimer !== undefined) clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
    this.#pingInbox = undefined;
  }

  /**
   * @param {NatsgateError} error
   * @param {_Subscription} [subscription]
   */
  #emitError(error, subscription) {
    this.#dispatch("error", subscription ? { error, subscription } : { error });
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  #dispatch(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * @typedef {object} _Pending
 * @property {(env: any) => void} resolve
 * @property {(err: unknown) => void} reject
 * @property {ReturnType<typeof setTimeout> | undefined} timer
 */

/**
 * What a subscription may ask of its client.
 * @typedef {object} _ClientApi
 * @property {(req: { sub: _Subscription; env: Record<string, unknown> }) => void} request
 * @property {(env: Record<string, unknown>) => Promise<unknown>} call
 * @property {() => boolean} isOpen
 * @property {(sub: _Subscription) => void} release
 * @property {(error: NatsgateError, sub?: _Subscription) => void} report
 * @property {(n: number) => number} backoff
 */

/** The part every subscription kind shares. */
class _Subscription extends EventTarget {
  /** @type {_ClientApi} */
  _api;
  /** @type {"core" | "kv" | "js"} */
  kind;
  /** @type {string} */
  target;
  /** @type {string | undefined} */
  sid;
  closed = false;
  everSubscribed = false;
  failures = 0;
  /** @type {NatsgateError | undefined} */
  error;
  /** @type {{ resolve: () => void; reject: (e: unknown) => void; promise: Promise<void> }} */
  _ready;
  /** @type {(value: any) => unknown} */
  _handler;

  /**
   * @param {_ClientApi} api
   * @param {"core" | "kv" | "js"} kind
   * @param {string} target
   * @param {(value: any) => unknown} handler
   */
  constructor(api, kind, target, handler) {
    super();
    if (typeof handler !== "function") throw new TypeError(`${kind} subscription needs a handler`);
    this._api = api;
    this.kind = kind;
    this.target = target;
    this._handler = handler;
    this._ready = _deferred();
    this._ready.promise.catch(() => {});
  }

  /** Resolves when the subscription is live (KV: after the snapshot); rejects if refused. */
  get ready() {
    return this._ready.promise;
  }

  /** @returns {Record<string, unknown>} */
  _envelope() {
    throw new Error("abstract");
  }

  /** Sends the subscribe op on the current connection. */
  subscribe() {
    if (this.closed) return;
    this._api.request({ sub: this, env: this._envelope() });
  }

  /**
   * The server accepted the subscription under `sid`.
   * @param {string} sid
   */
  subscribed(sid) {
    this.sid = sid;
    this.everSubscribed = true;
    this._onSubscribed();
  }

  _onSubscribed() {
    this._ready.resolve();
  }

  /** The connection dropped; the subscription is renewed on the next one. */
  disconnected() {
    this.sid = undefined;
  }

  /**
   * @param {any} _env
   */
  deliver(_env) {}

  /**
   * Ends the subscription from the client's side (revoked, refused, client closed).
   * @param {NatsgateError} err
   * @param {boolean} [revoked]
   */
  fail(err, revoked = false) {
    if (this.closed) return;
    this.closed = true;
    this.error = err;
    this.sid = undefined;
    this._ready.reject(err);
    this.dispatchEvent(new CustomEvent("closed", { detail: { error: err, revoked } }));
  }

  /**
   * Calls the handler, reporting what it throws (or rejects with) as an `error` event.
   * @param {unknown} value
   */
  _call(value) {
    try {
      const r = this._handler(value);
      if (r && typeof (/** @type {any} */ (r)).then === "function") {
        /** @type {Promise<unknown>} */ (r).then(undefined, (err) => this._handlerFailed(err));
      }
    } catch (err) {
      this._handlerFailed(err);
    }
  }

  /** @param {unknown} err */
  _handlerFailed(err) {
    this._api.report(
      new NatsgateError("internal", `subscription handler failed: ${_message(err)}`, {
        cause: err,
      }),
      this,
    );
  }

  /** Stops the subscription. */
  unsubscribe() {
    if (this.closed) return Promise.resolve();
    this._api.release(this);
    this.closed = true;
    this.sid = undefined;
    this._ready.reject(new NatsgateError("not_found", "unsubscribed"));
    this.dispatchEvent(new CustomEvent("closed", { detail: { revoked: false } }));
    return Promise.resolve();
  }
}

class _CoreSubscription extends _Subscription {
  /** @type {string | undefined} */
  queue;

  /**
   * @param {_ClientApi} api
   * @param {string} subject
   * @param {(msg: any) => unknown} handler
   * @param {{ queue?: string }} options
   */
  constructor(api, subject, handler, options) {
    super(api, "core", subject, handler);
    this.queue = options.queue;
  }

  /** @override */
  _envelope() {
    return { op: "sub", target: this.target, data: this.queue ? { queue: this.queue } : {} };
  }

  /**
   * @override
   * @param {any} env
   */
  deliver(env) {
    const d = env.data ?? {};
    /** @type {Record<string, unknown>} */
    const msg = { subject: env.target, payload: d.payload };
    if (d.encoding) msg.encoding = d.encoding;
    if (d.headers) msg.headers = d.headers;
    if (d.reply) msg.reply = true;
    this._call(msg);
  }
}

class _KvWatch extends _Subscription {
  /** @type {Map<string, any>} */
  entries = new Map();
  /** @type {{ pattern?: string; updatesOnly?: boolean }} */
  options;
  /** Highest revision this watch has accounted for. */
  revision = 0;
  /** The map reflects the bucket (false while a snapshot is loading). */
  synced = false;
  /** @type {Map<string, any> | undefined} snapshot buffered during a resync */
  #snapshot;
  /** Subscriptions made so far (the first one may skip the snapshot; later ones resync). */
  #count = 0;

  /**
   * @param {_ClientApi} api
   * @param {string} bucket
   * @param {{ pattern?: string; updatesOnly?: boolean }} options
   * @param {(e: any) => unknown} handler
   */
  constructor(api, bucket, options, handler) {
    super(api, "kv", bucket, handler);
    this.options = options;
  }

  /**
   * The value stored under `key`, or undefined.
   * @param {string} key
   */
  get(key) {
    return this.entries.get(key)?.value;
  }

  /** @override */
  _envelope() {
    /** @type {Record<string, unknown>} */
    const data = {};
    if (this.options.pattern) data.pattern = this.options.pattern;
    // A resync always takes a full snapshot, to learn what changed while away.
    if (this.options.updatesOnly && this.#count === 0) data.updates_only = true;
    return { op: "kv_sub", target: this.target, data };
  }

  /** @override */
  _onSubscribed() {
    this.synced = false;
    this.#snapshot = this.#count++ > 0 ? new Map() : undefined;
  }

  /** @override */
  disconnected() {
    super.disconnected();
    this.synced = false;
    this.#snapshot = undefined;
  }

  /**
   * @override
   * @param {any} env
   */
  deliver(env) {
    const d = env.data ?? {};
    if (d.op === "ready") {
      this.#onReady(typeof d.revision === "number" ? d.revision : 0);
      return;
    }
    if (typeof d.key !== "string" || typeof d.revision !== "number") return;
    if (this.#snapshot) {
      this.#snapshot.set(d.key, d); // last per key wins
      return;
    }
    if (!this.synced) {
      // Initial snapshot: tombstones of long-deleted keys are not news.
      this.revision = Math.max(this.revision, d.revision);
      if (d.op === "put") this.#apply(d, false);
      return;
    }
    if (d.revision <= this.revision) return; // defensive: never repeat a revision
    this.revision = d.revision;
    this.#apply(d, false);
  }

  /**
   * @param {any} d
   * @param {boolean} resync
   */
  #apply(d, resync) {
    const previous = this.entries.get(d.key);
    /** @type {Record<string, unknown>} */
    const event = { key: d.key, op: d.op, revision: d.revision };
    if (d.op === "put") {
      /** @type {Record<string, unknown>} */
      const entry = { key: d.key, value: d.value, revision: d.revision, created: d.created };
      if (d.encoding) entry.encoding = d.encoding;
      this.entries.set(d.key, entry);
      event.value = d.value;
      if (d.encoding) event.encoding = d.encoding;
    } else {
      this.entries.delete(d.key);
    }
    if (d.created !== undefined) event.created = d.created;
    if (previous) event.previous = previous;
    if (resync) event.resync = true;
    this._call(event);
  }

  /** @param {number} revision */
  #onReady(revision) {
    const snapshot = this.#snapshot;
    this.#snapshot = undefined;
    if (snapshot) this.#diff(snapshot, revision);
    this.revision = Math.max(this.revision, revision);
    this.synced = true;
    const resync = this.#count > 1;
    this.failures = 0;
    this.dispatchEvent(new CustomEvent("ready", { detail: { revision: this.revision, resync } }));
    this._ready.resolve();
  }

  /**
   * Reconciles the local map with a fresh snapshot: only real changes produce events.
   * @param {Map<string, any>} snapshot
   * @param {number} readyRevision
   */
  #diff(snapshot, readyRevision) {
    /** @type {any[]} */
    const changes = [];
    for (const [key, d] of snapshot) {
      if (d.op !== "put") continue;
      const cur = this.entries.get(key);
      if (cur) {
        if (cur.revision === d.revision) continue;
      } else if (this.options.updatesOnly && d.revision <= this.revision) {
        continue; // existed before this watch began: an updates-only watch never saw it
      }
      changes.push(d);
    }
    for (const [key, cur] of this.entries) {
      const d = snapshot.get(key);
      if (d && d.op === "put") continue;
      changes.push(d ?? { key, op: "delete", revision: Math.max(readyRevision, cur.revision) });
    }
    changes.sort((a, b) => a.revision - b.revision);
    for (const d of changes) this.#apply(d, true);
  }
}

class _JsSubscription extends _Subscription {
  /** @type {Record<string, unknown>} */
  options;
  /** Last stream sequence delivered to the handler. */
  lastSeq = 0;
  /** @type {Set<number>} delivered, not yet acknowledged (ack subscriptions) */
  #unacked = new Set();
  #ack = false;

  /**
   * @param {_ClientApi} api
   * @param {string} stream
   * @param {Record<string, unknown>} options
   * @param {(m: any) => unknown} handler
   */
  constructor(api, stream, options, handler) {
    super(api, "js", stream, handler);
    this.options = options;
    this.#ack = options.ack === true;
  }

  /** @override */
  _envelope() {
    const o = /** @type {any} */ (this.options);
    /** @type {Record<string, unknown>} */
    const data = {};
    if (o.filter !== undefined) data.filter = o.filter;
    if (o.batch !== undefined) data.batch = o.batch;
    if (o.ack !== undefined) data.ack = o.ack;
    if (o.ackWaitMs !== undefined) data.ack_wait_ms = o.ackWaitMs;
    if (o.durable !== undefined) data.durable = o.durable;
    if (this.lastSeq > 0) {
      // Resume: the first sequence not yet handled (or the oldest unacknowledged one).
      const from = this.#unacked.size > 0 ? Math.min(...this.#unacked) : this.lastSeq + 1;
      data.start_seq = from;
    } else if (o.startSeq !== undefined) {
      data.start_seq = o.startSeq;
    } else if (o.startTime !== undefined) {
      data.start_time = o.startTime instanceof Date ? o.startTime.toISOString() : o.startTime;
    } else if (o.deliver !== undefined) {
      data.deliver = o.deliver;
    }
    return { op: "js_sub", target: this.target, data };
  }

  /**
   * @override
   * @param {any} env
   */
  deliver(env) {
    const d = env.data ?? {};
    const seq = d.seq;
    if (typeof seq !== "number") return;
    const sid = this.sid;
    if (seq <= this.lastSeq && !this.#unacked.has(seq)) {
      // Already handled (a resumed or restarted consumer): drop, and settle it if it wants acks.
      if (this.#ack && sid !== undefined) {
        this._api.call({ op: "ack", target: this.target, data: { id: sid, seq } }).catch(() => {});
      }
      return;
    }
    if (seq > this.lastSeq) this.lastSeq = seq;
    if (this.#ack) this.#unacked.add(seq);
    this.failures = 0;
    /** @type {Record<string, unknown>} */
    const msg = { seq, subject: d.subject, payload: d.payload, time: d.time };
    if (d.encoding) msg.encoding = d.encoding;
    if (d.headers) msg.headers = d.headers;
    if (d.redelivered) msg.redelivered = true;
    msg.ack = () => this.#ackSeq(seq, sid);
    this._call(msg);
  }

  /**
   * @param {number} seq
   * @param {string | undefined} sid the subscription id that delivered it
   * @returns {Promise<void>}
   */
  #ackSeq(seq, sid) {
    if (!this.#ack) {
      return Promise.reject(new NatsgateError("bad_request", "subscription does not take acks"));
    }
    if (!this.#unacked.delete(seq)) return Promise.resolve();
    if (sid === undefined || sid !== this.sid || !this._api.isOpen()) {
      // Delivered on an earlier connection: the resumed consumer drops and settles it itself.
      return Promise.resolve();
    }
    const p = /** @type {Promise<void>} */ (this._api.call({
      op: "ack",
      target: this.target,
      data: { id: sid, seq },
    }).then(() => undefined));
    p.catch(() => {});
    return p;
  }
}

/**
 * @returns {{ resolve: () => void; reject: (e: unknown) => void; promise: Promise<void> }}
 */
function _deferred() {
  /** @type {() => void} */
  let resolve = () => {};
  /** @type {(e: unknown) => void} */
  let reject = () => {};
  /** @type {Promise<void>} */
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { resolve, reject, promise };
}

/**
 * @param {string | URL} url
 * @returns {string}
 */
function _wsUrl(url) {
  const base = /** @type {any} */ (globalThis).location?.href;
  const u = new URL(String(url), base);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`unsupported gateway URL scheme: ${u.protocol}`);
  }
  return u.toString();
}

/**
 * Envelope fields for a payload: JSON by default, bytes as base64, text with `encoding: "text"`.
 * @param {unknown} payload
 * @param {{ encoding?: "json" | "text" }} options
 * @returns {Record<string, unknown>}
 */
function _payloadFields(payload, options) {
  if (payload instanceof Uint8Array) return { data: _toBase64(payload), encoding: "base64" };
  if (payload instanceof ArrayBuffer) {
    return { data: _toBase64(new Uint8Array(payload)), encoding: "base64" };
  }
  if (options.encoding === "text") return { data: String(payload ?? ""), encoding: "text" };
  return payload === undefined ? {} : { data: payload };
}

/** @param {Uint8Array} bytes */
function _toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** @param {string} b64 */
function _fromBase64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * Decodes a payload delivered with `encoding: "base64"` or `"text"` to bytes (JSON values are
 * encoded as their JSON text, as they were on the wire).
 * @param {unknown} payload
 * @param {string} [encoding]
 * @returns {Uint8Array}
 */
export function payloadBytes(payload, encoding) {
  if (encoding === "base64") return _fromBase64(String(payload));
  if (encoding === "text") return new TextEncoder().encode(String(payload));
  return new TextEncoder().encode(JSON.stringify(payload));
}

/**
 * @param {any} env
 * @returns {NatsgateError}
 */
function _errorFrom(env) {
  const d = env.data ?? {};
  return new NatsgateError(
    typeof d.code === "string" ? d.code : "internal",
    typeof d.message === "string" ? d.message : "error",
    { context: typeof d.context === "object" && d.context !== null ? d.context : undefined },
  );
}

/**
 * @param {number} code
 * @param {string} reason
 */
function _closeError(code, reason) {
  /** @type {Record<number, string>} */
  const codes = {
    4001: "unauthorized",
    4003: "unauthorized",
    4008: "backpressure",
    4029: "limit_exceeded",
    1009: "limit_exceeded",
    4000: "bad_request",
  };
  return new NatsgateError(
    codes[code] ?? "unavailable",
    `connection closed (${code}${reason ? `: ${reason}` : ""})`,
    { closeCode: code },
  );
}

/** @param {unknown} err */
function _message(err) {
  return err instanceof Error ? err.message : String(err);
}
