/** Plumbing shared by the admin commands (`caps`, `sessions`, `replay`): NATS flags and confirmation.
 * Which NATS: `--nats` > NATSGATE_NATS > NATS_URL > the dev gateway's record (`--dev` forces it) >
 * nats://127.0.0.1:4222; the implicit ones (NATS_URL, dev, default) are named on stderr. Connections
 * fail fast and always close; their errors name the URL and its source.
 * @module */

import { type Command, Option, type OptionValues } from "@commander-js/extra-typings";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsConnectionOptions } from "../src/nats/connect.ts";
import { CliError, contextOf, listArg, UsageError } from "./_common.ts";
import { DEFAULT_NATS_URL, type NatsTarget, resolveNatsTarget } from "./_nats_target.ts";

export { DEFAULT_NATS_URL, type NatsTarget } from "./_nats_target.ts";

/** The parsed NATS flags. */
export interface NatsFlags {
  /** Server URLs (after the preAction hook: the resolved ones). */
  nats?: readonly string[];
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
  /** `--dev`: use the NATS of `natsgate serve --dev`. */
  dev?: boolean;
  /** Where the URLs came from (set by the preAction hook of {@link withNatsOptions}). */
  natsTarget?: NatsTarget;
}

/** The help heading of the connection flags. */
export const NATS_HELP_GROUP = "NATS connection (shared by caps, sessions, replay):";

/**
 * Adds `--nats`, `--nats-user`, `--nats-pass`, `--nats-token`, `--nats-creds`, `--nats-nkey`,
 * `--nats-tls-ca` and `--dev` as one help group, and resolves which NATS to use before the action
 * runs (the action's options then carry `nats` and `natsTarget`).
 */
export function withNatsOptions<
  A extends unknown[],
  O extends OptionValues,
  G extends OptionValues,
>(cmd: Command<A, O, G>) {
  const group = NATS_HELP_GROUP;
  return cmd
    .addOption(
      new Option(
        "--nats <urls>",
        `NATS server URLs, comma separated (else NATS_URL, dev, ${DEFAULT_NATS_URL})`,
      ).env("NATSGATE_NATS").argParser(listArg).helpGroup(group),
    )
    .addOption(
      new Option("--nats-user <user>", "NATS user").env("NATSGATE_NATS_USER").helpGroup(group),
    )
    .addOption(
      new Option("--nats-pass <password>", "NATS password").env("NATSGATE_NATS_PASS").helpGroup(
        group,
      ),
    )
    .addOption(
      new Option("--nats-token <token>", "NATS auth token").env("NATSGATE_NATS_TOKEN").helpGroup(
        group,
      ),
    )
    .addOption(
      new Option("--nats-creds <file>", "NATS credentials file (.creds)").env("NATSGATE_NATS_CREDS")
        .helpGroup(group),
    )
    .addOption(
      new Option("--nats-nkey <file>", "file with an NATS nkey seed").env("NATSGATE_NATS_NKEY")
        .helpGroup(group),
    )
    .addOption(
      new Option("--nats-tls-ca <file>", "CA certificate for TLS to NATS").env(
        "NATSGATE_NATS_TLS_CA",
      )
        .helpGroup(group),
    )
    .addOption(
      new Option(
        "--dev",
        "use the NATS of the running `natsgate serve --dev` (.natsgate/nats.json)",
      )
        .helpGroup(group),
    )
    .hook("preAction", async (self) => {
      const ctx = contextOf(self);
      const o = self.opts() as NatsFlags;
      const source = self.getOptionValueSource("nats");
      if (o.dev && source === "cli") throw new UsageError("--dev and --nats exclude each other");
      const target = await resolveNatsTarget({
        flag: source === "cli" ? o.nats : undefined,
        dev: o.dev === true,
        env: ctx.env,
        cwd: ctx.cwd,
      });
      if (target.announce) {
        ctx.note(`using NATS ${target.servers.join(",")} (${target.source})`);
      }
      self.setOptionValue("nats", target.servers);
      self.setOptionValue("natsTarget", target);
      if (target.credsFile && o.natsCreds === undefined) {
        self.setOptionValue("natsCreds", target.credsFile);
      }
    });
}

/** Connects with the admin flags; failures become a one-line {@link CliError} naming URL and source. */
export async function connectAdmin(flags: NatsFlags): Promise<NatsConnection> {
  const servers = flags.nats && flags.nats.length > 0 ? [...flags.nats] : [DEFAULT_NATS_URL];
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
    const from = flags.natsTarget ? ` (${flags.natsTarget.source})` : "";
    const hint = flags.natsTarget?.hint ? `; ${flags.natsTarget.hint}` : "";
    throw new CliError(
      `cannot connect to NATS at ${servers.join(",")}${from}: ${_message(err)}${hint}`,
      1,
      { cause: err },
    );
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

function _message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
