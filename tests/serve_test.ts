/** The `natsgate serve` command as a real subprocess: flags, env vars, dev mode, signals.
 * The gateway prints its address in its log, so tests listen on port 0 and read it back.
 * @module */

import assert from "node:assert/strict";
import { NatsServer } from "../src/nats/launcher.ts";
import { NatsgateProcess as Proc, TestClient } from "./_harness.ts";
import { mintToken } from "../src/auth/mint.ts";

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
      "--no-console",
      "--dev",
    ]
  ) {
    assert.ok(help.stdout.includes(flag), `help mentions ${flag}`);
  }
  assert.match(help.stdout, /NATSGATE_JWT_SECRET/);
  // The README's flag table documents every flag `serve --help` lists.
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const flags = new Set(help.stdout.match(/--[a-z0-9-]+/g));
  flags.delete("--help");
  for (const flag of flags) {
    assert.ok(
      readme.includes(`| \`${flag}`) || readme.includes(`, \`${flag}`),
      `README documents ${flag}`,
    );
  }
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
  // A security flag from the environment: only true/1 turn it on, nonsense is refused.
  const env = await run(["serve", "--nats", "nats://127.0.0.1:1", "--jwt-secret", "x"], {
    NATSGATE_ALLOW_NO_EXP: "maybe",
  });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /invalid NATSGATE_ALLOW_NO_EXP/);
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
      NATSGATE_ALLOW_NO_EXP: "false",
    },
  );
  try {
    const m = await p.waitFor(/"msg":"gateway listening".*?"addr":"127\.0\.0\.1:(\d+)"/);
    const base = `127.0.0.1:${m[1]}`;
    const token = await mintToken({ secret, user: "u" });
    const noExp = await mintToken({ secret, user: "u", ttlSeconds: null });
    await assert.rejects(
      TestClient.connect(`ws://${base}/flag`, { query: noExp }),
      "tokens without exp are refused by default (NATSGATE_ALLOW_NO_EXP=false too)",
    );
    const c = await TestClient.connect(`ws://${base}/flag`, { query: token });
    await c.next((e) => e.op === "cap_update");
    assert.equal(await fetch(`http://${base}/readyz`).then((r) => r.status), 200);
    const page = await fetch(`http://${base}/`);
    assert.equal(page.status, 200, "the console page is served by default");
    assert.match(await page.text(), /<html/i);
    const sdk = await fetch(`http://${base}/client.js`);
    assert.equal(sdk.status, 200);
    assert.match(sdk.headers.get("content-type") ?? "", /javascript/);
    assert.match(await sdk.text(), /async function connect\(/);
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
    // NATSGATE_NATS exported for admin commands must not divert the dev gateway: it is ignored.
    const p = new Proc(
      ["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", `${dir}/state`],
      { NATSGATE_NATS: "nats://127.0.0.1:1" },
    );
    let token: string;
    try {
      const m = await p.waitFor(/token \(user demo, 24h\): (\S+)/, 30000);
      token = m[1];
      const url = await p.wsUrl();
      assert.match(p.stderr, /dev mode ignores NATSGATE_NATS/);
      // Admin commands find the embedded NATS through the record serve --dev wrote.
      const embedded = (await p.waitFor(/embedded nats-server started .*url=(\S+)/))[1];
      const record = JSON.parse(await Deno.readTextFile(`${dir}/state/nats.json`));
      assert.deepEqual(record.servers, [embedded.replace(/^"|"$/g, "")]);
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
    await assert.rejects(Deno.stat(`${dir}/state/nats.json`), "the record goes with the gateway");
    const secret = await Deno.readTextFile(`${dir}/state/jwt-secret`);
    assert.ok(secret.trim().length >= 32);
    assert.equal(
      (await Deno.stat(`${dir}/state/jwt-secret`)).mode! & 0o077,
      0,
      "secret is private",
    );
    // Second run: same secret, so the first token still works. --no-console: no page, SDK stays.
    // --allow-no-exp: a token without exp is accepted.
    const p2 = new Proc([
      "serve",
      "--dev",
      "--no-console",
      "--allow-no-exp",
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      `${dir}/state`,
    ]);
    try {
      const url = await p2.wsUrl();
      const c = await TestClient.connect(url, { query: token });
      assert.equal((await c.next((e) => e.op === "cap_update")).data.user, "demo");
      await c.close();
      const noExp = await mintToken({ secret: secret.trim(), user: "demo", ttlSeconds: null });
      const n = await TestClient.connect(url, { query: noExp });
      assert.equal((await n.next((e) => e.op === "cap_update")).data.user, "demo");
      await n.close();
      const http = url.replace(/^ws/, "http").replace(/\/ws$/, "");
      const page = await fetch(`${http}/`);
      await page.body?.cancel();
      assert.equal(page.status, 404, "--no-console: no page at /");
      const sdk = await fetch(`${http}/client.js`);
      await sdk.body?.cancel();
      assert.equal(sdk.status, 200, "--no-console keeps /client.js");
    } finally {
      assert.equal((await p2.stop()).code, 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
