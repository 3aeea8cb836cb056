/** Plumbing shared by the admin commands (`caps`, `sessions`, `replay`): NATS flags and confirmation.
 * `--nats` (env NATSGATE_NATS) plus credentials; connections fail fast and always close.
 * @module */

import type { Command, OptionValues } from "@commander-js/extra-typings";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsConnectionOptions } from "../src/nats/connect.ts";
import { CliError, envOption, listArg } from "./_common.ts";

/** Default NATS URL of the admin commands. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** The parsed NATS flags. */
export interface NatsFlags {
  /** Server URLs. */
  nats: readonly string[];
  /** NATS user. */
  natsUser?: string;
  /** NATS password. */
  natsPass?: string;
  /** NATS auth token. */
  natsToken?: string;
  /** `.creds` file. */
  natsCreds?: string;
  /** nkey seed file. */
  natsNkey?: string;
  /** CA certificate for TLS to NATS. */
  natsTlsCa?: string;
}

/** Adds `--nats`, `--nats-user`, `--nats-pass`, `--nats-token`, `--nats-creds`, `--nats-nkey`, `--nats-tls-ca`. */
export function withNatsOptions<
  A extends unknown[],
  O extends OptionValues,
  G extends OptionValues,
>(cmd: Command<A, O, G>) {
  return cmd
    .addOption(
      envOption("--nats <urls>", "NATS server URLs, comma separated")
        .argParser(listArg).default([DEFAULT_NATS_URL], DEFAULT_NATS_URL),
    )
    .addOption(envOption("--nats-user <user>", "NATS user"))
    .addOption(envOption("--nats-pass <password>", "NATS password"))
    .addOption(envOption("--nats-token <token>", "NATS auth token"))
    .addOption(envOption("--nats-creds <file>", "NATS credentials file (.creds)"))
    .addOption(envOption("--nats-nkey <file>", "file with an NATS nkey seed"))
    .addOption(envOption("--nats-tls-ca <file>", "CA certificate for TLS to NATS"));
}

/** Connects with the admin flags; failures become a one-line {@link CliError}. */
export async function connectAdmin(flags: NatsFlags): Promise<NatsConnection> {
  const servers = flags.nats.length > 0 ? [...flags.nats] : [DEFAULT_NATS_URL];
  try {
    const opts = await natsConnectionOptions({
      servers,
      user: flags.natsUser,
      pass: flags.natsPass,
      token: flags.natsToken,
      credsFile: flags.natsCreds,
      nkeySeedFile: flags.natsNkey,
      tlsCaFile: flags.natsTlsCa,
      name: "natsgate-admin",
    });
    return await connect({ ...opts, timeout: 5000, maxReconnectAttempts: 0 });
  } catch (err) {
    throw new CliError(`cannot connect to NATS at ${servers.join(",")}: ${_message(err)}`);
  }
}

/** Runs `fn` with a connection and always closes it (draining pending publishes first). */
export async function withNats<T>(
  flags: NatsFlags,
  fn: (nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const nc = await connectAdmin(flags);
  try {
    return await fn(nc);
  } finally {
    if (!nc.isClosed()) await nc.drain().catch(() => nc.close().catch(() => {}));
  }
}

/**
 * Asks `question` on a terminal unless `yes`; without a terminal (and without `--yes`) refuses.
 * Throws a {@link CliError} unless the answer is yes.
 */
export function confirmAction(question: string, what: string, yes: boolean | undefined): void {
  if (yes) return;
  let tty = false;
  try {
    tty = Deno.stdin.isTerminal();
  } catch {
    // no stdin
  }
  if (!tty) {
    throw new CliError(
      `refusing to ${what} without confirmation: pass --yes (stdin is not a terminal)`,
    );
  }
  const answer = prompt(`${question} [y/N]`);
  if (!/^\s*y(es)?\s*$/i.test(answer ?? "")) throw new CliError(`aborted; nothing done`);
}

function _message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
