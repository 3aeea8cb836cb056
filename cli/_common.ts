/** Helpers shared by the command groups: option parsing, errors with exit codes, output, prompts.
 * A failing command prints `natsgate: <reason>` on stderr; usage errors (exit 2) add the usage line.
 * @module */

import { InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { parseDuration } from "../src/auth/mint.ts";
import type { CliContext } from "./_context.ts";

export { bindContext, CliContext, contextOf } from "./_context.ts";
export type { CliContextInit, CliTty, CliWriter } from "./_context.ts";

/** An error that ends a command with a one-line message and an exit code. */
export class CliError extends Error {
  /** Process exit code. */
  readonly exitCode: number;
  /** Creates a CLI error; `cause` keeps the underlying error (shown with NATSGATE_DEBUG=1). */
  constructor(message: string, exitCode = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/**
 * A usage error: the command line itself is wrong (bad or conflicting flags). Exit code 2; `main`
 * prints the command's usage line after the message.
 *
 * @example
 * ```ts
 * throw new UsageError("pass only one of --a and --b");
 * ```
 */
export class UsageError extends CliError {
  /** Creates a usage error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 2, options);
    this.name = "UsageError";
  }
}

/** The env var read for a flag: `--max-subs` → `NATSGATE_MAX_SUBS`. */
export function envName(flag: string): string {
  return "NATSGATE_" + flag.replace(/^--/, "").replace(/-/g, "_").toUpperCase();
}

/** An option that also reads `NATSGATE_<FLAG>`; the flag wins over the env var. */
export function envOption<F extends string>(flags: F, description: string) {
  const long = /--[a-z0-9-]+/.exec(flags)![0];
  return new Option(flags, description).env(envName(long));
}

/** The integer in `value`, or `undefined` unless it is a plain safe integer (sign allowed). */
function _integer(value: string): number | undefined {
  const n = Number(value);
  return /^\s*[-+]?\d+\s*$/.test(value) && Number.isSafeInteger(n) ? n : undefined;
}

/** Parses a non-negative integer option (0 or more; the same message for any other input). */
export function intArg(value: string): number {
  const n = _integer(value);
  if (n === undefined || n < 0) {
    throw new InvalidArgumentError("expected an integer of 0 or more");
  }
  return n;
}

/** Parses a positive integer option (1 or more; `0`, `-3` and `x` get the same message). */
export function positiveIntArg(value: string): number {
  const n = _integer(value);
  if (n === undefined || n < 1) throw new InvalidArgumentError("expected an integer of 1 or more");
  return n;
}

/** Parses a duration option into milliseconds (unitless means seconds). */
export function durationArg(value: string): number {
  try {
    return parseDuration(value, "s");
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Parses a comma list. */
export function listArg(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** The `-y, --yes` flag of destructive commands. */
export function yesOption() {
  return new Option(
    "-y, --yes",
    "do not ask for confirmation (required when stdin is no terminal)",
  );
}

/** Options of {@link confirmDestructive}. */
export interface ConfirmOptions {
  /** `--yes` was given: do not ask. */
  yes?: boolean;
  /** What is refused without confirmation, e.g. `"kick a session"`. */
  action: string;
}

/**
 * The one rule for destructive actions: `--yes` skips the question; on a terminal the user is asked
 * (only `y`/`yes` proceeds); without a terminal and without `--yes` the action is refused.
 * Throws a {@link CliError} (exit 1) unless the action may go ahead.
 *
 * @example
 * ```ts ignore
 * await confirmDestructive(ctx, `kick session ${id}?`, { yes: o.yes, action: "kick a session" });
 * ```
 */
export async function confirmDestructive(
  ctx: CliContext,
  question: string,
  opts: ConfirmOptions,
): Promise<void> {
  if (opts.yes) return;
  if (!ctx.tty.stdin) {
    throw new CliError(
      `refusing to ${opts.action} without confirmation: pass --yes (stdin is not a terminal)`,
    );
  }
  const answer = await ctx.ask(`${question} [y/N]`);
  if (answer === null) ctx.stderr.write("\n"); // end of input: no echoed newline
  if (!/^\s*y(es)?\s*$/i.test(answer ?? "")) throw new CliError("aborted; nothing done");
}

/**
 * Rows as text: aligned columns on a terminal, tab-separated fields when piped (for `cut`/`awk`).
 *
 * @example
 * ```ts
 * formatTable([["A", "B"], ["1", "2"]], false); // ["A\tB", "1\t2"]
 * ```
 */
export function formatTable(rows: string[][], aligned: boolean): string[] {
  if (!aligned) return rows.map((r) => r.join("\t"));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join("  "));
}

/** `text` in ANSI colour `code` when `on`. */
export function paint(on: boolean, code: number, text: string): string {
  return on ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/** `n thing` or `n things`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * The "Examples:" block of a command's `--help` (for `addHelpText("after", …)`).
 *
 * @example
 * ```ts
 * examples("natsgate version", "natsgate version --json");
 * ```
 */
export function examples(...lines: string[]): string {
  return "\nExamples:\n" + lines.map((l) => `  $ ${l}`).join("\n");
}
