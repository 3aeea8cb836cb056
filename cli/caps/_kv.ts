/** KV access shared by the `caps` subcommands: opening the auth bucket, reading a user's
 * document with its revision, and compare-and-set writes.
 * @module */

import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { type KV, type KvEntry, Kvm } from "@nats-io/kv";
import { userFromKey, userKey } from "../../src/auth/user_key.ts";
import { validateBucketName } from "../../src/protocol/subject.ts";
import { CliError } from "../_common.ts";

/** How many times grant/revoke retry a compare-and-set that lost a race. */
export const CAS_ATTEMPTS = 5;

/** A stored document as read from KV. */
export interface Stored {
  /** Revision of the key's last entry, delete markers included (0: never written): the CAS base. */
  revision: number;
  /** The document text, or null when there is none (never written, deleted or purged). */
  text: string | null;
  /** When it was written. */
  created?: Date;
}

/** Whether `err` is a JetStream API error with one of `codes`. */
export function isApiError(err: unknown, ...codes: number[]): boolean {
  return err instanceof JetStreamApiError && codes.includes(err.code);
}

/** Whether `err` says a compare-and-set write lost against another writer. */
export function isCasConflict(err: unknown): boolean {
  return isApiError(
    err,
    JetStreamApiCodes.StreamWrongLastSequence,
    JetStreamApiCodes.StreamWrongLastSequenceUnknown,
  );
}

/** The message of any thrown value. */
export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Opens the auth bucket; when it does not exist, creates it (`create`) or returns null. */
export async function openKv(
  nc: NatsConnection,
  bucket: string,
  create: boolean,
): Promise<KV | null> {
  const bucketErr = validateBucketName(bucket);
  if (bucketErr) {
    throw new CliError(`invalid --auth-bucket ${JSON.stringify(bucket)}: ${bucketErr}`);
  }
  let exists = true;
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.info(`KV_${bucket}`);
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) {
      throw new CliError(`cannot open KV bucket ${bucket}: ${message(err)}`);
    }
    exists = false;
  }
  const kvm = new Kvm(nc);
  if (exists) return await kvm.open(bucket);
  if (!create) return null;
  return await kvm.create(bucket, { history: 10 });
}

/** Opens the bucket for reading, or throws "no capabilities for USER" when it does not exist. */
export async function openForUser(nc: NatsConnection, bucket: string, user: string): Promise<KV> {
  const kv = await openKv(nc, bucket, false);
  if (!kv) throw new CliError(`no capabilities for ${user} (bucket ${bucket} does not exist)`);
  return kv;
}

/** The {@link Stored} view of a KV entry (null: never written). */
export function stored(e: KvEntry | null): Stored {
  if (!e) return { revision: 0, text: null };
  if (e.operation !== "PUT") return { revision: e.revision, text: null, created: e.created };
  return { revision: e.revision, text: e.string(), created: e.created };
}

/** Reads the document of `user`. */
export async function read(kv: KV, user: string): Promise<Stored> {
  return stored(await kv.get(userKey(user)));
}

/** Writes `text` only if the key is still at `revision` (0: must not exist); throws on a lost race. */
export async function writeCas(
  kv: KV,
  user: string,
  text: string,
  revision: number,
): Promise<number> {
  return await kv.put(userKey(user), text, { previousSeq: revision });
}

/** The error of a write that lost against a concurrent change. */
export function concurrent(user: string, extra = ""): CliError {
  return new CliError(
    `capabilities of ${user} changed concurrently; nothing written${extra ? ` (${extra})` : ""}`,
  );
}

/** Every user with a current document, keyed by decoded user id. */
export async function currentUsers(kv: KV): Promise<Map<string, Stored>> {
  const out = new Map<string, Stored>();
  const keys: string[] = [];
  for await (const k of await kv.keys("users.>")) keys.push(k);
  for (const k of keys) {
    const user = userFromKey(k);
    if (user === null || user === undefined) continue;
    const s = stored(await kv.get(k));
    if (s.text !== null) out.set(user, s);
  }
  return out;
}
