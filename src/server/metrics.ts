/** Prometheus metrics of a gateway, exposed at /metrics in the text format (prom-client).
 * Hot-path counts stay plain integers on sessions and are read at scrape time. Every labelled
 * series of a known label value starts at 0, so a rate over it exists before the first event.
 * Process and runtime series come from `process_collector.ts`.
 * @module */

import client from "prom-client";
import { AUTH_FAILURE_REASONS, type AuthFailureReason } from "../auth/auth_failure.ts";
import { CloseCode } from "../protocol/errors.ts";
import { CUT_REASONS, type CutReason } from "../session/backpressure.ts";
import type { IpRefusal } from "./ip_gate.ts";
import { ProcessCollector } from "./process_collector.ts";

const _REFUSALS: readonly IpRefusal[] = ["conns_per_ip", "upgrade_rate", "penalty"];
/** Close codes listed from the start: normal ones (1000, 1005 no code, 1006 gone) and ours. */
const _CLOSE_CODES: readonly number[] = [1000, 1005, 1006, ...Object.values(CloseCode)];
/** Ops a capability check can deny. */
const _DENIABLE_OPS = ["sub", "pub", "cmd", "kv_sub", "js_sub"] as const;
/** Limits counted by `natsgate_limit_events_total`. */
const _LIMITS = [
  "backpressure",
  "rate",
  "subscriptions",
  "pending_cmds",
  "connections_per_user",
] as const;
/** `cmd` outcomes listed from the start (others, such as `internal`, appear when they occur). */
const _CMD_OUTCOMES = ["ok", "timeout", "no_responders", "unavailable"] as const;

/** Options of {@link GatewayMetrics}. */
export interface GatewayMetricsOptions {
  /** Told once why `/proc/self` cannot be read (the `process_*` series it alone gives are left out). */
  onProcUnavailable?: (err: unknown) => void;
}

/** Live figures the registry reads at scrape time. */
export interface MetricsSource {
  /** Open sessions. */
  sessions(): number;
  /** Open TCP sockets, closing ones included. */
  sockets(): number;
  /** Pending outbound bytes of every connection (gateway queues plus sockets). */
  pendingBytes(): number;
  /** Sessions per connected user. */
  sessionsPerUser(): Iterable<number>;
  /** Live subscriptions by kind. */
  subscriptionsByKind(): Record<string, number>;
  /** Messages and bytes in/out, including closed sessions. */
  traffic(): { msgsIn: number; bytesIn: number; msgsOut: number; bytesOut: number };
  /** Capability documents applied from the watch. */
  capabilityReloads(): number;
}

/** The gateway's metrics registry. */
export class GatewayMetrics {
  /** The prom-client registry. */
  readonly registry: client.Registry;
  readonly #connectionsTotal: client.Counter;
  readonly #closes: client.Counter<"code">;
  readonly #denials: client.Counter<"op">;
  readonly #limitCloses: client.Counter<"limit">;
  readonly #revocations: client.Counter;
  readonly #natsReconnects: client.Counter;
  readonly #cmdSeconds: client.Histogram<"outcome">;
  readonly #cuts: client.Counter<"reason">;
  readonly #refusals: client.Counter<"reason">;
  readonly #authFailures: client.Counter<"reason">;
  readonly #process: ProcessCollector;

