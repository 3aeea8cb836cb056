/** Why a WebSocket never opened. A browser's WebSocket hides the HTTP answer to a refused upgrade
 * (it reports close 1006, no reason), so the client asks the same URL again with a plain HTTP
 * GET: the gateway checks Origin, admission and a token in the URL or cookie before it asks for
 * the upgrade, so its answer (401 "unauthorized: token expired", 403, 429, 503) says why the
 * upgrade was refused. A fetch that fails says the gateway is unreachable, and why.
 * @module */

import { ConnectionError, type NatsgateError } from "./errors.ts";
import { upgradeRefusal } from "./error_map.ts";
import { httpUrl } from "./url.ts";

/** How long the probe may take. */
const _PROBE_TIMEOUT_MS = 5_000;

/**
 * The error for a WebSocket to `url` that closed with `code` before it opened.
 *
 * @example
 * ```ts
 * ws.onclose = async (e) => opened ? lost(e) : fail(await whyNotOpened(ws.url, e.code));
 * ```
 */
export async function whyNotOpened(url: string, code: number): Promise<NatsgateError> {
  const fallback = (cause?: unknown) =>
    new ConnectionError(
      `cannot reach gateway ${url}${cause ? `: ${_message(cause)}` : ` (close ${code})`}`,
      cause === undefined ? { url, closeCode: code } : { url, closeCode: code, cause },
    );
  let res: Response;
  try {
    res = await fetch(httpUrl(url), {
      credentials: "same-origin",
      redirect: "manual",
      cache: "no-store",
      signal: AbortSignal.timeout(_PROBE_TIMEOUT_MS),
    });
  } catch (err) {
    return fallback(err);
  }
  let body = "";
  try {
    body = await res.text();
  } catch {
    // the status alone still says enough
  }
  const refusal = upgradeRefusal(url, res.status, body);
  if (refusal) return refusal;
  return fallback();
}

function _message(err: unknown): string {
  if (err instanceof Error) {
    const inner = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return `${err.message}${inner}`;
  }
  return String(err);
}
