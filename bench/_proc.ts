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
