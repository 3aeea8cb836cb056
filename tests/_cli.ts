/** The in-process CLI runner of the integration tests: `main(args, ctx)` with captured stdout,
 * stderr and exit code, an injected environment, stdin text and a fake terminal for prompts.
 * @module */

import assert from "node:assert/strict";
import { main } from "../main.ts";
import { CliContext } from "../cli/_common.ts";

/** The result of a finished run. */
export interface CliRun {
  /** Exit code `main` returned. */
  code: number;
  /** Everything written to stdout. */
  stdout: string;
  /** Everything written to stderr. */
  stderr: string;
}

/** Options of {@link runCli} and {@link startCli}. */
export interface CliRunOptions {
  /** The whole environment the command sees (nothing is inherited from the test process). */
  env?: Record<string, string>;
  /** Pretend stdin, stdout and stderr are terminals (prompts allowed, colours, tables). */
  tty?: boolean;
  /** Text on stdin (answers to prompts, `-` arguments); stdin is empty without it. */
  input?: string;
  /** Directory relative paths (e.g. `.natsgate`) resolve against. */
  cwd?: string;
}

/**
 * A CLI run in progress: output so far, a Ctrl-C, and its end.
 *
 * @example
 * ```ts ignore
 * const tail = startCli(["sessions", "tail", "--json"], { env });
 * await tail.until((r) => r.stderr.includes("tailing "));
 * tail.interrupt();
 * assert.equal((await tail.done).code, 0);
 * ```
 */
export class CliProcess {
  /** stdout so far. */
  stdout = "";
  /** stderr so far. */
  stderr = "";
  /** Resolves with the result when `main` returns. */
  readonly done: Promise<CliRun>;
  #interrupts = new Set<() => void>();
  #waiters = new Set<() => void>();
  #finished = false;

  /** Starts `main(args)` in this process. */
  constructor(args: string[], opts: CliRunOptions = {}) {
    const env = opts.env ?? {};
    const dec = { out: new TextDecoder(), err: new TextDecoder() };
    const writer = (key: "stdout" | "stderr", d: TextDecoder) => ({
      write: (data: string | Uint8Array) => {
        this[key] += typeof data === "string" ? data : d.decode(data, { stream: true });
        for (const w of [...this.#waiters]) w();
      },
    });
    const input = new TextEncoder().encode(opts.input ?? "");
    const tty = opts.tty ?? false;
    const ctx = new CliContext({
      stdout: writer("stdout", dec.out),
      stderr: writer("stderr", dec.err),
      stdin: new ReadableStream({
        start(c) {
          if (input.length > 0) c.enqueue(input);
          c.close();
        },
      }),
      tty: { stdin: tty, stdout: tty, stderr: tty },
      env: (name) => Object.hasOwn(env, name) ? env[name] : undefined,
      cwd: opts.cwd,
      rows: 24,
      onInterrupt: (fn) => {
        this.#interrupts.add(fn);
        return () => this.#interrupts.delete(fn);
      },
    });
    this.done = main(args, ctx).then((code) => {
      this.#finished = true;
      for (const w of [...this.#waiters]) w();
      return { code, stdout: this.stdout, stderr: this.stderr };
    });
  }

  /** Delivers a Ctrl-C to the handlers the command registered. */
  interrupt(): void {
    for (const fn of [...this.#interrupts]) fn();
  }

  /** Waits (on each write, no polling) until `pred` holds; fails when the run ends first. */
  until(pred: (p: CliProcess) => boolean, what = "output"): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pred(this)) {
          this.#waiters.delete(check);
          resolve();
        } else if (this.#finished) {
          this.#waiters.delete(check);
          reject(new Error(`ended before ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`));
        }
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Non-empty stdout lines so far. */
  lines(): string[] {
    return this.stdout.split("\n").filter((l) => l.length > 0);
  }
}

/** Starts `natsgate <args>` in process; see {@link CliProcess}. */
export function startCli(args: string[], opts: CliRunOptions = {}): CliProcess {
  return new CliProcess(args, opts);
}

/**
 * Runs `natsgate <args>` in process to completion.
 *
 * @example
 * ```ts ignore
 * const r = await runCli(["token", "alice", "--jwt-secret", "s"]);
 * assert.equal(r.code, 0);
 * ```
 */
export function runCli(args: string[], opts: CliRunOptions = {}): Promise<CliRun> {
  return new CliProcess(args, opts).done;
}

/** Asserts a run succeeded; returns it. */
export function ok(r: CliRun): CliRun {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/**
 * Asserts a run failed with `code` and a `natsgate: …` message matching `re`, nothing on stdout;
 * exit 1 is one line, a usage error (2) is followed by the command's usage line.
 */
export function fails(r: CliRun, code: number, re: RegExp): void {
  const detail = `stdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.equal(r.code, code, `expected exit ${code}\n${detail}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.match(lines[0], /^natsgate: /, detail);
  assert.match(lines[0], re, detail);
  if (code === 2) assert.match(lines[1] ?? "", /^usage: natsgate /, detail);
  else assert.equal(lines.length, 1, detail);
}
