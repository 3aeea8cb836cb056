/** The child processes of `deno task bench`, each driven by JSON lines over stdin/stdout: the
 * WebSocket clients (bench/_clients.ts) and the open-loop publisher (bench/_publisher.ts).
 * @module */

import { lines } from "./_proc.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** A child Deno process driven by JSON lines: one command line in, one answer line out. */
export class LineProc {
  readonly child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;

  constructor(args: string[]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    this.#lines = lines(this.child.stdout)[Symbol.asyncIterator]();
  }

  get pid(): number {
    return this.child.pid;
  }

  /** The next line the process writes (for an unsolicited `ready`). */
  // deno-lint-ignore no-explicit-any
  async next(): Promise<any> {
    const r = await this.#lines.next();
    if (r.done) throw new Error("child process ended");
    return JSON.parse(r.value);
  }

  // deno-lint-ignore no-explicit-any
  async cmd(c: Record<string, unknown>): Promise<any> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(c) + "\n"));
    return await this.next();
  }

  async close(): Promise<void> {
    await this.cmd({ op: "close" }).catch(() => {});
    await this.child.status;
  }
}

/** The client process (bench/_clients.ts). */
export class ClientProc extends LineProc {
  constructor() {
    super(["run", "-A", "--v8-flags=--max-old-space-size=8192", `${ROOT}bench/_clients.ts`]);
  }
}

/** The role revocation client process (bench/_role_clients.ts). */
export class RoleClientProc extends LineProc {
  constructor() {
    super(["run", "-A", "--v8-flags=--max-old-space-size=4096", `${ROOT}bench/_role_clients.ts`]);
  }
}

/** The open-loop publisher process (bench/_publisher.ts). */
export class PublisherProc extends LineProc {
  constructor(natsUrl: string) {
    super(["run", "-A", `${ROOT}bench/_publisher.ts`, natsUrl]);
  }
}