  /** Creates the registry; `source` is read on every scrape. Call {@link close} when done. */
  constructor(source: MetricsSource, opts: GatewayMetricsOptions = {}) {
    const registers = [this.registry = new client.Registry()];
    this.#process = new ProcessCollector(this.registry, {
      onProcUnavailable: opts.onProcUnavailable,
    });
    new client.Gauge({
      name: "natsgate_connections",
      help: "Open client connections.",
      registers,
      collect() {
        this.set(source.sessions());
      },
    });
    new client.Gauge({
      name: "natsgate_sockets",
      help: "Open TCP sockets on the listener, closing ones included.",
      registers,
      collect() {
        this.set(source.sockets());
      },
    });
    new client.Gauge({
      name: "natsgate_pending_bytes",
      help:
        "Outbound bytes accepted for clients and not yet written to the kernel, all connections.",
      registers,
      collect() {
        this.set(source.pendingBytes());
      },
    });
    this.#cuts = new client.Counter({
      name: "natsgate_backpressure_cuts_total",
      help: "Connections cut for backpressure (close 4008), by reason: over_limit (over twice " +
        "--max-pending-bytes), slow (over it for --backpressure-timeout-ms), stalled (nothing " +
        "drained for --write-deadline), budget (--max-pending-total, largest first).",
      labelNames: ["reason"] as const,
      registers,
    });
    for (const reason of CUT_REASONS) this.#cuts.inc({ reason }, 0);
    this.#refusals = new client.Counter({
      name: "natsgate_upgrade_refusals_total",
      help:
        "Upgrades refused with HTTP 429 by client address: conns_per_ip, upgrade_rate, penalty.",
      labelNames: ["reason"] as const,
      registers,
    });
    for (const reason of _REFUSALS) this.#refusals.inc({ reason }, 0);
    this.#connectionsTotal = new client.Counter({
      name: "natsgate_connections_total",
      help: "Client connections accepted.",
      registers,
    });
    this.#closes = new client.Counter({
      name: "natsgate_connection_closes_total",
      help: "Client connections closed, by WebSocket close code (unauthenticated ones included).",
      labelNames: ["code"] as const,
      registers,
    });
    for (const code of _CLOSE_CODES) this.#closes.inc({ code: String(code) }, 0);
    this.#authFailures = new client.Counter({
      name: "natsgate_auth_failures_total",
      help: "Failed authentications by reason: " + AUTH_FAILURE_REASONS.join(", ") + ".",
      labelNames: ["reason"] as const,
      registers,
    });
    for (const reason of AUTH_FAILURE_REASONS) this.#authFailures.inc({ reason }, 0);
    new client.Histogram({
      name: "natsgate_sessions_per_user",
      help: "Open sessions per connected user (sampled at scrape).",
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
      collect() {
        this.reset();
        for (const n of source.sessionsPerUser()) this.observe(n);
      },
    });
    new client.Gauge({
      name: "natsgate_subscriptions",
      help: "Live client subscriptions by kind.",
      labelNames: ["kind"] as const,
      registers,
      collect() {
        this.reset();
        const by = source.subscriptionsByKind();
        for (const kind of ["core", "kv", "js"]) this.set({ kind }, by[kind] ?? 0);
      },
    });
    const traffic = (
      name: string,
      help: string,
      pick: (t: ReturnType<MetricsSource["traffic"]>) => number,
    ) =>
      new client.Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(pick(source.traffic()));
        },
      });
    traffic("natsgate_messages_in_total", "Envelopes received from clients.", (t) => t.msgsIn);
    traffic("natsgate_bytes_in_total", "Bytes received from clients.", (t) => t.bytesIn);
    traffic("natsgate_messages_out_total", "Messages delivered to clients.", (t) => t.msgsOut);
    traffic("natsgate_bytes_out_total", "Bytes sent to clients.", (t) => t.bytesOut);
    this.#denials = new client.Counter({
      name: "natsgate_denials_total",
      help: "Operations denied by capabilities, by op.",
      labelNames: ["op"] as const,
      registers,
    });
    for (const op of _DENIABLE_OPS) this.#denials.inc({ op }, 0);
    this.#limitCloses = new client.Counter({
      name: "natsgate_limit_events_total",
      help: "Limit hits: backpressure, rate, subscriptions, pending_cmds, connections_per_user.",
      labelNames: ["limit"] as const,
      registers,
    });
    for (const limit of _LIMITS) this.#limitCloses.inc({ limit }, 0);
    this.#cmdSeconds = new client.Histogram({
      name: "natsgate_cmd_duration_seconds",
      help: "Latency of cmd requests through NATS, by outcome.",
      labelNames: ["outcome"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    for (const outcome of _CMD_OUTCOMES) this.#cmdSeconds.zero({ outcome });
    this.#natsReconnects = new client.Counter({
      name: "natsgate_nats_reconnects_total",
      help: "Reconnects of the gateway's NATS connection.",
      registers,
    });
    new client.Counter({
      name: "natsgate_capability_reloads_total",
      help: "Capability documents applied live from the auth bucket watch.",
      registers,
      collect() {
        this.reset();
        this.inc(source.capabilityReloads());
      },
    });
    this.#revocations = new client.Counter({
      name: "natsgate_revocations_total",
      help: "Subscriptions revoked by capability changes.",
      registers,
    });
  }

  /** Counts an accepted connection. */
  connection(): void {
    this.#connectionsTotal.inc();
  }

  /** Counts a close with its code. */
  closed(code: number): void {
    this.#closes.inc({ code: String(code) });
  }

  /** Counts a backpressure cut. */
  cut(reason: CutReason): void {
    this.#cuts.inc({ reason });
  }

  /** Counts an upgrade refused by admission. */
  refused(reason: IpRefusal): void {
    this.#refusals.inc({ reason });
  }

  /** Counts a failed authentication. */
  authFailed(reason: AuthFailureReason): void {
    this.#authFailures.inc({ reason });
  }

  /** Counts a denial. */
  denied(op: string): void {
    this.#denials.inc({ op });
  }

  /** Counts a limit hit. */
  limit(limit: string): void {
    this.#limitCloses.inc({ limit });
  }

  /** Counts revoked subscriptions. */
  revoked(n: number): void {
    this.#revocations.inc(n);
  }

  /** Counts a NATS reconnect. */
  natsReconnect(): void {
    this.#natsReconnects.inc();
  }

  /** Records a cmd's latency. */
  cmd(seconds: number, outcome: string): void {
    this.#cmdSeconds.observe({ outcome }, seconds);
  }

  /** Stops the event-loop probe. Idempotent. */
  close(): void {
    this.#process.close();
  }

  /** Renders the exposition text. */
  async render(): Promise<Response> {
    return new Response(await this.registry.metrics(), {
      headers: { "content-type": this.registry.contentType },
    });
  }
}
