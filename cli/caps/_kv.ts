/** The auth bucket as the `caps` subcommands use it: opened (or created only when asked), read
 * with revisions, written compare-and-set with a `Natsgate-Actor` header, and its history with
 * who and when.
 * @module */

import { headers, type NatsConnection } from "@nats-io/transport-node";
import {
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import { type KV, type KvEntry, Kvm } from "@nats-io/kv";
import { userFromKey, userKey } from "../../src/auth/user_key.ts";
import { roleFromKey } from "../../src/auth/roles.ts";
import { validateBucketName } from "../../src/protocol/subject.ts";
import { CliError, UsageError } from "../_common.ts";
import type { DocTarget } from "./_target.ts";

/** A user id, or a {@link DocTarget} naming a user's or a role's document. */
export type Who = string | DocTarget;

function _key(who: Who): string {
  return typeof who === "string" ? userKey(who) : who.key;
}

/** How many times grant/revoke retry a compare-and-set that lost a race. */
export const CAS_ATTEMPTS = 5;

/** The header every CLI write carries: who wrote it (`user@host`, or `NATSGATE_ACTOR`). */
export const ACTOR_HEADER = "Natsgate-Actor";

/** History kept per key when the CLI creates the bucket. */
export const CREATED_HISTORY = 10;

/** A stored document as read from KV. */
export interface Stored {
  /** Revision of the key's last entry, delete markers included (0: never written): the CAS base. */
  revision: number;
  /** The document text, or null when there is none (never written, deleted or purged). */
  text: string | null;
  /** When it was written. */
  created?: Date;
}

/** One revision of a user's document. */
export interface Revision extends Stored {
  /** `PUT`, `DEL` or `PURGE`. */
  operation: KvEntry["operation"];
  /** When it was written (the stream message's time). */
  created: Date;
  /** Who wrote it, from the {@link ACTOR_HEADER} (absent when written by another tool). */
  actor?: string;
}

/** Where the bucket name came from, for messages: `--auth-bucket`, the env var or the default. */
export interface BucketRef {
  /** The bucket name. */
  name: string;
  /** Commander's source of the value: `cli`, `env`, `default` (anything else reads as the flag). */
  source?: string;
}

/** The auth bucket does not exist (and was not to be created). */
export class MissingBucketError extends CliError {
  /** The bucket name. */
  readonly bucket: string;
  /** Creates the error; `createHint` adds "pass --create". */
  constructor(ref: BucketRef, createHint: boolean) {
    super(
      `auth bucket ${ref.name} does not exist (${_origin(ref)})` +
        (createHint ? "; pass --create to create it" : ""),
    );
    this.name = "MissingBucketError";
    this.bucket = ref.name;
  }
}

/** A user has no capabilities document. */
export class MissingUserError extends CliError {
  /** The user id. */
  readonly user: string;
  /** Creates the error; `hint` is appended after a semicolon. */
  constructor(user: string, hint = "") {
    super(`no capabilities for ${user}${hint ? `; ${hint}` : ""}`);
    this.name = "MissingUserError";
    this.user = user;
  }
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

/** The error of a write that lost against a concurrent change. */
export function concurrent(user: Who, extra = ""): CliError {
  const label = typeof user === "string" ? `capabilities of ${user}` : user.label;
  return new CliError(
    `${label} changed concurrently; nothing written${extra ? ` (${extra})` : ""}`,
  );
}

/**
 * Who is writing: `NATSGATE_ACTOR` when set, else `$USER@hostname` (informational: anyone who may
 * write the bucket may write any header).
 *
 * @example
 * ```ts
 * actorName((n) => ({ USER: "ada" } as Record<string, string>)[n], () => "box"); // "ada@box"
 * ```
 */
export function actorName(env: (name: string) => string | undefined, host: () => string): string {
  const explicit = env("NATSGATE_ACTOR")?.trim();
  if (explicit) return explicit;
  const user = env("USER") || env("USERNAME") || env("LOGNAME") || _uid();
  let h = "";
  try {
    h = host();
  } catch {
    // no --allow-sys: the user alone
  }
  return h ? `${user}@${h}` : user;
}

/**
 * The auth bucket of one command run.
 *
 * @example
 * ```ts ignore
 * const bucket = await AuthBucket.open(nc, { name: "auth" }, { actor: "ada@box" });
 * const cur = await bucket.read("alice");
 * await bucket.write("alice", '{"subjects":["a.>"]}', cur.revision);
 * ```
 */
export class AuthBucket {
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;

  private constructor(
    /** The bucket. */
    readonly kv: KV,
    /** Its name. */
    readonly name: string,
    /** Written into the {@link ACTOR_HEADER} of every write. */
    readonly actor: string,
    /** True when this run created the bucket. */
    readonly created: boolean,
    js: JetStreamClient,
    jsm: JetStreamManager,
  ) {
    this.#js = js;
    this.#jsm = jsm;
  }

  /** Whether bucket `name` exists (after validating the name). */
  static async exists(nc: NatsConnection, name: string): Promise<boolean> {
    const bucketErr = validateBucketName(name);
    if (bucketErr) {
      throw new UsageError(`invalid --auth-bucket ${JSON.stringify(name)}: ${bucketErr}`);
    }
    try {
      await (await jetstreamManager(nc)).streams.info(`KV_${name}`);
      return true;
    } catch (err) {
      if (isApiError(err, JetStreamApiCodes.StreamNotFound)) return false;
      throw new CliError(`cannot open KV bucket ${name}: ${message(err)}`);
    }
  }

  /**
   * Opens the bucket. A missing bucket is created when `create`; otherwise it is a
   * {@link MissingBucketError} (with a "pass --create" hint when `createHint`).
   */
  static async open(
    nc: NatsConnection,
    ref: BucketRef,
    opts: { actor?: string; create?: boolean; createHint?: boolean } = {},
  ): Promise<AuthBucket> {
    const exists = await AuthBucket.exists(nc, ref.name);
    if (!exists && !opts.create) throw new MissingBucketError(ref, opts.createHint ?? false);
    const kvm = new Kvm(nc);
    const kv = exists
      ? await kvm.open(ref.name)
      : await kvm.create(ref.name, { history: CREATED_HISTORY });
    return new AuthBucket(
      kv,
      ref.name,
      opts.actor ?? "unknown",
      !exists,
      jetstream(nc),
      await jetstreamManager(nc),
    );
  }

  /** Reads the document of `user` (or of a role: pass its {@link DocTarget}). */
  async read(user: Who): Promise<Stored> {
    return _stored(await this.kv.get(_key(user)));
  }

  /** Reads the document of `user`; a {@link MissingUserError} (with `hint`) when there is none. */
  async require(user: Who, hint = ""): Promise<Stored & { text: string }> {
    const cur = await this.read(user);
    if (cur.text === null && typeof user !== "string") {
      throw new CliError(`${user.missing}${hint ? `; ${hint}` : ""}`);
    }
    if (cur.text === null) throw new MissingUserError(user as string, hint);
    return cur as Stored & { text: string };
  }

  /**
   * Writes `text` as the document of `user`, only if the key is still at `revision` (0: must not
   * exist; undefined: unconditionally); throws a JetStream error on a lost race (see
   * {@link isCasConflict}). Returns the new revision.
   *
   * nats.js KV `put` (3.4) takes no headers, so this publishes to the key's subject itself, with
   * the same compare-and-set header KV uses plus the {@link ACTOR_HEADER}.
   */
  async write(user: Who, text: string, revision?: number): Promise<number> {
    const h = headers();
    h.set(ACTOR_HEADER, this.actor);
    const ack = await this.#js.publish(this.#subject(user), text, {
      headers: h,
      ...(revision === undefined ? {} : { expect: { lastSubjectSequence: revision } }),
    });
    return ack.seq;
  }

  /** Deletes the document of `user` (a KV delete marker), only if still at `revision`. */
  async remove(user: Who, revision: number): Promise<void> {
    const h = headers();
    h.set("KV-Operation", "DEL");
    h.set(ACTOR_HEADER, this.actor);
    await this.#js.publish(this.#subject(user), new Uint8Array(0), {
      headers: h,
      expect: { lastSubjectSequence: revision },
    });
  }

  /** Every user with a current document, keyed by decoded user id. */
  users(): Promise<Map<string, Stored>> {
    return this.#documents("users.>", userFromKey);
  }

  /** Every role with a current document, keyed by role name. */
  roles(): Promise<Map<string, Stored>> {
    return this.#documents("roles.>", roleFromKey);
  }

  async #documents(
    filter: string,
    nameOf: (key: string) => string | null,
  ): Promise<Map<string, Stored>> {
    const out = new Map<string, Stored>();
    const keys: string[] = [];
    for await (const k of await this.kv.keys(filter)) keys.push(k);
    for (const k of keys) {
      const name = nameOf(k);
      if (name === null || name === undefined) continue;
      const s = _stored(await this.kv.get(k));
      if (s.text !== null) out.set(name, s);
    }
    return out;
  }

  /** Every revision the bucket still holds for `user`, oldest first, with who wrote it. */
  async history(user: Who): Promise<Revision[]> {
    const entries: KvEntry[] = [];
    for await (const e of await this.kv.history({ key: _key(user) })) entries.push(e);
    entries.sort((a, b) => a.revision - b.revision);
    const out: Revision[] = [];
    for (const e of entries) {
      const s = _stored(e);
      const actor = await this.#actorOf(e.revision);
      out.push({
        ...s,
        created: e.created,
        operation: e.operation,
        ...(actor ? { actor } : {}),
      });
    }
    return out;
  }

  async #actorOf(revision: number): Promise<string | undefined> {
    try {
      const m = await this.#jsm.streams.getMessage(`KV_${this.name}`, { seq: revision });
      return m?.header?.get(ACTOR_HEADER) || undefined;
    } catch {
      return undefined; // gone (limits) or no permission: history still shows the rest
    }
  }

  #subject(user: Who): string {
    return `$KV.${this.name}.${_key(user)}`;
  }
}

function _uid(): string {
  try {
    const uid = Deno.uid();
    return uid === null ? "unknown" : `uid:${uid}`;
  } catch {
    return "unknown";
  }
}

function _stored(e: KvEntry | null): Stored {
  if (!e) return { revision: 0, text: null };
  if (e.operation !== "PUT") return { revision: e.revision, text: null, created: e.created };
  return { revision: e.revision, text: e.string(), created: e.created };
}

function _origin(ref: BucketRef): string {
  switch (ref.source) {
    case "env":
      return "from NATSGATE_AUTH_BUCKET";
    case "default":
    case undefined:
      return "the default; choose one with --auth-bucket";
    default:
      return "from --auth-bucket";
  }
}
