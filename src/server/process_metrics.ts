/** Parsers of Linux `/proc` text into the figures of Prometheus' standard process metrics
 * (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …). Pure: the caller reads
 * the files (see `process_collector.ts`); these functions only turn text into numbers.
 *
 * Clock ticks are `USER_HZ`, which Linux fixes at 100 for user space (`sysconf(_SC_CLK_TCK)`);
 * the Prometheus Go client's procfs makes the same assumption.
 * @module */

/** Clock ticks per second of `/proc/<pid>/stat` times on Linux. */
export const USER_HZ = 100;

/** A `/proc` file whose text does not have the expected shape. */
export class ProcFormatError extends Error {
  /** Creates the error; `file` names the file in the message. */
  constructor(file: string, detail: string, options?: { cause?: unknown }) {
    super(`unexpected ${file} format: ${detail}`, options);
    this.name = "ProcFormatError";
  }
}

/** Figures from `/proc/self/stat`. */
export interface ProcStat {
  /** CPU time in user mode, seconds. */
  userSeconds: number;
  /** CPU time in kernel mode, seconds. */
  systemSeconds: number;
  /** Start of the process in clock ticks after boot (add the boot time for an epoch). */
  startTicks: number;
  /** Virtual memory size, bytes. */
  virtualBytes: number;
  /** Number of threads. */
  threads: number;
}

function _int(file: string, name: string, s: string | undefined): number {
  if (s === undefined || !/^-?\d+$/.test(s)) {
    throw new ProcFormatError(file, `${name} is ${s === undefined ? "missing" : `"${s}"`}`);
  }
  return Number(s);
}

/**
 * Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself hold
 * spaces and parentheses, so fields are counted from the last `)`.
 *
 * @example
 * ```ts
 * import { parseStat } from "./process_metrics.ts";
 * const s = parseStat("7 (deno) S 1 7 7 0 -1 0 0 0 0 0 250 30 0 0 20 0 9 0 1000 4096 10");
 * // s.userSeconds === 2.5, s.systemSeconds === 0.3, s.threads === 9, s.virtualBytes === 4096
 * ```
 */
export function parseStat(text: string, hz: number = USER_HZ): ProcStat {
  const close = text.lastIndexOf(")");
  if (close < 0) throw new ProcFormatError("/proc/self/stat", "no command name in parentheses");
  // rest[0] is field 3 (state): field n is rest[n - 3].
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const f = (n: number, name: string) => _int("/proc/self/stat", name, rest[n - 3]);
  return {
    userSeconds: f(14, "utime") / hz,
    systemSeconds: f(15, "stime") / hz,
    threads: f(20, "num_threads"),
    startTicks: f(22, "starttime"),
    virtualBytes: f(23, "vsize"),
  };
}

/** Figures from `/proc/self/status`. */
export interface ProcStatus {
  /** Resident set size (`VmRSS`), bytes. */
  residentBytes: number;
  /** Virtual memory size (`VmSize`), bytes. */
  virtualBytes: number;
}

/**
 * Parses the memory lines of `/proc/<pid>/status` (`VmRSS`, `VmSize`, given in kB = KiB).
 *
 * @example
 * ```ts
 * import { parseStatus } from "./process_metrics.ts";
 * parseStatus("Name:\tdeno\nVmSize:\t 4 kB\nVmRSS:\t 2 kB\n"); // { residentBytes: 2048, virtualBytes: 4096 }
 * ```
 */
export function parseStatus(text: string): ProcStatus {
  const kib = (key: string): number => {
    const m = new RegExp(`^${key}:\\s*(\\d+) kB\\s*$`, "m").exec(text);
    if (!m) throw new ProcFormatError("/proc/self/status", `no "${key}: <n> kB" line`);
    return Number(m[1]) * 1024;
  };
  return { residentBytes: kib("VmRSS"), virtualBytes: kib("VmSize") };
}

/**
 * The soft limit of open files from `/proc/<pid>/limits` (`Infinity` for `unlimited`).
 *
 * @example
 * ```ts
 * import { parseMaxOpenFiles } from "./process_metrics.ts";
 * parseMaxOpenFiles("Max open files            1024                 4096                 files\n"); // 1024
 * ```
 */
export function parseMaxOpenFiles(text: string): number {
  const m = /^Max open files\s+(\S+)\s+\S+\s+files\s*$/m.exec(text);
  if (!m) throw new ProcFormatError("/proc/self/limits", `no "Max open files" line`);
  if (m[1] === "unlimited") return Infinity;
  return _int("/proc/self/limits", "Max open files", m[1]);
}

/**
 * The boot time in seconds since the epoch, from `/proc/stat` (`btime`).
 *
 * @example
 * ```ts
 * import { parseBootTime } from "./process_metrics.ts";
 * parseBootTime("cpu  1 2 3\nbtime 1700000000\n"); // 1700000000
 * ```
 */
export function parseBootTime(text: string): number {
  const m = /^btime\s+(\S+)\s*$/m.exec(text);
  if (!m) throw new ProcFormatError("/proc/stat", `no "btime" line`);
  return _int("/proc/stat", "btime", m[1]);
}

/** Process start in seconds since the epoch, from the stat start ticks and the boot time. */
export function startTimeSeconds(
  startTicks: number,
  bootTimeSeconds: number,
  hz: number = USER_HZ,
): number {
  return bootTimeSeconds + startTicks / hz;
}
