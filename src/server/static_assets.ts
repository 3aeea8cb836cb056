/** HTTP routes for browsers: the client SDK at `/client.js` and, optionally, the console page at `/`.
 * Files are read relative to this module, so `deno compile --include src/client/dist --include src/console`
 * embeds them. `/client.js` is the SDK bundle `deno task bundle` builds from src/client/*.ts.
 * @module */

/** Options of {@link consoleHandler}. */
export interface ConsoleOptions {
  /** Serve the operator console page at `/` (the SDK at `/client.js` is always served). */
  console: boolean;
}

interface _Asset {
  body: Uint8Array;
  headers: Record<string, string>;
}

const _CLIENT_URL = new URL("../client/dist/client.js", import.meta.url);
const _PAGE_URL = new URL("../console/index.html", import.meta.url);

/**
 * Returns a `GatewayOptions.httpHandler` serving `GET /client.js` (the SDK, one ES module) and,
 * when `console` is true, `GET /` (the console page). Anything else resolves to undefined, so
 * the gateway answers 404. Files are read once, on first use.
 */
export function consoleHandler(
  opts: ConsoleOptions,
): (req: Request, url: URL) => Promise<Response | undefined> {
  let client: Promise<_Asset> | undefined;
  let page: Promise<_Asset> | undefined;
  return async (req, url) => {
    let asset: Promise<_Asset> | undefined;
    if (url.pathname === "/client.js") {
      client ??= _load(_CLIENT_URL, _clientHeaders);
      asset = client;
    } else if (opts.console && (url.pathname === "/" || url.pathname === "/index.html")) {
      page ??= _load(_PAGE_URL, _pageHeaders);
      asset = page;
    }
    if (!asset) return undefined;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", {
        status: 405,
        headers: { allow: "GET, HEAD" },
      });
    }
    let a: _Asset;
    try {
      a = await asset;
    } catch (err) {
      if (asset === client) client = undefined;
      else page = undefined;
      throw err;
    }
    const etag = a.headers.etag;
    if (req.headers.get("if-none-match") === etag) {
      return new Response(null, { status: 304, headers: { etag, "cache-control": "no-cache" } });
    }
    return new Response(req.method === "HEAD" ? null : a.body.slice(), { headers: a.headers });
  };
}

async function _load(
  url: URL,
  headers: (body: Uint8Array) => Promise<Record<string, string>>,
): Promise<_Asset> {
  const body = await Deno.readFile(url);
  return { body, headers: { ...await headers(body), etag: `"${await _sha256(body, "hex")}"` } };
}

function _clientHeaders(): Promise<Record<string, string>> {
  return Promise.resolve({
    "content-type": "text/javascript; charset=utf-8",
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "access-control-allow-origin": "*",
  });
}

/**
 * The page's headers: a strict Content-Security-Policy allowing only its own inline `<script>`
 * and `<style>` blocks (by hash), same-origin scripts and WebSocket connections.
 */
async function _pageHeaders(body: Uint8Array): Promise<Record<string, string>> {
  const html = new TextDecoder().decode(body);
  const scripts = await _inlineHashes(html, "script");
  const styles = await _inlineHashes(html, "style");
  const csp = [
    "default-src 'none'",
    `script-src 'self' ${scripts.join(" ")}`.trim(),
    `style-src ${styles.join(" ") || "'none'"}`,
    "connect-src 'self' ws: wss:",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-cache",
    "content-security-policy": csp,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
  };
}

async function _inlineHashes(html: string, tag: "script" | "style"): Promise<string[]> {
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, "gi");
  const out: string[] = [];
  for (const m of html.matchAll(re)) {
    if (m[1].trim() === "") continue;
    out.push(`'sha256-${await _sha256(new TextEncoder().encode(m[1]), "base64")}'`);
  }
  return out;
}

async function _sha256(data: Uint8Array, as: "hex" | "base64"): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
  if (as === "hex") return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  return btoa(String.fromCharCode(...digest));
}
