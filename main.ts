/** Entry of the natsgate binary: builds the command tree from cli/ and runs it.
 * Errors end with one line on stderr and a non-zero exit code, never a stack trace.
 * @module */

import { Command, CommanderError } from "@commander-js/extra-typings";
import denoJson from "./deno.json" with { type: "json" };
import { CliError } from "./cli/_common.ts";
import { serveCommand } from "./cli/serve.ts";
import { capsCommand } from "./cli/caps/mod.ts";
import { tokenCommand } from "./cli/token.ts";
import { sessionsCommand } from "./cli/sessions.ts";
import { replayCommand } from "./cli/replay.ts";

/** Builds the whole command tree. */
export function buildProgram() {
  return new Command("natsgate")
    .description("a WebSocket gateway that lets browser apps use NATS safely")
    .version(denoJson.version, "-V, --version")
    .showHelpAfterError()
    .addCommand(serveCommand())
    .addCommand(capsCommand())
    .addCommand(tokenCommand())
    .addCommand(sessionsCommand())
    .addCommand(replayCommand());
}

/** Runs the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const program = buildProgram();
  const override = (c: { exitOverride(): unknown; commands: readonly unknown[] }) => {
    c.exitOverride();
    for (const sub of c.commands) override(sub as typeof c);
  };
  override(program);
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed help, version or the usage error.
      return err.exitCode;
    }
    if (err instanceof CliError) {
      console.error(`natsgate: ${err.message}`);
      return err.exitCode;
    }
    console.error(`natsgate: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
