/** The base of every `caps` subcommand: the NATS flags, `--auth-bucket`, examples in `--help`,
 * and what an action needs to reach the bucket (its name and where it came from, who is writing).
 * @module */

import { Command } from "@commander-js/extra-typings";
import type { NatsConnection } from "@nats-io/transport-node";
import { type CliContext, envOption, examples } from "../_common.ts";
import { type NatsFlags, withNatsOptions } from "../_nats.ts";
import { actorName, AuthBucket, type BucketRef } from "./_kv.ts";

/** The flags every `caps` subcommand has. */
export interface BucketFlags extends NatsFlags {
  /** The auth KV bucket. */
  authBucket: string;
}

/** What {@link openBucket} needs of a commander command: where `--auth-bucket` came from. */
export interface SourceHolder {
  /** Commander's `cli` / `env` / `default`. */
  getOptionValueSource(key: string): string | undefined;
}

/**
 * A `caps` subcommand named `name` with the NATS flags, `--auth-bucket` and an Examples block.
 *
 * @example
 * ```ts ignore
 * capsSubcommand("get", ["natsgate caps get alice"]).argument("<user>").action(...);
 * ```
 */
export function capsSubcommand(name: string, lines: readonly string[]) {
  return withNatsOptions(new Command(name))
    .addOption(envOption("--auth-bucket <name>", "KV bucket holding capabilities").default("auth"))
    .addHelpText("after", examples(...lines));
}

/**
 * Opens the auth bucket named by `o` for this run. `mode` says what a missing bucket means:
 * `read` fails; `write` fails with a "pass --create" hint unless `create`; `existing` fails (the
 * command never creates, e.g. revoke and delete).
 */
export async function openBucket(
  nc: NatsConnection,
  ctx: CliContext,
  o: BucketFlags,
  cmd: SourceHolder,
  mode: "read" | "write" | "existing",
  create = false,
): Promise<AuthBucket> {
  const bucket = await AuthBucket.open(nc, bucketRef(o, cmd), {
    actor: actorName((n) => ctx.env(n), () => Deno.hostname()),
    create: mode === "write" && create,
    createHint: mode === "write",
  });
  if (bucket.created) ctx.note(`created auth bucket ${bucket.name}`);
  return bucket;
}

/** The bucket name and where it came from. */
export function bucketRef(o: BucketFlags, cmd: SourceHolder): BucketRef {
  return { name: o.authBucket, source: cmd.getOptionValueSource("authBucket") };
}
