/** Entry of the natsgate binary: builds the command tree from cli/ and runs it.
 * Exit codes: 0 done, 1 failed (one line on stderr), 2 usage error (message and usage line).
 * An unexpected (internal) error prints one line; `NATSGATE_DEBUG=1` prints its stack and causes.
 * @module */

import { Command, CommanderError } from "@commander-js/extra-typings";
import denoJson from "./deno.json" with { type: "json" };
import { bindContext, CliContext, CliError } from "./cli/_common.ts";
import { serveCommand } from "./cli/serve.ts";
import { capsCommand } from "./cli/caps/mod.ts";
import { tokenCommand } from "./cli/token.ts";
import { sessionsCommand } from "./cli/sessions.ts";
import { replayCommand } from "./cli/replay.ts";
import { versionCommand } from "./cli/version.ts";
import { completionsCommand } from "./cli/completions.ts";
import { commandPath, prepareTree } from "./cli/_program.ts";

/** Builds the whole command tree. */
export function buildProgram() {
  return new Command("natsgate")
    .description("a WebSocket gateway that lets browser apps use NATS safely")
    .version(denoJson.version, "-V, --version")
    .addCommand(serveCommand())
    .addCommand(capsCommand())
    .addCommand(tokenCommand())
    .addCommand(sessionsCommand())
    .addCommand(replayCommand())
    .addCommand(versionCommand())
    .addCommand(completionsCommand())
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  $ natsgate serve --dev                 # gateway + embedded NATS for development",
        "  $ natsgate caps list                   # admin commands find the dev NATS by themselves",
        "  $ natsgate token alice --dev           # a token signed with the dev secret",
        "  $ natsgate completions bash >> ~/.bashrc",
        "",
        "Exit codes: 0 done, 1 failed, 2 usage error. NATSGATE_DEBUG=1 shows stacks of internal errors.",
      ].join("\n"),
    );
}

/**
 * Runs the CLI with `args`, writing through `ctx`; returns the exit code.
 *
 * @example
 * ```ts ignore
 * const code = await main(["version", "--json"]);
 * ```
 */
export async function main(
  args: string[],
  ctx: CliContext = CliContext.process(),
): Promise<number> {
  const program = buildProgram();
  bindContext(program, ctx);
  const state = prepareTree(program, ctx);
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0; // help or version
      // Commander printed the message (or the help of a group called without a subcommand).
      if (err.code !== "commander.help" && state.failed) _usageLine(ctx, state.failed);
      return 2;
    }
    if (err instanceof CliError) {
      ctx.note(`natsgate: ${err.message}`);
      if (err.exitCode === 2 && state.active) _usageLine(ctx, state.active);
      return err.exitCode;
    }
    _internal(ctx, err);
    return 1;
  } finally {
    ctx.close();
  }
}

function _usageLine(ctx: CliContext, cmd: Command<unknown[], Record<string, unknown>>): void {
  const path = commandPath(cmd);
  ctx.note(`usage: ${path} ${cmd.usage()}`);
  ctx.note(`(${path} --help shows every option and examples)`);
}

/** An error nobody anticipated: one line, or with `NATSGATE_DEBUG=1` its stack and causes. */
function _internal(ctx: CliContext, err: unknown): void {
  const debug = /^(1|true|yes)$/i.test(ctx.env("NATSGATE_DEBUG") ?? "");
  const chain: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 8; depth++) {
    if (e instanceof Error) {
      chain.push(debug ? (e.stack ?? `${e.name}: ${e.message}`) : e.message);
      e = e.cause;
    } else {
      chain.push(String(e));
      break;
    }
  }
  if (debug) {
    ctx.note(`natsgate: internal error`);
    ctx.note(chain.join("\ncaused by: "));
  } else {
    ctx.note(`natsgate: ${chain.join(": ")} (NATSGATE_DEBUG=1 shows the stack)`);
  }
}

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
