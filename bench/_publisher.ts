/** Open-loop publisher process of `deno task bench`: one NATS TCP connection, driven over
 * stdin/stdout with one JSON line per command, so its CPU is apart from the orchestrator's.
 *
 * - `{"op":"burst","subject":s,"count":n}`: publishes n messages as fast as it can, never waiting
 *   for subscribers, then flushes. Answers `{t0, t1}` (epoch ms of the first publish and of the
 *   flush's end).
 * - `{"op":"rate","subject":s,"rate":r,"ms":d}`: offers r msg/s for d ms, paced by the wall clock
 *   (never by receipts). Answers `{t0, t1, sent, lagMs}` (`lagMs`: how far the publisher itself
 *   fell behind its schedule at worst).
 *
 * Payloads are ~100 bytes of JSON `{"seq":<n>,"pad":"x…"}`, `seq` counting from 0 per command.
 * `deno run -A bench/_publisher.ts <nats-url>`
 * @module */

import { connect } from "@nats-io/transport-node";
import { lines } from "./_proc.ts";

const _enc = new TextEncoder();
const _PAD = "x".repeat(80);

function _now(): number {
  return performance.timeOrigin + performance.now();
}

/** The payload of message `seq` (~100 bytes). */
export function payload(seq: number): Uint8Array {
  return _enc.encode(`{"seq":${seq},"pad":"${_PAD}"}`);
}

async function _main(): Promise<void> {
  const nc = await connect({ servers: Deno.args[0], name: "bench-publisher" });
  const out = (o: unknown) => Deno.stdout.writeSync(_enc.encode(JSON.stringify(o) + "\n"));
  out({ op: "ready" });
  for await (const line of lines(Deno.stdin.readable)) {
    const cmd = JSON.parse(line);
    if (cmd.op === "burst") {
      // Payloads built before the clock starts, so the burst is only publishing.
      const bodies = Array.from({ length: cmd.count }, (_, i) => payload(i));
      const t0 = _now();
      for (let i = 0; i < bodies.length; i++) nc.publish(cmd.subject, bodies[i]);
      await nc.flush();
      out({ op: "burst", t0, t1: _now() });
    } else if (cmd.op === "rate") {
      const total = Math.round(cmd.rate * cmd.ms / 1000);
      let sent = 0;
      let lagMs = 0;
      const t0 = _now();
      while (sent < total) {
        const now = _now();
        const due = Math.min(total, Math.floor((now - t0) / 1000 * cmd.rate) + 1);
        // How far behind schedule this tick starts (the publisher itself too slow or starved).
        lagMs = Math.max(lagMs, now - t0 - sent / cmd.rate * 1000);
        while (sent < due) nc.publish(cmd.subject, payload(sent++));
        await new Promise((r) => setTimeout(r, 1));
      }
      await nc.flush();
      out({ op: "rate", t0, t1: _now(), sent, lagMs });
    } else if (cmd.op === "close") {
      await nc.drain();
      out({ op: "closed" });
      return;
    }
  }
}

if (import.meta.main) await _main();
