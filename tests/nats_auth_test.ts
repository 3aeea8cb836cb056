/** `natsgate serve` and `natsgate caps` against auth-enabled nats-servers: user/password, token,
 * nkey, creds (operator mode, JWTs made here) and TLS with a private CA; wrong credentials fail fast.
 * @module */

import assert from "node:assert/strict";
import { type NatsConnection, nkeys } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { NatsServer } from "../src/nats/launcher.ts";
import { connectNats, type NatsAccess } from "../src/nats/connect.ts";
import { mintToken } from "../src/auth/mint.ts";
import { userKey } from "../src/auth/user_key.ts";
import { NatsgateProcess, TestClient, waitFor } from "./_harness.ts";
import { makeCerts, writeCerts } from "./_certs.ts";

const SECRET = "nats-auth-secret-0123456789abcdef0123456789";
const CAPS = { subjects: ["t.>"], publish: ["t.>"] };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A `natsgate` subprocess, killed if it outlives `limitMs`. */
class Proc extends NatsgateProcess {
  constructor(args: string[], env: Record<string, string> = {}, limitMs = 20_000) {
    super(args, env, { limitMs });
  }

  /** The gateway's `host:port`, read from its "gateway listening" log line. */
  async listening(ms = 15_000): Promise<string> {
    return (await this.waitFor(/gateway listening .*addr=([\d.]+:\d+)/, ms))[1];
  }
}

/** Runs `natsgate <args>` to completion. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Proc(args, env).result();
}

function ok(r: Run): Run {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** A failure: exit 1 and one `natsgate: …` line on stderr matching `re`, no stack trace. */
function fails(r: Run, re: RegExp, secret?: string): void {
  assert.equal(r.code, 1, `expected exit 1\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one stderr line expected: ${r.stderr}`);
  assert.match(lines[0], /^natsgate: /);
  assert.match(lines[0], re);
  if (secret) assert.ok(!r.stderr.includes(secret), "the credential is not printed");
}

/** An auth-enabled nats-server, a test connection with the same credentials, and a temp dir. */
class Fixture {
  constructor(
    readonly nats: NatsServer,
    readonly nc: NatsConnection,
    readonly dir: string,
  ) {}

