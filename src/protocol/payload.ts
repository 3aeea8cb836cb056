/** Payload encodings of docs/protocol.md section 3: NATS bytes to JSON text and back.
 * JSON payloads pass through as text: no parse-and-restringify on the delivery path.
 * @module */

import { Buffer } from "node:buffer";
import { BadRequestError } from "./errors.ts";

/** A NATS payload rendered for an envelope: `json` is JSON text of the `payload` value. */
export interface RenderedPayload {
  /** JSON text of the payload value, without raw newlines (safe inside NDJSON frames). */
  json: string;
  /** Present when the bytes were not JSON. */
  encoding?: "text" | "base64";
}

const _utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const _encoder = new TextEncoder();
const _EMPTY_TEXT: RenderedPayload = { json: '""', encoding: "text" };
const _NEWLINE = /[\r\n]/;
const _NEWLINES = /[\r\n]/g;
const _BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Renders NATS message bytes: valid UTF-8 JSON is passed through as its own text (raw CR/LF,
 * which JSON allows only as whitespace, become spaces), other UTF-8 becomes a JSON string with
 * `encoding: "text"`, anything else base64 with `encoding: "base64"`.
 */
export function renderPayload(bytes: Uint8Array): RenderedPayload {
  if (bytes.length === 0) return _EMPTY_TEXT;
  let text: string;
  try {
    text = _decodeUtf8(bytes);
  } catch {
    return { json: `"${Buffer.from(bytes).toString("base64")}"`, encoding: "base64" };
  }
  try {
    JSON.parse(text);
  } catch {
    return { json: JSON.stringify(text), encoding: "text" };
  }
  return { json: _NEWLINE.test(text) ? text.replace(_NEWLINES, " ") : text };
}

/** Largest payload decoded by the ASCII fast path (one `String.fromCharCode` call). */
const _ASCII_FAST_MAX = 4096;

/**
 * Strict UTF-8 decoding. Small pure-ASCII payloads (the common JSON case) skip TextDecoder, whose
 * per-call cost dominates for ~100-byte messages; anything else goes through the fatal decoder.
 */
function _decodeUtf8(bytes: Uint8Array): string {
  if (bytes.length <= _ASCII_FAST_MAX) {
    let ascii = true;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  return _utf8.decode(bytes);
}

/** Renders a payload and parses it back to a value (for callers that need an object). */
export function payloadValue(
  bytes: Uint8Array,
): { payload: unknown; encoding?: "text" | "base64" } {
  const r = renderPayload(bytes);
  return r.encoding ? { payload: JSON.parse(r.json), encoding: r.encoding } : {
    payload: JSON.parse(r.json),
  };
}

/**
 * Encodes a client payload to bytes: JSON by default, or raw bytes when `encoding` is `text`
 * (data must be a string) or `base64` (data must be valid base64). `undefined` data is empty.
 */
export function encodePayload(data: unknown, encoding: unknown): Uint8Array {
  if (encoding === undefined) {
    if (data === undefined) return new Uint8Array(0);
    return _encoder.encode(JSON.stringify(data));
  }
  if (encoding === "text") {
    if (typeof data !== "string") {
      throw new BadRequestError('data must be a string with encoding "text"');
    }
    return _encoder.encode(data);
  }
  if (encoding === "base64") {
    if (typeof data !== "string" || !_BASE64.test(data)) {
      throw new BadRequestError('data must be valid base64 with encoding "base64"');
    }
    return new Uint8Array(Buffer.from(data, "base64"));
  }
  throw new BadRequestError('encoding must be "text" or "base64"');
}
