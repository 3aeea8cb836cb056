/** Tests of token verification, credential extraction and the Origin rule.
 * Tokens are real HS256 JWTs signed with jose.
 * @module */

import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { createTokenVerifier, originAllowed, readCookie, requestToken } from "./verify.ts";
import { GatewayError } from "../protocol/errors.ts";
import { mintToken } from "./mint.ts";

const SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret";
const key = new TextEncoder().encode(SECRET);

async function rejects(p: Promise<unknown>, name: string) {
  await assert.rejects(p, (e) => e instanceof GatewayError && e.code === "unauthorized", name);
}

Deno.test("verifier: accepts a valid token, returns user and exp", async () => {
  const v = await createTokenVerifier({ secret: SECRET });
  const t = await mintToken({ secret: SECRET, user: "alice", ttlSeconds: 60 });
  const got = await v(t);
  assert.equal(got.user, "alice");
  assert.ok(got.exp !== null && got.exp > Date.now() / 1000);
});

Deno.test("verifier: a token without exp is refused unless requireExp is false", async () => {
  const noExp = await mintToken({ secret: SECRET, user: "bob", ttlSeconds: null });
  const strict = await createTokenVerifier({ secret: SECRET });
  await assert.rejects(
    strict(noExp),
    (e) =>
      e instanceof GatewayError && e.code === "unauthorized" && e.message === "token has no exp",
  );
  const lax = await createTokenVerifier({ secret: SECRET, requireExp: false });
  const v = await lax(noExp);
  assert.deepEqual({ user: v.user, exp: v.exp }, { user: "bob", exp: null });
  assert.equal(v.claims.sub, "bob", "the claims come along");
  // The other checks still apply to exp-less tokens.
  await rejects(lax(noExp.slice(0, -3) + "AAA"), "bad signature, no exp");
  const withExp = await lax(await mintToken({ secret: SECRET, user: "bob", ttlSeconds: 60 }));
  assert.ok(withExp.exp !== null && withExp.exp > Date.now() / 1000);
});

Deno.test("verifier: refuses bad signatures, algorithms, claims", async () => {
  const v = await createTokenVerifier({ secret: SECRET, issuer: "me", audience: "gw" });
  const good = () =>
    new SignJWT({}).setSubject("alice").setIssuer("me").setAudience("gw").setExpirationTime("1h");
  assert.equal(
    (await v(await good().setProtectedHeader({ alg: "HS256" }).sign(key))).user,
    "alice",
  );
  const hdr = (o: object) =>
    btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  const none = `${hdr({ alg: "none" })}.${hdr({ sub: "alice", iss: "me", aud: "gw" })}.`;
  await rejects(v(none), "alg none");
  await rejects(
    v(await good().setProtectedHeader({ alg: "HS512" }).sign(new Uint8Array(64).fill(1))),
    "HS512",
  );
  await rejects(
    v(
      await good().setProtectedHeader({ alg: "HS256" }).sign(
        new TextEncoder().encode("other-secret-other-secret-00"),
      ),
    ),
    "wrong key",
  );
  await rejects(
    v(
      await new SignJWT({}).setSubject("a").setIssuer("you").setAudience("gw")
        .setExpirationTime("1h").setProtectedHeader({ alg: "HS256" }).sign(key),
    ),
    "wrong iss",
  );
  await rejects(
    v(
      await new SignJWT({}).setSubject("a").setIssuer("me").setAudience("x")
        .setExpirationTime("1h").setProtectedHeader({ alg: "HS256" }).sign(key),
    ),
    "wrong aud",
  );
  await rejects(
    v(
      await good().setExpirationTime(Math.floor(Date.now() / 1000) - 10).setProtectedHeader({
        alg: "HS256",
      }).sign(key),
    ),
    "expired",
  );
  await rejects(
    v(await good().setNotBefore("1h").setProtectedHeader({ alg: "HS256" }).sign(key)),
    "nbf in the future",
  );
  await rejects(
    v(
      await new SignJWT({}).setIssuer("me").setAudience("gw").setExpirationTime("1h")
        .setProtectedHeader({ alg: "HS256" }).sign(key),
    ),
    "no sub",
  );
  await rejects(
    v(
      await new SignJWT({ sub: 5 } as unknown as Record<string, unknown>).setIssuer("me")
        .setAudience("gw").setExpirationTime("1h").setProtectedHeader({ alg: "HS256" }).sign(key),
    ),
    "numeric sub",
  );
  await rejects(v(""), "empty");
  await rejects(v("a.b.c"), "garbage");
  await rejects(v("x".repeat(10_000)), "huge");
});

