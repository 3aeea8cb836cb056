/** The process and runtime series of /metrics under Deno, with Prometheus' standard names:
 * `process_*` read from `/proc/self` (parsed by `process_metrics.ts`) and `deno_*` from Deno's
 * own APIs, plus an event-loop lag probe. It replaces prom-client's `collectDefaultMetrics`,
 * whose Node collectors report 0 under Deno (RSS, open fds, lag) and a fake `nodejs_version_info`.
 *
 * Deno (1.43 and later) lets a program read `/proc` only with `--allow-all`. Without it, CPU and
 * RSS come from `process.cpuUsage()` and `Deno.memoryUsage()`, the start time from
 * `performance.timeOrigin`, and the series only `/proc` knows (virtual memory, open and
 * maximum fds) are left out rather than reported as 0.
 * @module */

import client from "prom-client";
import process from "node:process";
import { EventLoopProbe } from "./event_loop_probe.ts";
import {
  parseBootTime,
  parseMaxOpenFiles,
  parseStat,
  parseStatus,
  startTimeSeconds,
} from "./process_metrics.ts";

/** Options of {@link ProcessCollector}. */
export interface ProcessCollectorOptions {
  /** Told once, at construction, why `/proc/self` cannot be read (permissions, not Linux). */
  onProcUnavailable?: (err: unknown) => void;
  /** Event-loop probe interval (default 100 ms). */
  lagProbeMs?: number;
}

/** What one scrape reads from `/proc`. */
interface _ProcFigures {
  cpuSeconds: number;
  residentBytes: number;
  virtualBytes: number;
  openFds: number;
  maxFds: number;
}

async function _readProc(): Promise<_ProcFigures> {
  const [stat, status, limits] = await Promise.all([
    Deno.readTextFile("/proc/self/stat"),
    Deno.readTextFile("/proc/self/status"),
    Deno.readTextFile("/proc/self/limits"),
  ]);
  let openFds = 0;
  for await (const _ of Deno.readDir("/proc/self/fd")) openFds++;
  const s = parseStat(stat);
  const st = parseStatus(status);
  return {
    cpuSeconds: s.userSeconds + s.systemSeconds,
    residentBytes: st.residentBytes,
    virtualBytes: st.virtualBytes,
    openFds,
    maxFds: parseMaxOpenFiles(limits),
  };
}

/** The start time from `/proc`, or undefined when it cannot be read. */
function _procStartTime(): number | undefined {
  try {
    const stat = parseStat(Deno.readTextFileSync("/proc/self/stat"));
    return startTimeSeconds(stat.startTicks, parseBootTime(Deno.readTextFileSync("/proc/stat")));
  } catch {
    return undefined;
  }
}

/**
 * Registers the process and runtime series in `registry` and runs the lag probe until closed.
 *
 * @example
 * ```ts
 * import client from "prom-client";
 * import { ProcessCollector } from "./process_collector.ts";
 * const registry = new client.Registry();
 * const collector = new ProcessCollector(registry);
 * console.log(await registry.metrics()); // process_resident_memory_bytes …, deno_heap_size_used_bytes …
 * collector.close();
 * ```
 */
export class ProcessCollector {
  /** Whether `/proc/self` is readable (Linux, `--allow-all`). */
  readonly procReadable: boolean;
  readonly #probe: EventLoopProbe;
  #last?: { at: number; figures: Promise<_ProcFigures> };
  #good?: _ProcFigures;

  /** Registers the series; `/proc` is tried once here to choose the sources. */
  constructor(registry: client.Registry, opts: ProcessCollectorOptions = {}) {
    const registers = [registry];
    const start = _procStartTime();
    this.procReadable = start !== undefined;
    if (!this.procReadable) {
      try {
        Deno.readTextFileSync("/proc/self/stat");
      } catch (err) {
        opts.onProcUnavailable?.(err);
      }
    }
    const proc = () => this.#procFigures();
    const procReadable = this.procReadable;
    new client.Counter({
      name: "process_cpu_seconds_total",
      help: "Total user and system CPU time spent in seconds.",
      registers,
      async collect() {
        this.reset();
        if (procReadable) this.inc((await proc()).cpuSeconds);
        else {
          const u = process.cpuUsage();
          this.inc((u.user + u.system) / 1e6);
        }
      },
    });
    new client.Gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory size in bytes.",
      registers,
      async collect() {
        this.set(procReadable ? (await proc()).residentBytes : Deno.memoryUsage().rss);
      },
    });
    new client.Gauge({
      name: "process_start_time_seconds",
      help: "Start time of the process since unix epoch in seconds.",
      registers,
    }).set(start ?? performance.timeOrigin / 1000);
    if (procReadable) {
      const gauge = (name: string, help: string, pick: (f: _ProcFigures) => number) =>
        new client.Gauge({
          name,
          help,
          registers,
          async collect() {
            this.set(pick(await proc()));
          },
        });
      gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", (f) => f.virtualBytes);
      gauge("process_open_fds", "Number of open file descriptors.", (f) => f.openFds);
      gauge("process_max_fds", "Maximum number of open file descriptors.", (f) => f.maxFds);
    }
    const memory = (name: string, help: string, pick: (m: Deno.MemoryUsage) => number) =>
      new client.Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(pick(Deno.memoryUsage()));
        },
      });
    memory("deno_heap_size_total_bytes", "V8 heap size in bytes.", (m) => m.heapTotal);
    memory("deno_heap_size_used_bytes", "V8 heap in use in bytes.", (m) => m.heapUsed);
    memory(
      "deno_external_memory_bytes",
      "Memory outside the V8 heap held by JavaScript objects (buffers), in bytes.",
      (m) => m.external,
    );
    const lag = new client.Histogram({
      name: "deno_eventloop_lag_seconds",
      help: "Event-loop lag: how late a timer probe fired, sampled every 100 ms.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.#probe = new EventLoopProbe({
      intervalMs: opts.lagProbeMs,
      onSample: (s) => lag.observe(s),
    });
    const probe = this.#probe;
    new client.Gauge({
      name: "deno_eventloop_lag_max_seconds",
      help: "Largest event-loop lag of the last 5 to 10 seconds.",
      registers,
      collect() {
        this.set(probe.maxSeconds());
      },
    });
    new client.Gauge({
      name: "deno_version_info",
      help: "Deno, V8 and TypeScript versions of the runtime.",
      labelNames: ["deno", "v8", "typescript"] as const,
      registers,
    }).set(
      { deno: Deno.version.deno, v8: Deno.version.v8, typescript: Deno.version.typescript },
      1,
    );
  }

  /**
   * One `/proc` read shared by the series of a scrape (and by scrapes within 100 ms). A read
   * that fails after one succeeded (e.g. out of fds for a moment) repeats the last figures.
   */
  #procFigures(): Promise<_ProcFigures> {
    const now = performance.now();
    if (!this.#last || now - this.#last.at > 100) {
      const figures = _readProc().then((f) => this.#good = f, (err) => {
        if (this.#good) return this.#good;
        throw err;
      });
      this.#last = { at: now, figures };
    }
    return this.#last.figures;
  }

  /** Stops the lag probe. Idempotent. */
  close(): void {
    this.#probe.close();
  }
}
