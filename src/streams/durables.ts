/** Durable JetStream consumers of `js_sub`: user-scoped names and the per-user quota.
 * @module */

import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { LimitError, toGatewayError } from "../protocol/errors.ts";

/**
 * The consumer name of a user's durable: `ng_<first 16 hex of SHA-256(user id)>_<name>`. Two
 * users with the same durable name get different consumers; the user id itself never appears.
 *
 * @example
 * ```ts
 * await durableName("alice", "inbox"); // "ng_<16 hex>_inbox"
 * ```
 */
export async function durableName(user: string, name: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(user)),
  );
  const hex = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  return `ng_${hex}_${name}`;
}

/**
 * Refuses a new durable when the user already holds `max` durables on the stream (names share
 * the user's `ng_<hash>_` prefix). Re-attaching to an existing durable is always allowed.
 *
 * @example
 * ```ts
 * await checkDurableQuota(jsm, "CHAT", await durableName(user, "inbox"), 16);
 * ```
 */
export async function checkDurableQuota(
  jsm: JetStreamManager,
  stream: string,
  durable: string,
  max: number,
): Promise<void> {
  try {
    await jsm.consumers.info(stream, durable);
    return; // exists: resuming it creates nothing
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) {
      throw toGatewayError(err);
    }
  }
  const prefix = durable.slice(0, durable.indexOf("_", 3) + 1);
  let held = 0;
  for await (const ci of jsm.consumers.list(stream)) {
    if (ci.name.startsWith(prefix) && ++held >= max) {
      throw new LimitError(
        `at most ${max} durable consumers per user on a stream; reuse or let one expire`,
      );
    }
  }
}
