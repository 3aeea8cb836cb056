/** Process helpers of the benchmark orchestrators (bench/main.ts, bench/soak.ts): a free port,
 * a process's RSS, and the lines of a child's output (one JSON document per line).
 * @module */

/** Yields the lines of a byte stream (without the newline) as they arrive, and a last unterminated one. */
export async function* lines(s: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
  if (buf) yield buf;
}

/** A TCP port free on loopback right now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Resident set size of a process, in KB (Linux `/proc`). */
export async function rssKb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

const _clkTck = 100; // USER_HZ: what /proc reports utime/stime in on Linux

/** CPU time a process has used so far, two ways; see {@link cpuSample}. */
export interface CpuSample {
  /** Sum of the first field of `/proc/<pid>/task/<tid>/schedstat`, ns (live threads only). */
  schedNs: number;
  /** utime + stime of `/proc/<pid>/stat` in ns (all threads, exited ones too; 10 ms steps). */
  statNs: number;
}

/** Reads the CPU time a process has used so far, all its threads (Linux `/proc`). */
export async function cpuSample(pid: number): Promise<CpuSample> {
  let schedNs = 0;
  try {
    for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
      try {
        const s = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/schedstat`);
        schedNs += Number(s.slice(0, s.indexOf(" ")));
      } catch {
        // the thread exited meanwhile
      }
    }
  } catch {
    // no schedstat
  }
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { schedNs, statNs: (Number(f[11]) + Number(f[12])) * 1e9 / _clkTck };
}

/**
 * CPU ns used between two samples: the schedstat difference (ns resolution), unless a thread
 * exited in between (schedstat then loses its time: it falls more than two ticks short of the
 * stat difference), where the stat difference is used.
 */
export function cpuDeltaNs(a: CpuSample, b: CpuSample): number {
  const sched = b.schedNs - a.schedNs;
  const stat = b.statNs - a.statNs;
  if (a.schedNs === 0 || sched < stat - 2 * 1e9 / _clkTck) return stat;
  return sched;
}
