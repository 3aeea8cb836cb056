/** Wires a commander tree to a {@link CliContext}: output, env-var defaults, errors, usage line.
 * `main` calls {@link prepareTree} once per run; nothing here touches the process directly.
 * @module */

import type { Command, Option } from "@commander-js/extra-typings";
import type { CliContext } from "./_context.ts";

/** Any command of the tree. */
// deno-lint-ignore no-explicit-any
export type AnyCommand = Command<any[], any, any>;

/** What {@link prepareTree} learns during a run. */
export interface RunState {
  /** The command whose action runs (set before it starts). */
  active?: AnyCommand;
  /** The command commander reported a parse error for. */
  failed?: AnyCommand;
}

/**
 * Sets every command of the tree to write through `ctx`, read `NATSGATE_*` defaults from
 * `ctx.env`, throw instead of exiting, and prefix parse errors with `natsgate:`.
 *
 * @example
 * ```ts ignore
 * const state = prepareTree(program, ctx);
 * ```
 */
export function prepareTree(root: AnyCommand, ctx: CliContext): RunState {
  const state: RunState = {};
  const visit = (cmd: AnyCommand) => {
    cmd.exitOverride();
    cmd.configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
      getOutHasColors: () => ctx.color,
      getErrHasColors: () => ctx.tty.stderr && (ctx.env("NO_COLOR") ?? "") === "",
      outputError: (s, write) => {
        state.failed = cmd;
        write(`natsgate: ${s.replace(/^error: /, "")}`);
      },
    });
    _envFrom(cmd, ctx);
    for (const sub of cmd.commands) visit(sub as AnyCommand);
  };
  visit(root);
  root.hook("preAction", (_this, action) => {
    state.active = action as AnyCommand;
  });
  return state;
}

/** `natsgate caps grant` for the `grant` command. */
export function commandPath(cmd: AnyCommand): string {
  const names: string[] = [];
  for (let c: AnyCommand | null = cmd; c; c = c.parent as AnyCommand | null) {
    names.unshift(c.name());
  }
  return names.join(" ");
}

/**
 * Commander reads option env vars from `process.env`; this makes `cmd` read them from `ctx.env`
 * (same precedence: a flag on the command line wins, then the env var, then the default).
 */
function _envFrom(cmd: AnyCommand, ctx: CliContext): void {
  const target = cmd as unknown as {
    options: readonly Option[];
    _parseOptionsEnv: () => void;
    emit(event: string, value?: string): boolean;
  };
  target._parseOptionsEnv = () => {
    for (const option of target.options) {
      if (!option.envVar) continue;
      const value = ctx.env(option.envVar);
      if (value === undefined) continue;
      const key = option.attributeName();
      const source = cmd.getOptionValueSource(key);
      if (
        cmd.getOptionValue(key) !== undefined &&
        !["default", "config", "env"].includes(source ?? "")
      ) continue;
      if (option.required || option.optional) target.emit(`optionEnv:${option.name()}`, value);
      else target.emit(`optionEnv:${option.name()}`);
    }
  };
}
