/** NATS message headers as the protocol carries them: a JSON object, repeated names as arrays.
 * Unreadable header blocks never crash or stall a reader: the message goes without headers.
 * @module */

import type { MsgHdrs } from "@nats-io/transport-node";

/**
 * The header map of a NATS (or JetStream) message, or undefined when it has none or when its
 * header block cannot be parsed: nats.js parses headers lazily and throws on names or values
 * other clients may send (a space or non-ASCII byte in a name, a bare LF in a value). Such a
 * message is still delivered, without its headers; it must never crash or stall a reader.
 */
export function readableHeaders(msg: { readonly headers?: MsgHdrs }): MsgHdrs | undefined {
  try {
    const h = msg.headers;
    if (h) h.keys(); // forces the parse
    return h;
  } catch {
    return undefined;
  }
}

/**
 * A message's headers as a JSON-ready object (repeated names become arrays), or undefined when
 * it has none or they cannot be read ({@link readableHeaders}).
 */
export function headersRecord(
  msg: { readonly headers?: MsgHdrs },
): Record<string, string | string[]> | undefined {
  const h = readableHeaders(msg);
  if (!h) return undefined;
  try {
    const out: Record<string, string | string[]> = {};
    let any = false;
    for (const k of h.keys()) {
      const values = h.values(k);
      out[k] = values.length === 1 ? values[0] : values;
      any = true;
    }
    return any ? out : undefined;
  } catch {
    return undefined;
  }
}

/** Serialises a header map of a NATS message as a JSON object text, or undefined when none. */
export function headersJson(msg: { readonly headers?: MsgHdrs }): string | undefined {
  const r = headersRecord(msg);
  return r === undefined ? undefined : JSON.stringify(r);
}
