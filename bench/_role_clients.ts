/** Benchmark client process for role revocation: many gateway sessions of distinct users that
 * hold one role, each subscribed through it; records when each session's `cap_update` arrives
 * after the orchestrator edits the role. Driven by JSON lines on stdin/stdout (bench/_line_proc.ts):
 * `open` `{url, secret, count, subject, concurrency?}`, `arm` (forget the last round), `wait`
 * `{t0, maxMs, revoked}` (answers with every session's latency from `t0`, epoch ms), `close`.
 * @module */

import { mintToken } from "../src/auth/mint.ts";
import { lines } from "./_proc.ts";

const _enc = new TextEncoder();
const _now = () => performance.timeOrigin + performance.now();

interface _Session {
  ws: WebSocket;
  /** Epoch ms of the first `cap_update` since `arm` (0: none yet). */
  at: number;
  /** Whether that `cap_update` revoked a subscription. */
  revoked: boolean;
}

const _sessions: _Session[] = [];
let _wake: (() => void) | undefined;

function _open(url: string, subject: string): Promise<_Session> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const s: _Session = { ws, at: 0, revoked: false };
    let subscribed = false;
    ws.onopen = () => ws.send(JSON.stringify({ op: "sub", target: subject, inbox: "s" }));
    ws.onerror = (e) => reject(new Error((e as ErrorEvent).message ?? "ws error"));
    ws.onmessage = (e) => {
      for (const line of String(e.data).split("\n")) {
        const env = JSON.parse(line);
        if (!subscribed) {
          if (env.op === "reply" && env.inbox === "s") {
            subscribed = true;
            resolve(s);
          } else if (env.op === "error") reject(new Error(JSON.stringify(env.data)));
        } else if (env.op === "cap_update" && s.at === 0) {
          s.at = _now();
          s.revoked = env.data.revoked.length > 0;
          _wake?.();
        }
      }
    };
  });
}

async function _main(): Promise<void> {
  const out = (o: unknown) => Deno.stdout.writeSync(_enc.encode(JSON.stringify(o) + "\n"));
  for await (const line of lines(Deno.stdin.readable)) {
    const cmd = JSON.parse(line);
    if (cmd.op === "open") {
      const started = performance.now();
      const conc = cmd.concurrency ?? 200;
      for (let i = 0; i < cmd.count; i += conc) {
        const batch = [];
        for (let j = i; j < Math.min(cmd.count, i + conc); j++) {
          const token = await mintToken({ secret: cmd.secret, user: `rb${j}`, ttlSeconds: 86400 });
          batch.push(_open(`${cmd.url}?token=${token}`, cmd.subject));
        }
        _sessions.push(...await Promise.all(batch));
      }
      out({ op: "opened", count: _sessions.length, ms: performance.now() - started });
    } else if (cmd.op === "arm") {
      for (const s of _sessions) s.at = 0;
      out({ op: "armed" });
    } else if (cmd.op === "wait") {
      const deadline = _now() + (cmd.maxMs ?? 60_000);
      const pending = () => _sessions.some((s) => s.at === 0);
      while (pending() && _now() < deadline) {
        await new Promise<void>((r) => {
          _wake = r;
          setTimeout(r, 250);
        });
      }
      const got = _sessions.filter((s) => s.at > 0);
      out({
        op: "round",
        latencies: got.map((s) => s.at - cmd.t0),
        missing: _sessions.length - got.length,
        revoked: got.filter((s) => s.revoked).length,
      });
    } else if (cmd.op === "close") {
      for (const s of _sessions) s.ws.close();
      out({ op: "closed" });
      Deno.exit(0);
    }
  }
}

if (import.meta.main) await _main();
