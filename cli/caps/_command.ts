/** The base of every `caps` subcommand: the NATS flags and `--auth-bucket`.
 * @module */

import { Command } from "@commander-js/extra-typings";
import { envOption } from "../_common.ts";
import { type NatsFlags, withNatsOptions } from "../_nats.ts";

/** The flags every `caps` subcommand has. */
export interface BucketFlags extends NatsFlags {
  /** The auth KV bucket. */
  authBucket: string;
}

/** A `caps` subcommand named `name` with the NATS flags and `--auth-bucket`. */
export function capsSubcommand(name: string) {
  return withNatsOptions(new Command(name))
    .addOption(envOption("--auth-bucket <name>", "KV bucket holding capabilities").default("auth"));
}
