/** Dev mode's demo data: the `demo` user, KV bucket `demo` and stream `DEMO` with a few samples,
 * so the README's tour works on a fresh `natsgate serve --dev`.
 *
 * Idempotent: what exists is left as it is (a developer's edits to the user, the bucket or the
 * stream survive restarts); samples are written only into a bucket or stream created now.
 * @module */

import type { NatsConnection } from "@nats-io/transport-node";
import {
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
} from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { Logger } from "../src/log/log.ts";
import { userKey } from "../src/auth/user_key.ts";

/** Capabilities seeded for the `demo` user in dev mode. */
export const DEMO_CAPABILITIES = {
  subjects: ["demo.>"],
  publish: ["demo.>"],
  commands: ["demo.>"],
  buckets: { demo: [">"] },
  streams: { DEMO: [">"] },
};

/** The demo KV bucket and its sample entries (JSON values). */
export const DEMO_BUCKET = "demo";
/** Sample entries of {@link DEMO_BUCKET}, in write order. */
export const DEMO_ENTRIES: ReadonlyArray<readonly [key: string, value: unknown]> = [
  ["greeting", { text: "hello from natsgate" }],
  ["settings.theme", "dark"],
  ["settings.lang", "en"],
];

/** The demo stream. It stores `demo.events.>` only: a stream on all of `demo.>` would answer
 * every request to a `demo.` subject with its publish acknowledgement. */
export const DEMO_STREAM = "DEMO";
/** Subjects {@link DEMO_STREAM} stores. */
export const DEMO_STREAM_SUBJECTS = ["demo.events.>"];
/** Sample messages of {@link DEMO_STREAM}, in publish order. */
export const DEMO_MESSAGES: ReadonlyArray<{ subject: string; payload: unknown }> = [
  { subject: "demo.events.signup", payload: { user: "ada", plan: "free" } },
  { subject: "demo.events.order", payload: { order: 1, user: "ada", total: 9.5 } },
  { subject: "demo.events.signup", payload: { user: "grace", plan: "pro" } },
];

/**
 * Seeds the demo user into `authBucket`, and creates bucket `demo` and stream `DEMO` with their
 * samples when they do not exist yet.
 *
 * @example
 * ```ts ignore
 * await seedDemo(nc, "auth", log);
 * ```
 */
export async function seedDemo(nc: NatsConnection, authBucket: string, log: Logger): Promise<void> {
  const kvm = new Kvm(nc);
  const auth = await kvm.create(authBucket, { history: 10 });
  try {
    await auth.create(userKey("demo"), JSON.stringify(DEMO_CAPABILITIES));
    log.info("seeded demo user", { key: `${authBucket}.${userKey("demo")}` });
  } catch {
    // already there: keep what the developer changed
  }
  const jsm = await jetstreamManager(nc);
  if (!await _streamExists(jsm, `KV_${DEMO_BUCKET}`)) {
    const kv = await kvm.create(DEMO_BUCKET, { history: 10 });
    for (const [key, value] of DEMO_ENTRIES) await kv.put(key, JSON.stringify(value));
    log.info("created demo bucket", { bucket: DEMO_BUCKET, entries: DEMO_ENTRIES.length });
  }
  if (!await _streamExists(jsm, DEMO_STREAM)) {
    await jsm.streams.add({
      name: DEMO_STREAM,
      subjects: DEMO_STREAM_SUBJECTS,
      max_msgs: 10_000,
      max_bytes: 64 * 1024 * 1024,
    });
    const js = jetstream(nc);
    for (const m of DEMO_MESSAGES) await js.publish(m.subject, JSON.stringify(m.payload));
    log.info("created demo stream", { stream: DEMO_STREAM, messages: DEMO_MESSAGES.length });
  }
}

async function _streamExists(
  jsm: Awaited<ReturnType<typeof jetstreamManager>>,
  name: string,
): Promise<boolean> {
  try {
    await jsm.streams.info(name);
    return true;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) {
      return false;
    }
    throw err;
  }
}
