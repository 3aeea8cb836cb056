/** Fuzzing of inbound frames (fast-check, seeded) against a real gateway: every hostile frame of
 * tests/_envelope_model.ts earns documented errors or a documented close; plus logs, compression
 * and binary frames. The pure parser fuzzing is in src/protocol/envelope_fuzz_test.ts.
 * @module */

import assert from "node:assert/strict";
import fc from "fast-check";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { isFailure, parseFrame } from "../src/protocol/envelope.ts";
import { createLogger } from "../src/log/log.ts";
import { type Envelope, Stack, TestClient, waitFor } from "./_harness.ts";
import { CLOSE_CODES, CODES, frameArb } from "./_envelope_model.ts";
import { seeded, testSeed, withSeed } from "./_prng.ts";

/** One seed for every test in this file (NATSGATE_SEED to change it). */
const SEED = testSeed();

// ---------------------------------------------------------------------------------------------
// A real gateway
// ---------------------------------------------------------------------------------------------

const MAX_FRAME = 16384;
const USER = "fuzz";
const CAPS = {
  subjects: ["chat.>"],
  publish: ["chat.>"],
  commands: ["todos.>"],
  buckets: { todos: [">"] },
  streams: { CHAT: [">"] },
};

/** Live frames: the fuzz frames, oversized ones, and binary frames. */
const liveFrameArb: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  { weight: 12, arbitrary: frameArb },
  {
    weight: 1,
    arbitrary: fc.integer({ min: MAX_FRAME + 1, max: 4 * MAX_FRAME }).map((n) =>
      JSON.stringify({ op: "ping", data: "x".repeat(n) })
    ),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      frameArb.map((f) => new TextEncoder().encode(f)),
    ),
  },
);

function inboxesOf(text: string): string[] {
  return parseFrame(text).map((r) => isFailure(r) ? r.context.inbox : r.inbox).filter(
    (x): x is string => x !== undefined,
  );
}

Deno.test("fuzz gateway: every hostile frame earns documented errors or a documented close", () =>
  withSeed(SEED, async () => {
    const errorLogs: string[] = [];
    await using stack = await Stack.start({
      gateway: {
        limits: { maxFrameBytes: MAX_FRAME, rate: 1e6, burst: 1e6, maxSubs: 32 },
        log: createLogger({ level: "error", write: (l) => void errorLogs.push(l) }),
      },
    });
    await stack.setCaps(USER, CAPS);
    await new Kvm(stack.nc).create("todos");
    await (await jetstreamManager(stack.nc)).streams.add({ name: "CHAT", subjects: ["chat.>"] });
    const token = await stack.token(USER);
    const frames = fc.sample(liveFrameArb, seeded(400, SEED));
    const sent = new Set<string>();
    const closes: number[] = [];
    const codes = new Map<string, number>();
    let c = await stack.client(USER);
    let closed = false;
    const watch = (client: TestClient) => {
      closed = false;
      client.closed.then(() => void (closed = true));
    };
    watch(c);
    // Event-driven wait (the client wakes on every envelope and on close); the predicate ignores
    // which envelope it is shown, and the first cap_update guarantees it is shown one.
    const until = (cond: () => boolean, what: string) => c.next(() => closed || cond(), 5000, what);
    for (const [i, frame] of frames.entries()) {
      if (closed) {
        c = await stack.client(USER);
        watch(c);
      }
      // The socket sends lone surrogates as U+FFFD: parse what the gateway will really read.
      const text = typeof frame === "string"
        ? frame.replaceAll("%TOKEN%", token).toWellFormed()
        : undefined;
      const what = `frame ${i}: ${
        JSON.stringify((text ?? `<binary ${frame.length}>`).slice(0, 160))
      }`;
      const start = c.received.length;
      for (const inbox of text ? inboxesOf(text) : []) sent.add(inbox);
      const oversized = text !== undefined && new TextEncoder().encode(text).length > MAX_FRAME;
      c.sendRaw(text ?? frame);
      // Deno drops the connection without its close frame when more data follows a server close
      // (see docs/security.md, Gaps): send nothing more until a possible close has been seen.
      if (oversized) await until(() => false, `${what}: close`);
      const auths = text ? parseFrame(text).filter((r) => !isFailure(r) && r.op === "auth") : [];
      // A refresh is verified asynchronously (a bad token then closes with 4001): wait for the
      // answer of each one that carries an inbox, or the close.
      const inboxes = auths.flatMap((a) => isFailure(a) || a.inbox === undefined ? [] : [a.inbox]);
      if (inboxes.length > 0) {
        const answered = (ib: string) => c.received.some((e) => e.inbox === ib);
        await until(() => inboxes.every(answered), `${what}: auth answers`);
      }
      if (!closed) {
        const sentinel = `sentinel-${i}`;
        sent.add(sentinel);
        c.send({ op: "ping", inbox: sentinel });
        await until(() => c.received.some((e) => e.inbox === sentinel), what);
      }
      const window: Envelope[] = c.received.slice(start);
      for (const e of window) {
        assert.ok(
          ["reply", "error", "pong", "msg", "cap_update"].includes(e.op),
          `${what}: ${e.op}`,
        );
        assert.equal(e.v, 1, `${what}: v`);
        if (e.inbox !== undefined) {
          assert.ok(sent.has(e.inbox), `${what}: invented inbox ${e.inbox}`);
        }
        if (e.op === "error") {
          assert.ok(CODES.has(e.data?.code), `${what}: undocumented code ${e.data?.code}`);
          assert.equal(typeof e.data.message, "string", what);
          assert.ok(!e.data.message.includes(token), `${what}: token echoed`);
          assert.equal(typeof e.data.context, "object", what);
          codes.set(e.data.code, (codes.get(e.data.code) ?? 0) + 1);
        }
      }
      const errors = window.filter((e) => e.op === "error");
      if (closed) {
        const { code } = await c.closed;
        closes.push(code);
        assert.ok(CLOSE_CODES.has(code), `${what}: undocumented close code ${code}`);
        if (text && new TextEncoder().encode(text).length > MAX_FRAME) {
          assert.equal(code, 1009, `${what}: oversized`);
        }
      } else if (text === undefined) {
        assert.ok(errors.some((e) => e.data.code === "bad_request" && e.inbox === undefined), what);
      } else {
        const failures = parseFrame(text).filter(isFailure).length;
        assert.ok(
          errors.length >= failures,
          `${what}: ${failures} bad lines, ${errors.length} errors`,
        );
      }
    }
    // Still up: a fresh client connects and pings.
    const fresh = await stack.client(USER);
    const pong = await fresh.request({ op: "ping", data: { alive: true } });
    assert.equal(pong.op, "pong");
    assert.deepEqual(pong.data, { alive: true });
    assert.ok(closes.includes(1009), `oversized frames closed 1009 (${closes})`);
    assert.ok(codes.size >= 5, `several error codes exercised: ${[...codes.keys()]}`);
    assert.ok(stack.gateway.sessionCount <= 2, `sessions released (${stack.gateway.sessionCount})`);
    assert.deepEqual(errorLogs, [], "no internal errors logged");
  }));

