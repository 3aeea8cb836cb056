/** TEMPORARY stand-in for cli/_common.ts's context helpers (cli-a lands them): same names and
 * signatures, process I/O only. Removed once `contextOf` & co. are on main.
 * @module */

import { CliError } from "../_common.ts";

/** The subset of CliContext the caps commands use. */
export interface Ctx {
  tty: { stdin: boolean; stdout: boolean; stderr: boolean };
  color: boolean;
  env(name: string): string | undefined;
  print(line: string): void;
  note(line: string): void;
  readText(): Promise<string>;
  ask(question: string): Promise<string | null>;
}

function _term(f: () => { isTerminal(): boolean }): boolean {
  try {
    return f().isTerminal();
  } catch {
    return false;
  }
}

/** The process context. */
export function contextOf(_cmd: unknown): Ctx {
  const env = (n: string) => {
    try {
      return Deno.env.get(n);
    } catch {
      return undefined;
    }
  };
  const tty = {
    stdin: _term(() => Deno.stdin),
    stdout: _term(() => Deno.stdout),
    stderr: _term(() => Deno.stderr),
  };
  return {
    tty,
    color: tty.stdout && (env("NO_COLOR") ?? "") === "",
    env,
    print: (l) => console.log(l),
    note: (l) => console.error(l),
    readText: () => new Response(Deno.stdin.readable).text(),
    ask: (q) => Promise.resolve(prompt(q)),
  };
}

/** Ask on a TTY, `--yes` skips, refuse without a TTY. */
export async function confirmDestructive(
  ctx: Ctx,
  question: string,
  opts: { yes?: boolean; action: string },
): Promise<void> {
  if (opts.yes) return;
  if (!ctx.tty.stdin) {
    throw new CliError(
      `refusing to ${opts.action} without confirmation: pass --yes (stdin is not a terminal)`,
    );
  }
  const answer = await ctx.ask(`${question} [y/N]`);
  if (!/^\s*y(es)?\s*$/i.test(answer ?? "")) throw new CliError("aborted; nothing done");
}

/** Aligned columns on a terminal, tab-separated when piped. */
export function formatTable(rows: string[][], aligned: boolean): string[] {
  if (!aligned) return rows.map((r) => r.join("\t"));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join("  "));
}

/** ANSI colour when `on`. */
export function paint(on: boolean, code: number, text: string): string {
  return on ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/** `n thing(s)`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The Examples block of `--help`. */
export function examples(...lines: string[]): string {
  return "\nExamples:\n" + lines.map((l) => `  $ ${l}`).join("\n");
}
