/** A strict HTTP/1.1 request head parser (request line and header fields), pure.
 * @module */

/** A parsed request head. */
export interface RequestHead {
  /** Method, e.g. `GET`. */
  method: string;
  /** Request target as sent (origin-form `/path?query`, or absolute-form). */
  target: string;
  /** `HTTP/1.1` or `HTTP/1.0`. */
  version: string;
  /** Header fields in order, names as sent. */
  headers: [string, string][];
}

/** Why a head was refused: the HTTP status to answer and a short reason. */
export class HeadError extends Error {
  /** HTTP status to answer (400, 431, 505...). */
  readonly status: number;
  /** @param status HTTP status to answer */
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const _TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, space and tab; no CR, LF or NUL.
const _VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const _TARGET = /^[\x21-\x7e]+$/;

/**
 * Index just past the blank line (`\r\n\r\n`) ending a head in `buf[0, to)`, searching from
 * `from` (pass the previous end minus 3 to scan only new bytes), or -1.
 */
export function findHeadEnd(buf: Uint8Array, from: number, to: number): number {
  for (let i = Math.max(0, from); i + 3 < to; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) {
      return i + 4;
    }
  }
  return -1;
}

/**
 * Parses a request head: the bytes up to and including the blank line. Throws {@link HeadError}
 * (400 for malformed lines, obs-fold, bare LF or a bad name/value; 505 for other versions).
 *
 * @example
 * ```ts
 * const head = parseHead(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
 * head.headers; // [["Host", "a"]]
 * ```
 */
export function parseHead(bytes: Uint8Array): RequestHead {
  // latin1: one char per byte, so obs-text survives and nothing is "invalid UTF-8".
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, Math.min(bytes.length, i + 8192)));
  }
  if (!text.endsWith("\r\n\r\n")) throw new HeadError(400, "head not terminated");
  const lines = text.slice(0, -4).split("\r\n");
  for (const l of lines) {
    if (l.includes("\n") || l.includes("\r")) throw new HeadError(400, "bare CR or LF");
  }
  const parts = lines[0].split(" ");
  if (parts.length !== 3) throw new HeadError(400, "bad request line");
  const [method, target, version] = parts;
  if (!_TOKEN.test(method)) throw new HeadError(400, "bad method");
  if (!_TARGET.test(target)) throw new HeadError(400, "bad request target");
  if (!/^HTTP\/\d\.\d$/.test(version)) throw new HeadError(400, "bad version");
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    throw new HeadError(505, "HTTP version not supported");
  }
  const headers: [string, string][] = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    if (l[0] === " " || l[0] === "\t") throw new HeadError(400, "obsolete line folding");
    const colon = l.indexOf(":");
    if (colon <= 0) throw new HeadError(400, "bad header line");
    const name = l.slice(0, colon);
    if (!_TOKEN.test(name)) throw new HeadError(400, "bad header name");
    const value = l.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!_VALUE.test(value)) throw new HeadError(400, "bad header value");
    headers.push([name, value]);
  }
  return { method, target, version, headers };
}
