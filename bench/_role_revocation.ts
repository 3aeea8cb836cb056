/** The role revocation scenario of `deno task bench --only=revocation`: many sessions of
 * distinct users hold one role (the gateway's `--default-role`) and each subscribe through it;
 * the role is edited several times, the last edit revoking every subscription. Measures the time
 * from the KV write to each session's `cap_update`, over every session of every round.
 * @module */

import type { KV } from "@nats-io/kv";
import { RoleClientProc } from "./_line_proc.ts";

/** What to run against. */
export interface RoleRevocationOptions {
  /** The gateway's WebSocket URL (without token). */
  url: string;
  /** The gateway's HS256 secret (the client process mints one token per user). */
  secret: string;
  /** The role every session holds (the gateway runs with `--default-role` naming it). */
  role: string;
  /** Number of sessions. */
  sessions: number;
  /** Edits of the role (default 5); the last one revokes. */
  rounds?: number;
}

/** The result: latencies (ms) and a note for the report. */
export interface RoleRevocationResult {
  /** Sessions that were opened. */
  sessions: number;
  /** Median, KV write → cap_update. */
  p50: number;
  /** 99th percentile. */
  p99: number;
  /** What was run and seen, for benchmarks.md. */
  note: string;
}

function _pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/**
 * Runs the scenario.
 *
 * @example
 * ```ts ignore
 * const r = await roleRevocation(kv, { url, secret, role: "rolebench", sessions: 10_000 });
 * console.log(r.p99);
 * ```
 */
export async function roleRevocation(
  kv: KV,
  opts: RoleRevocationOptions,
): Promise<RoleRevocationResult> {
  const rounds = opts.rounds ?? 5;
  const key = `roles.${opts.role}`;
  await kv.put(key, JSON.stringify({ subjects: ["rolebench.>"] }));
  const proc = new RoleClientProc();
  try {
    const opened = await proc.cmd({
      op: "open",
      url: opts.url,
      secret: opts.secret,
      count: opts.sessions,
      subject: "rolebench.x",
    });
    const lat: number[] = [];
    let revoked = 0;
    let missing = 0;
    for (let r = 1; r <= rounds; r++) {
      await proc.cmd({ op: "arm" });
      const last = r === rounds;
      const doc = last ? { subjects: [] } : { subjects: ["rolebench.>", `round${r}.>`] };
      const t0 = performance.timeOrigin + performance.now();
      await kv.put(key, JSON.stringify(doc));
      const got = await proc.cmd({ op: "wait", t0, maxMs: 60_000 });
      lat.push(...got.latencies);
      missing += got.missing;
      if (last) revoked = got.revoked;
    }
    lat.sort((a, b) => a - b);
    const p50 = _pct(lat, 0.5);
    const p99 = _pct(lat, 0.99);
    console.error(
      `role revocation: ${opened.count} sessions, p50 ${p50.toFixed(1)} ms, p99 ${
        p99.toFixed(1)
      } ms, revoked ${revoked}, missing ${missing}`,
    );
    return {
      sessions: opened.count,
      p50,
      p99,
      note: `Role revocation: ${opened.count} sessions of distinct users hold the role ` +
        `\`${opts.role}\` (\`--default-role\`), each subscribed through it (opened in ${
          (opened.ms / 1000).toFixed(1)
        } s); ${rounds} edits of the role, the last revoking every subscription (${revoked} of ` +
        `${opened.count} sessions had it revoked; ${missing} cap_updates missing). Latency from ` +
        `the KV write to each session's cap_update, all sessions of all rounds.`,
    };
  } finally {
    await proc.close();
  }
}
