/** The client address of a request: the TCP peer, or what a trusted proxy says in front of it.
 * `X-Forwarded-For` and `Forwarded` are believed only from peers inside `--trust-proxy` CIDRs.
 * @module */

/** A parsed CIDR block (IPv4 or IPv6). */
export interface Cidr {
  /** 4 or 16 address bytes. */
  bytes: Uint8Array;
  /** Prefix length in bits. */
  prefix: number;
}

/** Parses an IPv4 or IPv6 address (no zone, no brackets) into bytes; undefined when invalid. */
export function parseIp(text: string): Uint8Array | undefined {
  if (text.includes(":")) return _parseIpv6(text);
  return _parseIpv4(text);
}

function _parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return undefined;
    const n = Number(parts[i]);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function _parseIpv6(text: string): Uint8Array | undefined {
  let s = text;
  let tail: Uint8Array | undefined;
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    // IPv4-mapped or -compatible tail (::ffff:1.2.3.4).
    tail = _parseIpv4(s.slice(lastColon + 1));
    if (!tail) return undefined;
    s = s.slice(0, lastColon + 1) + "0:0";
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i])) return undefined;
    const n = parseInt(all[i], 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 255;
  }
  if (tail) out.set(tail, 12);
  return out;
}

/**
 * Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a host block). Throws a clear error on
 * anything else.
 *
 * @example
 * ```ts
 * parseCidr("127.0.0.0/8"); // { bytes: [127,0,0,0], prefix: 8 }
 * ```
 */
export function parseCidr(text: string): Cidr {
  const t = text.trim();
  const slash = t.indexOf("/");
  const addr = slash < 0 ? t : t.slice(0, slash);
  const bytes = parseIp(addr);
  if (!bytes) throw new Error(`invalid CIDR ${JSON.stringify(text)}: bad address`);
  const max = bytes.length * 8;
  const bits = slash < 0 ? String(max) : t.slice(slash + 1);
  const prefix = Number(bits);
  if (!/^\d{1,3}$/.test(bits) || prefix > max) {
    throw new Error(`invalid CIDR ${JSON.stringify(text)}: prefix must be 0..${max}`);
  }
  return { bytes, prefix };
}

/** Maps an IPv4-mapped IPv6 address (::ffff:a.b.c.d) to its IPv4 bytes. */
function _unmap(b: Uint8Array): Uint8Array {
  if (b.length !== 16) return b;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return b;
  if (b[10] !== 255 || b[11] !== 255) return b;
  return b.subarray(12);
}

/** Whether `ip` lies in any of the blocks. Invalid addresses lie in none. */
export function inCidrs(ip: string, blocks: readonly Cidr[]): boolean {
  if (blocks.length === 0) return false;
  const parsed = parseIp(ip);
  if (!parsed) return false;
  const b = _unmap(parsed);
  for (const c of blocks) {
    const cb = _unmap(c.bytes);
    const prefix = c.prefix - (c.bytes.length - cb.length) * 8;
    if (cb.length !== b.length || prefix < 0) continue;
    if (_prefixEqual(b, cb, prefix)) return true;
  }
  return false;
}

function _prefixEqual(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  let i = 0;
  for (; bits >= 8; bits -= 8, i++) if (a[i] !== b[i]) return false;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (a[i] & mask) === (b[i] & mask);
}

/** Strips brackets, a port and quotes from one forwarded address element; undefined if invalid. */
function _element(raw: string): string | undefined {
  let s = raw.trim().replace(/^"|"$/g, "");
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end < 0) return undefined;
    s = s.slice(1, end);
  } else if (s.includes(".") && s.includes(":")) {
    s = s.slice(0, s.lastIndexOf(":")); // 1.2.3.4:5678
  }
  return parseIp(s) ? s : undefined;
}

/** The `for=` addresses of a `Forwarded` header (RFC 7239), in order. */
function _forwardedFor(header: string): Array<string | undefined> {
  const out: Array<string | undefined> = [];
  for (const hop of header.split(",")) {
    const m = /(?:^|;)\s*for\s*=\s*("[^"]*"|[^;,\s]*)/i.exec(hop);
    if (m) out.push(_element(m[1]));
  }
  return out;
}

/** The header a trusted proxy names the client in. */
export type ProxyHeader = "x-forwarded-for" | "forwarded";

/**
 * The client address: the TCP peer, unless the peer is a trusted proxy; then the right-most
 * address of the forwarding chain in `header` that is not itself a trusted proxy. Only the one
 * header the proxy sets is read, never the other: proxies append to theirs and pass the other
 * through untouched, so a client could write it. A malformed entry stops the walk at the last
 * address known to be good: a client can prepend whatever it likes, so only what trusted proxies
 * appended counts.
 *
 * @example
 * ```ts
 * const trusted = [parseCidr("127.0.0.0/8")];
 * clientIp("127.0.0.1", new Headers({ "x-forwarded-for": "203.0.113.9" }), trusted);
 * // "203.0.113.9"
 * ```
 */
export function clientIp(
  peer: string,
  headers: Headers,
  trusted: readonly Cidr[],
  header: ProxyHeader = "x-forwarded-for",
): string {
  if (!inCidrs(peer, trusted)) return peer;
  const value = headers.get(header);
  const chain = value === null
    ? []
    : header === "forwarded"
    ? _forwardedFor(value)
    : value.split(",").map(_element);
  let client = peer;
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = chain[i];
    if (hop === undefined) break;
    client = hop;
    if (!inCidrs(hop, trusted)) break;
  }
  return client;
}

/**
 * The key admission counts an address under: an IPv4 address itself, an IPv6 address by its
 * /64 (one host usually holds a whole /64, so counting single addresses would cap nothing).
 *
 * @example
 * ```ts
 * addressKey("2001:db8::1"); // "2001:db8:0:0::/64"
 * addressKey("::ffff:192.0.2.1"); // "192.0.2.1"
 * ```
 */
export function addressKey(ip: string): string {
  if (!ip.includes(":")) return ip;
  const b = parseIp(ip);
  if (!b) return ip;
  const v4 = _unmap(b);
  if (v4.length === 4) return v4.join(".");
  const g = (i: number) => ((b[i] << 8) | b[i + 1]).toString(16);
  return `${g(0)}:${g(2)}:${g(4)}:${g(6)}::/64`;
}
