/** `natsgate token` as a real subprocess: the minted JWT is accepted by a real gateway,
 * carries the requested claims, and warns unless it uses the dev secret.
 * @module */

import assert from "node:assert/strict";
import { decodeJwt, jwtVerify } from "jose";
import { Stack, TEST_SECRET } from "./_harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `natsgate <args>` to completion (stdin closed, not a terminal). */
async function cli(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}main.ts`, ...args],
    cwd: opts.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function ok(r: Run): Run {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

const key = (s: string) => new TextEncoder().encode(s);

Deno.test("token: a real gateway accepts the minted token", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("alice", { subjects: ["a.>"] });
  const r = ok(await cli(["token", "alice", "--jwt-secret", TEST_SECRET]));
  const token = r.stdout.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.match(r.stderr, /^warning: .*alice/m, "a real secret warns");
  const c = await stack.rawClient({ query: token });
  const update = await c.next((e) => e.op === "cap_update", 5000, "cap_update");
  assert.deepEqual(update.data.capabilities, { subjects: ["a.>"] });
  assert.equal(stack.gateway.sessions("alice").length, 1);
});

Deno.test("token: claims follow --ttl, --jwt-issuer, --jwt-audience and env", async () => {
  const r = ok(
    await cli(
      ["token", "bob", "--ttl", "15m", "--jwt-issuer", "me", "--jwt-audience", "you", "--json"],
      { env: { NATSGATE_JWT_SECRET: TEST_SECRET } },
    ),
  );
  const out = JSON.parse(r.stdout);
  const { payload } = await jwtVerify(out.token, key(TEST_SECRET), {
    issuer: "me",
    audience: "you",
  });
  assert.equal(payload.sub, "bob");
  assert.equal(out.user, "bob");
  assert.equal(payload.exp! - payload.iat!, 15 * 60);
  assert.equal(Date.parse(out.expires_at), payload.exp! * 1000);
});

Deno.test("token: --dev reads ./.natsgate/jwt-secret and does not warn", async () => {
  const dir = await Deno.makeTempDir({ prefix: "natsgate-token-test-" });
  try {
    const missing = await cli(["token", "carol", "--dev"], { cwd: dir });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^natsgate: no dev secret at \.natsgate\/jwt-secret/);
    await Deno.mkdir(`${dir}/.natsgate`);
    const secret = "dev-secret-".padEnd(64, "x");
    await Deno.writeTextFile(`${dir}/.natsgate/jwt-secret`, secret + "\n");
    const r = ok(await cli(["token", "carol", "--dev"], { cwd: dir }));
    assert.equal(r.stderr, "", "no warning for the dev secret");
    const { payload } = await jwtVerify(r.stdout.trim(), key(secret));
    assert.equal(payload.sub, "carol");
    assert.equal(payload.exp! - payload.iat!, 3600, "default ttl 1h");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("token: bad input fails with one line", async () => {
  const none = await cli(["token", "dan"], { env: { NATSGATE_JWT_SECRET: "" } });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^natsgate: no secret/);
  const ttl = await cli(["token", "dan", "--ttl", "soon", "--jwt-secret", TEST_SECRET]);
  assert.notEqual(ttl.code, 0);
  assert.match(ttl.stderr, /invalid duration/);
  assert.equal(ttl.stdout, "");
  const r = ok(await cli(["token", "x.y *", "--jwt-secret", TEST_SECRET]));
  assert.equal(decodeJwt(r.stdout.trim()).sub, "x.y *", "the user id is data, passed as is");
});
