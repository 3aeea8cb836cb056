/** An accept loop that survives EMFILE/ENFILE and other transient errors by backing off.
 * @module */

/** Options of {@link acceptLoop}. */
export interface AcceptLoopOptions {
  /** Whether the listener was closed on purpose: then an accept error ends the loop. */
  stopped(): boolean;
  /** Logging hook for accept errors (never throws out). */
  onError?(err: unknown, where: string): void;
}

/** First pause after an accept error; doubles per consecutive error up to {@link MAX_BACKOFF_MS}. */
export const MIN_BACKOFF_MS = 5;
/** Longest pause between accept retries. */
export const MAX_BACKOFF_MS = 1000;

/**
 * Accepts connections until the listener is closed on purpose. An accept error (e.g. "Too many
 * open files") pauses 5 ms, doubling to 1 s, reset by the next success; it never ends the loop.
 * `onConn` runs synchronously right after `accept()`; if it throws, the connection is closed.
 */
export async function acceptLoop<C extends Deno.Conn>(
  listener: Deno.Listener<C>,
  onConn: (conn: C) => void,
  opts: AcceptLoopOptions,
): Promise<void> {
  let delay = 0;
  while (true) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch (err) {
      if (opts.stopped()) return;
      _report(opts, err, "accept");
      delay = delay === 0 ? MIN_BACKOFF_MS : Math.min(delay * 2, MAX_BACKOFF_MS);
      await new Promise((r) => setTimeout(r, delay));
      continue;
    }
    delay = 0;
    try {
      onConn(conn);
    } catch (err) {
      _report(opts, err, "accept handler");
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }
}

function _report(opts: AcceptLoopOptions, err: unknown, where: string): void {
  try {
    opts.onError?.(err, where);
  } catch {
    // a logging hook never ends the loop
  }
}
