/** Client payloads on the wire (protocol section 3): JSON by default, bytes as base64, text raw.
 * @module */

import type { PayloadEncoding } from "../protocol/types.ts";
import { fromBase64, toBase64 } from "./token.ts";

/** The envelope fields carrying a payload. */
export interface PayloadFields {
  /** The payload, or its base64 / text form. */
  data?: unknown;
  /** Set for raw payloads. */
  encoding?: PayloadEncoding;
}

/**
 * Envelope fields for a payload: JSON by default, bytes as base64, text with `encoding: "text"`.
 *
 * @example
 * ```ts
 * payloadFields(new Uint8Array([1, 2]), {}); // { data: "AQI=", encoding: "base64" }
 * ```
 */
export function payloadFields(
  payload: unknown,
  options: { encoding?: "json" | "text" },
): PayloadFields {
  if (payload instanceof Uint8Array) return { data: toBase64(payload), encoding: "base64" };
  if (payload instanceof ArrayBuffer) {
    return { data: toBase64(new Uint8Array(payload)), encoding: "base64" };
  }
  if (options.encoding === "text") return { data: String(payload ?? ""), encoding: "text" };
  return payload === undefined ? {} : { data: payload };
}

/**
 * Decodes a payload delivered with `encoding: "base64"` or `"text"` to bytes (JSON values are
 * encoded as their JSON text, as they were on the wire).
 *
 * @example
 * ```ts
 * client.subscribe("files.>", (m) => save(payloadBytes(m.payload, m.encoding)));
 * ```
 */
export function payloadBytes(payload: unknown, encoding?: string): Uint8Array {
  if (encoding === "base64") return fromBase64(String(payload));
  if (encoding === "text") return new TextEncoder().encode(String(payload));
  return new TextEncoder().encode(JSON.stringify(payload));
}
