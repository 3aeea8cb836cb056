/** Messages whose NATS headers nats.js cannot parse (other clients may send them): delivered
 * without headers, never a crash of the gateway nor a stall of its NATS reader.
 * @module */

import assert from "node:assert/strict";
import { Stack } from "./_harness.ts";

const CAPS = { subjects: ["h.>"], publish: ["h.>"], commands: ["h.>"] };
const te = new TextEncoder();
const td = new TextDecoder();

/** A raw NATS protocol connection (no client library), to send what libraries refuse to. */
class RawNats {
  #conn: Deno.TcpConn;
  #buf = "";
  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }
  static async open(url: string): Promise<RawNats> {
    const u = new URL(url);
    const raw = new RawNats(await Deno.connect({ hostname: u.hostname, port: Number(u.port) }));
    await raw.line((l) => l.startsWith("INFO"));
    await raw.write('CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\nPING\r\n');
    await raw.line((l) => l === "PONG");
    return raw;
  }
  write(text: string): Promise<number> {
    return this.#conn.write(te.encode(text));
  }
  /** Publishes with a raw header block. */
  hpub(subject: string, headerBlock: string, payload: string): Promise<number> {
    const hdr = `NATS/1.0\r\n${headerBlock}\r\n\r\n`;
    const total = te.encode(hdr).length + te.encode(payload).length;
    return this.write(`HPUB ${subject} ${te.encode(hdr).length} ${total}\r\n${hdr}${payload}\r\n`);
  }
  /** Reads protocol lines until one matches. */
  async line(pred: (l: string) => boolean): Promise<string> {
    const chunk = new Uint8Array(64 * 1024);
    while (true) {
      const nl = this.#buf.indexOf("\r\n");
      if (nl >= 0) {
        const l = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 2);
        if (pred(l)) return l;
        continue;
      }
      const n = await this.#conn.read(chunk);
      if (n === null) throw new Error("nats connection closed");
      this.#buf += td.decode(chunk.subarray(0, n));
    }
  }
  close(): void {
    this.#conn.close();
  }
}

const BAD_HEADERS = ["X Y: v", "Bad\u00e9Name: v", "Tab\tName: v"];

Deno.test("hostile headers: core messages arrive without their unreadable headers; the reader goes on", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const sid = await c.sub("h.x");
  const raw = await RawNats.open(stack.nats.url);
  try {
    for (const [i, block] of BAD_HEADERS.entries()) await raw.hpub("h.x", block, `{"n":${i}}`);
    await raw.hpub("h.x", "Good: yes", `{"n":3}`);
    const got = await c.waitMsgs(sid, 4);
    assert.deepEqual(got.map((e) => e.data.payload.n), [0, 1, 2, 3], "every message, in order");
    assert.deepEqual(got.slice(0, 3).map((e) => e.data.headers), [undefined, undefined, undefined]);
    assert.deepEqual(got[3].data.headers, { Good: "yes" });
    // The gateway's NATS reader still works: a normal publish arrives too.
    stack.nc.publish("h.x", JSON.stringify({ n: 4 }));
    await c.waitMsgs(sid, 5);
  } finally {
    raw.close();
  }
});

Deno.test("hostile headers: a cmd reply with unreadable headers is answered, the process lives", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const raw = await RawNats.open(stack.nats.url);
  try {
    await raw.write("SUB h.svc 1\r\nPING\r\n");
    await raw.line((l) => l === "PONG");
    const answered = c.request({ op: "cmd", target: "h.svc", data: { q: 1 } });
    const msg = await raw.line((l) => l.startsWith("MSG h.svc") || l.startsWith("HMSG h.svc"));
    const reply = msg.split(" ")[3];
    await raw.hpub(reply, "X Y: v", `{"ok":true}`);
    const r = await answered;
    assert.equal(r.op, "reply");
    assert.deepEqual(r.data, { ok: true });
    assert.equal(r.headers, undefined);
    assert.equal((await c.request({ op: "ping" })).op, "pong", "the gateway still serves");
  } finally {
    raw.close();
  }
});
