/** Line reader for the benchmark processes: their children speak one JSON document per line.
 * Shared by bench/main.ts and bench/soak.ts.
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
