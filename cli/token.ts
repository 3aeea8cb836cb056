/** `natsgate token`: mints an HS256 JWT the gateway accepts, for development and tooling.
 * Warns on stderr unless the secret is the dev secret of `serve --dev` (`--dev`).
 * @module */

import { Command, Option } from "@commander-js/extra-typings";
import { decodeJwt } from "jose";
import { mintToken } from "../src/auth/mint.ts";
import { CliError, contextOf, durationArg, envOption, examples, UsageError } from "./_common.ts";

/** Reads the dev secret `serve --dev` wrote into `dir` (`shown`: the directory as given). */
async function _devSecret(dir: string, shown: string): Promise<string> {
  const path = `${dir}/jwt-secret`;
  let secret: string;
  try {
    secret = (await Deno.readTextFile(path)).trim();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new CliError(`no dev secret at ${shown}/jwt-secret: run natsgate serve --dev first`);
    }
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
  if (secret.length === 0) throw new CliError(`${path} is empty`);
  return secret;
}

/** Builds the `token` command. */
export function tokenCommand() {
  return new Command("token")
    .description("mint an HS256 JWT for USER that the gateway accepts (prints it on stdout)")
    .argument("<user>", "user id (the sub claim)")
    .addOption(
      new Option("--ttl <duration>", "lifetime, e.g. 15m, 1h, 7d").argParser(durationArg)
        .default(3_600_000, "1h"),
    )
    .addOption(
      envOption("--jwt-secret <secret>", "HS256 secret (as given to serve)").conflicts("dev"),
    )
    .addOption(envOption("--jwt-issuer <iss>", "iss claim"))
    .addOption(envOption("--jwt-audience <aud>", "aud claim"))
    .addOption(new Option("--dev", "use the dev secret of serve --dev (<data-dir>/jwt-secret)"))
    .addOption(envOption("--data-dir <dir>", "dev mode state directory").default(".natsgate"))
    .option("--json", 'print {"token", "user", "expires_at"}')
    .addHelpText(
      "after",
      examples(
        "natsgate token alice --dev                    # signed with the dev secret of serve --dev",
        'natsgate token alice --jwt-secret "$SECRET" --ttl 15m',
        "NATSGATE_JWT_SECRET=... natsgate token bob --json | jq -r .token",
      ),
    )
    .action(async (user, o, cmd) => {
      const ctx = contextOf(cmd);
      if (user.length === 0) throw new UsageError("user id must not be empty");
      if (o.ttl < 1000) throw new UsageError("--ttl must be at least 1s");
      const dataDir = o.dataDir.startsWith("/") ? o.dataDir : `${ctx.cwd}/${o.dataDir}`;
      const secret = o.dev ? await _devSecret(dataDir, o.dataDir) : o.jwtSecret;
      if (!secret) {
        throw new UsageError(
          "no secret: pass --jwt-secret (or NATSGATE_JWT_SECRET), or --dev for the dev secret",
        );
      }
      if (!o.dev) {
        ctx.note(
          "warning: minting a token with a real secret: whoever holds it acts as " +
            `${JSON.stringify(user)} until it expires`,
        );
      }
      const ttlSeconds = Math.max(1, Math.round(o.ttl / 1000));
      const token = await mintToken({
        secret,
        user,
        ttlSeconds,
        issuer: o.jwtIssuer,
        audience: o.jwtAudience,
      });
      if (o.json) {
        const exp = decodeJwt(token).exp!;
        ctx.print(
          JSON.stringify({ token, user, expires_at: new Date(exp * 1000).toISOString() }),
        );
      } else {
        ctx.print(token);
      }
    });
}
