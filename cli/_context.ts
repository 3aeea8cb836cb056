/** The context every command writes through: stdout, stderr, stdin, terminal flags, env, Ctrl-C.
 * `main(args, ctx)` binds one to the command tree; tests pass a captured one (tests/_cli.ts).
 * @module */

const _encoder = new TextEncoder();

/** Where a command writes: text or bytes, written completely before `write` returns. */
export interface CliWriter {
  /** Writes `data` as is (no newline added). */
  write(data: string | Uint8Array): void;
}

/** Which of the standard streams are terminals. */
export interface CliTty {
  /** stdin is a terminal (prompts are allowed). */
  stdin: boolean;
  /** stdout is a terminal (colours, aligned tables). */
  stdout: boolean;
  /** stderr is a terminal (progress counters). */
  stderr: boolean;
}

/** What a {@link CliContext} is built from; every field has a process default. */
export interface CliContextInit {
  /** Data goes here. */
  stdout?: CliWriter;
  /** Summaries, warnings, prompts and errors go here. */
  stderr?: CliWriter;
  /** Input of `-` arguments and answers to prompts. */
  stdin?: ReadableStream<Uint8Array>;
  /** Terminal flags. */
  tty?: Partial<CliTty>;
  /** Environment lookup (also used for the `NATSGATE_*` option defaults). */
  env?: (name: string) => string | undefined;
  /** Working directory relative paths resolve against (dev discovery). */
  cwd?: string;
  /** Registers a Ctrl-C handler; returns its remover. */
  onInterrupt?: (fn: () => void) => () => void;
  /** Terminal rows, for "more than a screenful" decisions. */
  rows?: number;
}

/**
 * The I/O of one CLI run. Commands never touch `Deno.stdout`, `console` or `Deno.env` directly, so
 * the same code runs as the real binary and in process under test.
 *
 * @example
 * ```ts
 * const ctx = CliContext.process();
 * ctx.print("data on stdout");
 * ctx.note("a summary on stderr");
 * ```
 */
export class CliContext {
  /** Data output. */
  readonly stdout: CliWriter;
  /** Diagnostics output. */
  readonly stderr: CliWriter;
  /** Terminal flags. */
  readonly tty: CliTty;
  /** Environment lookup. */
  readonly env: (name: string) => string | undefined;
  /** Working directory. */
  readonly cwd: string;
  /** Terminal rows. */
  readonly rows: number;
  readonly #stdin?: ReadableStream<Uint8Array>;
  #reader?: ReadableStreamDefaultReader<Uint8Array>;
  #buffered: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  readonly #onInterrupt: (fn: () => void) => () => void;

  /** Builds a context; missing fields come from the process. */
  constructor(init: CliContextInit = {}) {
    this.stdout = init.stdout ?? _fileWriter(Deno.stdout);
    this.stderr = init.stderr ?? _fileWriter(Deno.stderr);
    this.#stdin = init.stdin;
    this.tty = {
      stdin: init.tty?.stdin ?? _isTerminal(() => Deno.stdin),
      stdout: init.tty?.stdout ?? _isTerminal(() => Deno.stdout),
      stderr: init.tty?.stderr ?? _isTerminal(() => Deno.stderr),
    };
    this.env = init.env ?? _processEnv;
    this.cwd = init.cwd ?? _processCwd();
    this.rows = init.rows ?? _consoleRows();
    this.#onInterrupt = init.onInterrupt ?? _sigint;
  }

  /** The context of the real process. */
  static process(): CliContext {
    return new CliContext();
  }

  /** Whether to colour stdout: a terminal, and `NO_COLOR` unset or empty. */
  get color(): boolean {
    return this.tty.stdout && (this.env("NO_COLOR") ?? "") === "";
  }

  /** Writes `line` and a newline to stdout. */
  print(line: string): void {
    this.stdout.write(line + "\n");
  }

  /** Writes `line` and a newline to stderr. */
  note(line: string): void {
    this.stderr.write(line + "\n");
  }

  /** Registers a Ctrl-C (SIGINT) handler; returns its remover. */
  onInterrupt(fn: () => void): () => void {
    return this.#onInterrupt(fn);
  }

  /** Reads one line from stdin (without its newline); `null` at end of input. */
  async readLine(): Promise<string | null> {
    for (;;) {
      const nl = this.#buffered.indexOf(10);
      if (nl >= 0) {
        const line = this.#buffered.subarray(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        return new TextDecoder().decode(line).replace(/\r$/, "");
      }
      const chunk = await this.#read();
      if (chunk === null) {
        if (this.#buffered.length === 0) return null;
        const rest = new TextDecoder().decode(this.#buffered);
        this.#buffered = new Uint8Array(0);
        return rest;
      }
      this.#buffered = _concat(this.#buffered, chunk);
    }
  }

  /** Reads stdin to its end. */
  async readAll(): Promise<Uint8Array<ArrayBuffer>> {
    let all = this.#buffered;
    this.#buffered = new Uint8Array(0);
    for (let chunk = await this.#read(); chunk !== null; chunk = await this.#read()) {
      all = _concat(all, chunk);
    }
    return all;
  }

  /** Reads stdin to its end as text. */
  async readText(): Promise<string> {
    return new TextDecoder().decode(await this.readAll());
  }

  /** Asks `question` on stderr and reads the answer line (`null` at end of input). */
  async ask(question: string): Promise<string | null> {
    this.stderr.write(question + " ");
    return await this.readLine();
  }

  async #read(): Promise<Uint8Array | null> {
    this.#reader ??= (this.#stdin ?? Deno.stdin.readable).getReader();
    const { value, done } = await this.#reader.read();
    return done ? null : value;
  }

  /** Releases stdin (so the process can exit while stdin stays open). */
  close(): void {
    this.#reader?.releaseLock();
    this.#reader = undefined;
  }
}

/** The context bound to a command tree by `main`. */
const _bound = new WeakMap<object, CliContext>();

/** A commander command, as far as finding its context goes. */
export interface ContextHolder {
  /** The parent command. */
  readonly parent: ContextHolder | null;
}

/** Binds `ctx` to the command tree rooted at `root`; {@link contextOf} finds it. */
export function bindContext(root: ContextHolder, ctx: CliContext): void {
  _bound.set(root, ctx);
}

/**
 * The context of the run `cmd` belongs to (the process context when none was bound).
 *
 * @example
 * ```ts ignore
 * new Command("hello").action((_o, cmd) => contextOf(cmd).print("hi"));
 * ```
 */
export function contextOf(cmd: ContextHolder): CliContext {
  for (let c: ContextHolder | null = cmd; c; c = c.parent) {
    const ctx = _bound.get(c);
    if (ctx) return ctx;
  }
  return CliContext.process();
}

function _fileWriter(f: { writeSync(p: Uint8Array): number }): CliWriter {
  return {
    write(data) {
      const bytes = typeof data === "string" ? _encoder.encode(data) : data;
      let off = 0;
      while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
    },
  };
}

function _isTerminal(f: () => { isTerminal(): boolean }): boolean {
  try {
    return f().isTerminal();
  } catch {
    return false;
  }
}

function _processEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no env permission
  }
}

function _processCwd(): string {
  try {
    return Deno.cwd();
  } catch {
    return ".";
  }
}

function _consoleRows(): number {
  try {
    return Deno.consoleSize().rows;
  } catch {
    return 24;
  }
}

function _sigint(fn: () => void): () => void {
  Deno.addSignalListener("SIGINT", fn);
  return () => Deno.removeSignalListener("SIGINT", fn);
}

function _concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
