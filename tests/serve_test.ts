/** The `natsgate serve` command as a real subprocess: flags, env vars, dev mode, signals.
 * The gateway prints its address in its log, so tests listen on port 0 and read it back.
 * @module */

import assert from "node:assert/strict";
import { NatsServer } from "../src/nats_server.ts";
import { TestClient } from "./_harness.ts";
import { mintToken } from "../src/token.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** A running `natsgate` subprocess with its output collected. */
class Proc {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  readonly done: Promise<Deno.CommandStatus>;

  constructor(args: string[], env: Record<string, string> = {}, cwd = ROOT) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, ...args],
      cwd,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (s: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) this[key] += chunk;
    };
    const out = collect(this.child.stdout, "stdout");
    const err = collect(this.child.stderr, "stderr");
    const child = this.child;
    this.done = (async () => {
      const status = await child.status;
      await Promise.all([out, err]);
      return status;
    })();
  }

  async waitFor(re: RegExp, ms = 15000): Promise<RegExpExecArray> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const m = re.exec(this.stdout + this.stderr);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out waiting for ${re}; output:\n${this.stdout}\n${this.stderr}`);
  }

  async wsUrl(path = "/ws"): Promise<string> {
    const m = await this.waitFor(/gateway listening .*addr=([\d.]+):(\d+)/);
    return `ws://127.0.0.1:${m[2]}${path}`;
  }

  async stop(): Promise<Deno.CommandStatus> {
    try {
      this.child.kill("SIGTERM");
    } catch {
      // already gone
    }
    return await this.done;
  }
}

async function run(args: string[], env: Record<string, string> = {}) {
  const p = new Proc(args, env);
  const status = await p.done;
  return { code: status.code, stdout: p.stdout, stderr: p.stderr };
}

Deno.test("serve: --help, --version", async () => {
  const help = await run(["serve", "--help"]);
  assert.equal(help.code, 0);
  for (
    const flag of [
      "--listen",
      "--ws-path",
      "--nats",
      "--jwt-secret",
      "--allowed-origins",
      "--max-frame-bytes",
      "--max-pending-bytes",
      "--log-format",
      "--dev",
    ]
  ) {
    assert.ok(help.stdout.includes(flag), `help mentions ${flag}`);
  }
  assert.match(help.stdout, /NATSGATE_JWT_SECRET/);
  const top = await run(["--help"]);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /serve/);
  const version = await run(["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+$/);
});

Deno.test("serve: refuses to start without a JWT key, and on bad flags", async () => {
  const r = await run(["serve", "--nats", "nats://127.0.0.1:1"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no JWT key/);
  assert.ok(!r.stderr.includes("    at "), "no stack trace");
  const bad = await run(["serve", "--listen", "nonsense", "--jwt-secret", "x"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid --listen/);
  const badInt = await run(["serve", "--max-subs", "lots"]);
  assert.notEqual(badInt.code, 0);
  assert.match(badInt.stderr, /max-subs/);
  const unknown = await run(["serve", "--frobnicate"]);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown option/);
});

Deno.test("serve: env vars configure it, flags win; SIGTERM drains, then 1001 and exit 0", async () => {
  const nats = await NatsServer.start();
  const secret = "env-secret-0123456789abcdef0123456789";
  const p = new Proc(
    ["serve", "--listen", "127.0.0.1:0", "--ws-path", "/flag", "--log-format", "json"],
    {
      NATSGATE_JWT_SECRET: secret,
      NATSGATE_NATS: nats.url,
      NATSGATE_WS_PATH: "/env",
      NATSGATE_DRAIN_TIMEOUT: "1s",
    },
  );
  try {
    const m = await p.waitFor(/"msg":"gateway listening".*?"addr":"127\.0\.0\.1:(\d+)"/);
    const base = `127.0.0.1:${m[1]}`;
    const token = await mintToken({ secret, user: "u" });
    const c = await TestClient.connect(`ws://${base}/flag`, { query: token });
    await c.next((e) => e.op === "cap_update");
    assert.equal(await fetch(`http://${base}/readyz`).then((r) => r.status), 200);
    p.child.kill("SIGTERM");
    await p.waitFor(/"msg":"draining"/);
    assert.equal(await fetch(`http://${base}/readyz`).then((r) => r.status), 503);
    await assert.rejects(TestClient.connect(`ws://${base}/flag`, { query: token }));
    assert.equal(c.ws.readyState, WebSocket.OPEN, "existing clients keep working while draining");
    assert.equal((await c.closed).code, 1001);
    const status = await p.done;
    assert.equal(status.code, 0);
    const lines = p.stderr.trim().split("\n");
    assert.ok(lines.every((l) => JSON.parse(l).level), "every log line is JSON");
    assert.ok(!p.stderr.includes(token), "the token is never logged");
  } finally {
    await p.stop();
    await nats.stop();
  }
});

Deno.test("serve --dev: embedded NATS, demo user, printed token; state kept across runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = new Proc(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", `${dir}/state`]);
    let token: string;
    try {
      const m = await p.waitFor(/token \(user demo, 24h\): (\S+)/, 30000);
      token = m[1];
      const url = await p.wsUrl();
      const c = await TestClient.connect(url, { query: token });
      const cu = await c.next((e) => e.op === "cap_update");
      assert.equal(cu.data.user, "demo");
      assert.deepEqual(cu.data.capabilities.subjects, ["demo.>"]);
      c.send({ op: "sub", target: "demo.hello", inbox: "s" });
      const sid = (await c.answer("s")).data.id;
      c.send({ op: "pub", target: "demo.hello", data: { hi: 1 } });
      await c.next((e) => e.op === "msg" && e.sid === sid);
      await c.close();
    } finally {
      assert.equal((await p.stop()).code, 0);
    }
    const secret = await Deno.readTextFile(`${dir}/state/jwt-secret`);
    assert.ok(secret.trim().length >= 32);
    assert.equal(
      (await Deno.stat(`${dir}/state/jwt-secret`)).mode! & 0o077,
      0,
      "secret is private",
    );
    // Second run: same secret, so the first token still works.
    const p2 = new Proc([
      "serve",
      "--dev",
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      `${dir}/state`,
    ]);
    try {
      const c = await TestClient.connect(await p2.wsUrl(), { query: token });
      assert.equal((await c.next((e) => e.op === "cap_update")).data.user, "demo");
      await c.close();
    } finally {
      assert.equal((await p2.stop()).code, 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
