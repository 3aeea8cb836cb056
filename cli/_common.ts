/** Helpers shared by the command groups: option parsing, errors with exit codes, output.
 * Every command prints one line on stderr and exits non-zero on failure.
 * @module */

import { InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { parseDuration } from "../src/auth/mint.ts";

/** An error that ends a command with a one-line message and an exit code. */
export class CliError extends Error {
  /** Process exit code. */
  readonly exitCode: number;
  /** Creates a CLI error. */
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
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

/** Parses a non-negative integer option. */
export function intArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError("expected a non-negative integer");
  }
  return n;
}

/** Parses a positive integer option. */
export function positiveIntArg(value: string): number {
  const n = intArg(value);
  if (n === 0) throw new InvalidArgumentError("expected a positive integer");
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

/** Whether stdout is a terminal. */
export function stdoutIsTty(): boolean {
  try {
    return Deno.stdout.isTerminal();
  } catch {
    return false;
  }
}