Deno.test("requestToken: header, then cookie, then query", () => {
  const mk = (h: Record<string, string>, q = "") => {
    const url = new URL(`http://gw/ws${q}`);
    return requestToken(new Request(url, { headers: h }), url, "natsgate_token");
  };
  assert.equal(mk({ authorization: "Bearer H", cookie: "natsgate_token=C" }, "?token=Q"), "H");
  assert.equal(mk({ cookie: "a=1; natsgate_token=C" }, "?token=Q"), "C");
  assert.equal(mk({}, "?token=Q"), "Q");
  assert.equal(mk({ authorization: "Basic abc" }, "?token=Q"), "Q");
  assert.equal(mk({}), undefined);
  assert.equal(readCookie("x=1; y = 2 ; z=%41", "z"), "A");
  assert.equal(readCookie("x=1", "y"), undefined);
});

Deno.test("originAllowed: list, star, same-origin default, absent Origin", () => {
  const cases: Array<[string | null, string[], string | null, boolean]> = [
    [null, [], "gw:8080", true],
    ["https://app.example", ["https://app.example"], "gw", true],
    ["https://evil.example", ["https://app.example"], "gw", false],
    ["https://evil.example", ["*"], "gw", true],
    ["http://gw:8080", [], "gw:8080", true],
    ["http://evil:8080", [], "gw:8080", false],
    ["null", [], "gw:8080", false],
    ["not a url", [], "gw", false],
  ];
  for (const [origin, allowed, host, want] of cases) {
    assert.equal(originAllowed(origin, allowed, host), want, `${origin} vs ${allowed}`);
  }
});

Deno.test("verifier: RS256 public key; HS256 token signed with the public key is refused", async () => {
  const { generateKeyPair, exportSPKI } = await import("jose");
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const pem = await exportSPKI(publicKey);
  const v = await createTokenVerifier({ publicKeyPem: pem });
  const t = await new SignJWT({}).setSubject("carol").setExpirationTime("1h")
    .setProtectedHeader({ alg: "RS256" }).sign(privateKey);
  assert.equal((await v(t)).user, "carol");
  // Algorithm confusion: an attacker signs HS256 with the PEM text as the "secret".
  const forged = await new SignJWT({}).setSubject("carol").setExpirationTime("1h")
    .setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(pem));
  await rejects(v(forged), "HS256 with public key bytes");
  const other = await generateKeyPair("ES256");
  const es = await new SignJWT({}).setSubject("carol").setExpirationTime("1h")
    .setProtectedHeader({ alg: "ES256" }).sign(other.privateKey);
  await rejects(v(es), "ES256 token against an RSA key");
  await assert.rejects(createTokenVerifier({ publicKeyPem: "not a key" }));
  await assert.rejects(createTokenVerifier({}), /no JWT key/);
});

Deno.test("verifier: JWKS endpoint, keys picked by kid, refetched for a new kid", async () => {
  const { generateKeyPair, exportJWK } = await import("jose");
  const k1 = await generateKeyPair("ES256", { extractable: true });
  const k2 = await generateKeyPair("EdDSA", { extractable: true });
  const keys = [{ ...(await exportJWK(k1.publicKey)), kid: "k1", alg: "ES256" }];
  let fetches = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    fetches++;
    return Response.json({ keys });
  });
  try {
    const v = await createTokenVerifier({
      jwksUrl: `http://127.0.0.1:${server.addr.port}/jwks`,
      jwksCooldownMs: 0,
    });
    const t1 = await new SignJWT({}).setSubject("dave").setExpirationTime("1h").setProtectedHeader({
      alg: "ES256",
      kid: "k1",
    })
      .sign(k1.privateKey);
    assert.equal((await v(t1)).user, "dave");
    assert.equal((await v(t1)).user, "dave");
    assert.equal(fetches, 1, "cached");
    keys.push({ ...(await exportJWK(k2.publicKey)), kid: "k2", alg: "EdDSA" });
    const t2 = await new SignJWT({}).setSubject("erin").setExpirationTime("1h").setProtectedHeader({
      alg: "EdDSA",
      kid: "k2",
    })
      .sign(k2.privateKey);
    assert.equal((await v(t2)).user, "erin", "unknown kid triggers a refetch");
    assert.equal(fetches, 2);
    const hs = await new SignJWT({}).setSubject("dave").setExpirationTime("1h").setProtectedHeader({
      alg: "HS256",
      kid: "k1",
    })
      .sign(new TextEncoder().encode("x".repeat(32)));
    await rejects(v(hs), "HS256 never accepted with JWKS only");
  } finally {
    await server.shutdown();
  }
});

Deno.test("verifier: sub claims that cannot be a capability key are refused", async () => {
  const v = await createTokenVerifier({ secret: SECRET });
  const mk = (sub: string) =>
    new SignJWT({}).setSubject(sub).setExpirationTime("1h").setProtectedHeader({ alg: "HS256" })
      .sign(key);
  await rejects(v(await mk("\ud800")), "lone surrogate");
  await rejects(v(await mk("é".repeat(200))), "too long once encoded");
  assert.equal((await v(await mk("é".repeat(20)))).user, "é".repeat(20));
});