  /** Starts nats-server with `config`; connects with `access` and creates bucket `auth`. */
  static async start(
    dir: string,
    config: string,
    access: Omit<NatsAccess, "servers">,
  ): Promise<Fixture> {
    const nats = await NatsServer.start({ extraConfig: config });
    try {
      const nc = await connectNats({ servers: [nats.url], ...access });
      await new Kvm(nc).create("auth", { history: 10 });
      return new Fixture(nats, nc, dir);
    } catch (err) {
      await nats.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  /** Serves with `flags` (and `env`) against this server; waits for `/readyz` 200. */
  async serve(flags: string[], env: Record<string, string> = {}): Promise<[Proc, string]> {
    const p = new Proc(
      ["serve", "--listen", "127.0.0.1:0", "--nats", this.nats.url, ...flags],
      { NATSGATE_JWT_SECRET: SECRET, ...env },
    );
    try {
      const base = await p.listening();
      const r = await fetch(`http://${base}/readyz`);
      assert.equal(r.status, 200, await r.text());
      return [p, base];
    } catch (err) {
      await p.stop();
      throw err;
    }
  }

  /** Runs serve with `flags` expecting it to fail at once. */
  serveFails(flags: string[], env: Record<string, string> = {}): Promise<Run> {
    return cli(["serve", "--listen", "127.0.0.1:0", "--nats", this.nats.url, ...flags], {
      NATSGATE_JWT_SECRET: SECRET,
      ...env,
    });
  }

  /** `natsgate caps <args>` against this server. */
  caps(args: string[], env: Record<string, string> = {}): Promise<Run> {
    return cli(["caps", ...args], { NATSGATE_NATS: this.nats.url, ...env });
  }

  async stop(): Promise<void> {
    await this.nc.close().catch(() => {});
    await this.nats.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Sets user `u`'s capabilities with the `caps` CLI and the given NATS flags; checks them back. */
async function setCapsWithCli(f: Fixture, flags: string[], env: Record<string, string> = {}) {
  const set = ok(await f.caps(["set", "u", "--json", JSON.stringify(CAPS), ...flags], env));
  assert.match(set.stderr, /set capabilities of u/);
  const e = await (await new Kvm(f.nc).open("auth")).get(userKey("u"));
  assert.deepEqual(e?.json(), CAPS);
  const got = ok(await f.caps(["get", "u", "--json", ...flags], env));
  assert.deepEqual(JSON.parse(got.stdout), CAPS);
}

/**
 * A WebSocket client of the gateway at `base` authenticates as `u`, publishes and receives its
 * message back through NATS, plus one published by `nc` (the test's own connection) when given.
 */
async function roundTrip(base: string, nc?: NatsConnection): Promise<void> {
  const token = await mintToken({ secret: SECRET, user: "u" });
  const c = await TestClient.connect(`ws://${base}/ws`, { query: token });
  try {
    const cu = await c.next((e) => e.op === "cap_update", 5000, "cap_update");
    assert.equal(cu.data.user, "u");
    assert.deepEqual(cu.data.capabilities.subjects, CAPS.subjects);
    const sid = await c.sub("t.x");
    c.send({ op: "pub", target: "t.x", data: { hi: 1 } });
    const [m] = await c.waitMsgs(sid, 1);
    assert.deepEqual(m?.data?.payload, { hi: 1 });
    if (nc) {
      nc.publish("t.x", JSON.stringify({ from: "nats" }));
      const [, n] = await c.waitMsgs(sid, 2);
      assert.deepEqual(n?.data?.payload, { from: "nats" });
    }
  } finally {
    await c.close();
  }
}

function tempDir(): Promise<string> {
  return Deno.makeTempDir({ prefix: "natsgate-nats-auth-" });
}

// ---------------------------------------------------------------------------------------------
// NATS JWTs (operator mode), signed with nkeys from @nats-io/transport-node
// ---------------------------------------------------------------------------------------------

function b64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** A NATS JWT (v2) about `subject`, with `nats` claims (type, limits…), signed by `issuer`. */
function natsJwt(
  issuer: nkeys.KeyPair,
  subject: string,
  name: string,
  nats: Record<string, unknown>,
): string {
  const enc = new TextEncoder();
  const header = b64url(enc.encode(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" })));
  const jti = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16))
    .join("").toUpperCase();
  const claims = {
    jti,
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  const body = `${header}.${b64url(enc.encode(JSON.stringify(claims)))}`;
  return `${body}.${b64url(issuer.sign(enc.encode(body)))}`;
}

const UNLIMITED = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

/** An account JWT; JetStream is enabled unless `system` (nats-server forbids it there). */
function accountJwt(operator: nkeys.KeyPair, account: nkeys.KeyPair, name: string): string {
  const system = name === "SYS";
  const { mem_storage: _m, disk_storage: _d, streams: _s, consumer: _c, ...core } = UNLIMITED;
  return natsJwt(operator, account.getPublicKey(), name, {
    type: "account",
    limits: system ? core : UNLIMITED,
    default_permissions: { pub: {}, sub: {} },
  });
}

/** A `.creds` file's text for a user of `account`. */
function userCreds(account: nkeys.KeyPair, user: nkeys.KeyPair): string {
  const jwt = natsJwt(account, user.getPublicKey(), "gw", {
    type: "user",
    pub: {},
    sub: {},
    subs: -1,
    data: -1,
    payload: -1,
  });
  const seed = new TextDecoder().decode(user.getSeed());
  return `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
    `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
}

// ---------------------------------------------------------------------------------------------
// TLS certificates
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------------------------

Deno.test("nats auth: --nats-user/--nats-pass and their env vars; a wrong password exits 1", async () => {
  await using f = await Fixture.start(
    await tempDir(),
    `authorization { users: [{ user: "gw", password: "s3cret-pw" }] }`,
    { user: "gw", pass: "s3cret-pw" },
  );
  const flags = ["--nats-user", "gw", "--nats-pass", "s3cret-pw"];
  await setCapsWithCli(f, flags);
  {
    const [p, base] = await f.serve(flags);
    await using _ = p;
    await roundTrip(base, f.nc);
  }
  {
    const [p, base] = await f.serve([], {
      NATSGATE_NATS_USER: "gw",
      NATSGATE_NATS_PASS: "s3cret-pw",
    });
    await using _ = p;
    await roundTrip(base, f.nc);
  }
  const [wrong, wrongEnv, none, caps] = await Promise.all([
    f.serveFails(["--nats-user", "gw", "--nats-pass", "nope-pw"]),
    // The flag wins over the env var.
    f.serveFails(["--nats-pass", "nope-pw"], {
      NATSGATE_NATS_USER: "gw",
      NATSGATE_NATS_PASS: "s3cret-pw",
    }),
    f.serveFails([]),
    f.caps(["get", "u", "--nats-user", "gw", "--nats-pass", "nope-pw"]),
  ]);
  // Admin commands also name where the URL came from (here: NATSGATE_NATS).
  const re =
    /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+(?: \(from NATSGATE_NATS\))?: Authorization Violation$/;
  fails(wrong, re, "nope-pw");
  fails(wrongEnv, re, "nope-pw");
  fails(none, re);
  fails(caps, re, "nope-pw");
});

Deno.test("nats auth: --nats-token and NATSGATE_NATS_TOKEN; a wrong token exits 1", async () => {
  await using f = await Fixture.start(
    await tempDir(),
    `authorization { token: "tok-0123456789" }`,
    { token: "tok-0123456789" },
  );
  await setCapsWithCli(f, [], { NATSGATE_NATS_TOKEN: "tok-0123456789" });
  {
    const [p, base] = await f.serve(["--nats-token", "tok-0123456789"]);
    await using _ = p;
    await roundTrip(base, f.nc);
  }
  const [wrong, wrongEnv] = await Promise.all([
    f.serveFails(["--nats-token", "tok-wrong"]),
    f.serveFails([], { NATSGATE_NATS_TOKEN: "tok-wrong" }),
  ]);
  fails(wrong, /: Authorization Violation$/, "tok-wrong");
  fails(wrongEnv, /: Authorization Violation$/, "tok-wrong");
});

Deno.test("nats auth: --nats-nkey seed file; an unknown nkey or a missing file exits 1", async () => {
  const dir = await tempDir();
  const user = nkeys.createUser();
  const seedFile = `${dir}/gw.nk`;
  await Deno.writeTextFile(seedFile, new TextDecoder().decode(user.getSeed()) + "\n");
  const other = `${dir}/other.nk`;
  await Deno.writeTextFile(other, new TextDecoder().decode(nkeys.createUser().getSeed()));
  await using f = await Fixture.start(
    dir,
    `authorization { users: [{ nkey: ${JSON.stringify(user.getPublicKey())} }] }`,
    { nkeySeedFile: seedFile },
  );
  await setCapsWithCli(f, ["--nats-nkey", seedFile]);
  {
    const [p, base] = await f.serve(["--nats-nkey", seedFile]);
    await using _ = p;
    await roundTrip(base, f.nc);
  }
  const [wrong, missing] = await Promise.all([
    f.serveFails(["--nats-nkey", other]),
    f.serveFails(["--nats-nkey", `${dir}/missing.nk`]),
  ]);
  fails(wrong, /: Authorization Violation$/);
  fails(missing, /cannot connect to NATS at .*: .*missing\.nk/);
});

Deno.test("nats auth: --nats-creds in operator mode; a user of an unknown account exits 1", async () => {
  const dir = await tempDir();
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const sys = nkeys.createAccount();
  const opJwt = natsJwt(operator, operator.getPublicKey(), "op", { type: "operator" });
  await Deno.writeTextFile(`${dir}/op.jwt`, opJwt);
  const creds = `${dir}/gw.creds`;
  await Deno.writeTextFile(creds, userCreds(account, nkeys.createUser()));
  const stranger = `${dir}/stranger.creds`;
  await Deno.writeTextFile(stranger, userCreds(nkeys.createAccount(), nkeys.createUser()));
  const config = [
    `operator: ${JSON.stringify(`${dir}/op.jwt`)}`,
    `system_account: ${sys.getPublicKey()}`,
    "resolver: MEMORY",
    "resolver_preload: {",
    `  ${account.getPublicKey()}: ${JSON.stringify(accountJwt(operator, account, "A"))}`,
    `  ${sys.getPublicKey()}: ${JSON.stringify(accountJwt(operator, sys, "SYS"))}`,
    "}",
  ].join("\n");
  await using f = await Fixture.start(dir, config, { credsFile: creds });
  await setCapsWithCli(f, ["--nats-creds", creds]);
  {
    const [p, base] = await f.serve([], { NATSGATE_NATS_CREDS: creds });
    await using _ = p;
    await roundTrip(base, f.nc);
  }
  const [wrong, caps] = await Promise.all([
    f.serveFails(["--nats-creds", stranger]),
    f.caps(["get", "u", "--nats-creds", stranger]),
  ]);
  fails(wrong, /: Authorization Violation$/);
  fails(caps, /: Authorization Violation$/);
});

Deno.test("nats auth: --nats-tls-ca with a private CA; without it or with another CA exits 1", async () => {
  const dir = await tempDir();
  const nats = await writeCerts(dir, "nats", await makeCerts("nats test CA"));
  const other = await writeCerts(dir, "other", await makeCerts("other test CA"));
  const ca = nats.ca;
  await using f = await Fixture.start(
    dir,
    `tls { cert_file: ${JSON.stringify(nats.cert)}, key_file: ${JSON.stringify(nats.key)} }`,
    { tlsCaFile: ca },
  );
  // nats-server announces tls:// URLs; nats:// works as well (the server asks for TLS).
  assert.match(f.nats.url, /^tls:\/\//);
  await setCapsWithCli(f, ["--nats-tls-ca", ca], {
    NATSGATE_NATS: f.nats.url.replace(/^tls:/, "nats:"),
  });
  {
    const [p, base] = await f.serve(["--nats-tls-ca", ca]);
    await using _ = p;
    await roundTrip(base, f.nc);
  }
  const [noCa, otherCa] = await Promise.all([
    f.serveFails([]),
    f.serveFails(["--nats-tls-ca", other.ca]),
  ]);
  fails(noCa, /cannot connect to NATS at tls:\/\/127\.0\.0\.1:\d+: /);
  fails(otherCa, /cannot connect to NATS at tls:\/\/127\.0\.0\.1:\d+: /);
});

Deno.test("nats auth: credentials rejected on reconnect: serve keeps retrying, then recovers", async () => {
  const dir = await tempDir();
  const authConf = `${dir}/auth.conf`;
  const users = (pass: string) =>
    Deno.writeTextFile(
      authConf,
      `authorization { users: [{ user: "gw", password: "${pass}" }] }\n`,
    );
  await users("pw-1");
  // nats-server resolves includes against its config's directory, a sibling temp dir of ours.
  const include = `include ${JSON.stringify(`../${dir.split("/").pop()}/auth.conf`)}`;
  await using f = await Fixture.start(dir, include, {
    user: "gw",
    pass: "pw-1",
  });
  const flags = ["--nats-user", "gw", "--nats-pass", "pw-1"];
  await setCapsWithCli(f, flags);
  const [p, base] = await f.serve(flags);
  await using _ = p;
  await roundTrip(base, f.nc);

  // The server now wants another password: every reconnect is refused.
  let exited = false;
  p.done.then(() => exited = true);
  await users("pw-2");
  const before = p.stderr.length;
  await f.nats.restart();
  const refusals = () => p.stderr.slice(before).match(/NATS disconnected/g)?.length ?? 0;
  await waitFor(() => refusals() >= 4 || exited, 10_000, "repeated reconnect attempts");
  assert.ok(!exited, `serve keeps running:\n${p.stderr}`);
  assert.match(await Deno.readTextFile(f.nats.logFile), /authentication error - User "gw"/);

  // Valid again: the gateway reconnects by itself and serves clients.
  await users("pw-1");
  const mark = p.stderr.length;
  await f.nats.restart();
  await waitFor(() => /NATS reconnected/.test(p.stderr.slice(mark)), 10_000, "reconnect");
  await roundTrip(base);
  const r = await p.stop();
  assert.equal(r.code, 0, p.stderr);
  assert.ok(!/Uncaught|\n\s+at /.test(p.stderr), `no crash:\n${p.stderr}`);
});
