/** `natsgate token` in process (tests/_cli.ts), and once as the real binary: the minted JWT is
 * accepted by a real gateway, carries the requested claims, and warns unless it uses the dev secret.
 * @module */

import assert from "node:assert/strict";
import { decodeJwt, jwtVerify } from "jose";
import { NatsgateProcess, Stack, TEST_SECRET } from "./_harness.ts";
import { fails, ok, runCli } from "./_cli.ts";

/** In process, with the environment given (nothing inherited). */
function cli(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}) {
  return runCli(args, opts);
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
    fails(missing, 1, /^natsgate: no dev secret at \.natsgate\/jwt-secret/);
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
  fails(await cli(["token", "dan"], { env: { NATSGATE_JWT_SECRET: "" } }), 2, /no secret/);
  const ttl = await cli(["token", "dan", "--ttl", "soon", "--jwt-secret", TEST_SECRET]);
  fails(ttl, 2, /invalid duration/);
  assert.equal(ttl.stdout, "");
  fails(await cli(["token", "dan", "--ttl", "0", "--jwt-secret", TEST_SECRET]), 2, /--ttl/);
  fails(
    await cli(["token", "dan", "--dev", "--jwt-secret", "x"]),
    2,
    /cannot be used with .*--dev/,
  );
  fails(
    await cli(["token", "dan", "--dev"], { env: { NATSGATE_JWT_SECRET: "x" } }),
    2,
    /NATSGATE_JWT_SECRET/,
  );
  const r = ok(await cli(["token", "x.y *", "--jwt-secret", TEST_SECRET]));
  assert.equal(decodeJwt(r.stdout.trim()).sub, "x.y *", "the user id is data, passed as is");
});

Deno.test("token and version: the real binary (deno run main.ts) end to end", async () => {
  const r = await NatsgateProcess.run(["token", "erin", "--json"], {
    NATSGATE_JWT_SECRET: TEST_SECRET,
  });
  assert.equal(r.code, 0, r.stderr);
  const { payload } = await jwtVerify(JSON.parse(r.stdout).token, key(TEST_SECRET));
  assert.equal(payload.sub, "erin");
  assert.match(r.stderr, /^warning: /);
  const usage = await NatsgateProcess.run(["token"]);
  assert.equal(usage.code, 2, "the process exit code is main's");
  assert.match(usage.stderr, /^natsgate: missing required argument 'user'\nusage: natsgate token /);
});