Deno.test("compression is never negotiated, so there are no compression bombs to defuse", async () => {
  await using stack = await Stack.start();
  await stack.setCaps(USER, CAPS);
  const u = new URL(stack.gateway.wsUrl);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  try {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const token = encodeURIComponent(await stack.token(USER));
    await conn.write(new TextEncoder().encode(
      `GET ${u.pathname}?token=${token} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    ));
    const buf = new Uint8Array(4096);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    assert.match(head, /^HTTP\/1\.1 101/, head);
    assert.doesNotMatch(head, /sec-websocket-extensions/i, "no extension accepted");
  } finally {
    conn.close();
  }
});

Deno.test("logs: client-controlled text cannot inject control characters; tokens never logged", async () => {
  const lines: string[] = [];
  await using stack = await Stack.start({
    gateway: { log: createLogger({ level: "debug", write: (l) => void lines.push(l) }) },
  });
  await stack.setCaps(USER, CAPS);
  const token = await stack.token(USER);
  const c = await stack.client(USER, { query: token });
  await c.request({ op: "sub", target: "chat.x" });
  await c.request({ op: "sub", target: "$SYS.x" });
  c.ws.close(3000, "\u001b[2J\u001b]0;owned\u0007\r\nINFO forged line\u009b31m");
  await c.closed;
  await waitFor(() => lines.some((l) => l.includes("session disconnect")), 5000, "disconnect log");
  const bad = `${token.slice(0, -4)}AAAA`;
  await TestClient.connect(stack.gateway.wsUrl, { query: bad }).then(
    (x) => x.close(),
    () => {},
  );
  await waitFor(() => lines.some((l) => l.includes("bad token")), 5000, "refusal log");
  for (const l of lines) {
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(l, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/, `raw control: ${l}`);
    assert.ok(!l.includes(token) && !l.includes(bad), `a token in the log: ${l}`);
  }
});

Deno.test("binary frames are rate limited like ops; a sustained flood closes 4029", async () => {
  await using stack = await Stack.start({ gateway: { limits: { rate: 20, burst: 10 } } });
  await stack.setCaps(USER, CAPS);
  const c = await stack.client(USER);
  const start = c.received.length;
  for (let i = 0; i < 30; i++) c.sendRaw(new Uint8Array([i]));
  c.send({ op: "ping", inbox: "after" });
  await c.answer("after");
  const codes = c.received.slice(start).filter((e) => e.op === "error").map((e) => e.data.code);
  const bad = codes.filter((x) => x === "bad_request").length;
  assert.ok(bad >= 10 && bad < 30, `burst honoured, rest limited (${bad} bad_request)`);
  assert.ok(codes.includes("limit_exceeded"), `limited: ${codes}`);
  // One frame per tick (5x the rate): several back to back would race the close frame (Gaps).
  const flood = setInterval(() => {
    try {
      c.sendRaw(new Uint8Array([1, 2, 3]));
    } catch {
      // closed
    }
  }, 10);
  try {
    assert.equal((await c.closed).code, 4029);
  } finally {
    clearInterval(flood);
  }
});
