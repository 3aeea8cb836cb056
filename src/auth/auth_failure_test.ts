import assert from "node:assert/strict";
import { errors, generateKeyPair, SignJWT } from "jose";
import {
  AUTH_FAILURE_REASONS,
  authFailureReason,
  joseFailureReason,
  TokenRejectedError,
} from "./auth_failure.ts";
import { createTokenVerifier } from "./verify.ts";
import { mintToken } from "./mint.ts";

const _SECRET = "auth-failure-test-secret-0123456789abcdef";
const _enc = new TextEncoder();

async function _reject(verify: (t: string) => Promise<unknown>, token: string) {
  try {
    await verify(token);
  } catch (err) {
    assert.ok(err instanceof TokenRejectedError, `a TokenRejectedError, got ${err}`);
    return { reason: authFailureReason(err), message: err.message, code: err.code };
  }
  throw new Error("the token was accepted");
}

Deno.test("token verification failures carry their reason; clients keep the old messages", async () => {
  const verify = await createTokenVerifier({ secret: _SECRET, issuer: "idp", audience: "gw" });
  const good = { secret: _SECRET, user: "u", issuer: "idp", audience: "gw" };
  const hs = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(_enc.encode(_SECRET));
  const { privateKey } = await generateKeyPair("RS256");
  const cases: Array<[string, Promise<string> | string, string, string]> = [
    ["empty", "", "malformed", "invalid token"],
    ["not a JWT", "abc.def", "malformed", "invalid token"],
    [
      "other secret",
      mintToken({ ...good, secret: "another-secret-0123456789abcdef01" }),
      "bad_signature",
      "invalid token",
    ],
    ["expired", mintToken({ ...good, ttlSeconds: -60 }), "expired", "token expired"],
    ["other issuer", mintToken({ ...good, issuer: "evil" }), "issuer_audience", "invalid token"],
    [
      "other audience",
      mintToken({ ...good, audience: "elsewhere" }),
      "issuer_audience",
      "invalid token",
    ],
    ["no exp", mintToken({ ...good, ttlSeconds: null }), "invalid_claims", "token has no exp"],
    [
      "no sub",
      hs({ iss: "idp", aud: "gw", exp: 2e9 }),
      "invalid_claims",
      "token has no valid sub claim",
    ],
    [
      "nbf ahead",
      hs({ sub: "u", iss: "idp", aud: "gw", exp: 2e9, nbf: 1.9e9 }),
      "invalid_claims",
      "invalid token",
    ],
    [
      "RS256 to an HS256-only gateway",
      new SignJWT({ sub: "u", iss: "idp", aud: "gw", exp: 2e9 }).setProtectedHeader({
        alg: "RS256",
      }).sign(privateKey),
      "unknown_key",
      "invalid token",
    ],
  ];
  for (const [name, token, reason, message] of cases) {
    const got = await _reject(verify, await token);
    assert.deepEqual(got, { reason, message, code: "unauthorized" }, name);
  }
});

Deno.test("an unreachable JWKS is key_unavailable", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there now: the fetch is refused
  const verify = await createTokenVerifier({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` });
  const { privateKey } = await generateKeyPair("RS256");
  const token = await new SignJWT({ sub: "u", exp: 2e9 }).setProtectedHeader({
    alg: "RS256",
    kid: "k1",
  })
    .sign(privateKey);
  assert.equal((await _reject(verify, token)).reason, "key_unavailable");
});

Deno.test("joseFailureReason: jose codes and claims", () => {
  const cases: Array<[unknown, string]> = [
    [new errors.JWSSignatureVerificationFailed(), "bad_signature"],
    [new errors.JWTExpired("x", {}, "exp"), "expired"],
    [new errors.JWTClaimValidationFailed("x", {}, "iss"), "issuer_audience"],
    [new errors.JWTClaimValidationFailed("x", {}, "aud"), "issuer_audience"],
    [new errors.JWTClaimValidationFailed("x", {}, "nbf"), "invalid_claims"],
    [new errors.JOSEAlgNotAllowed("x"), "unknown_key"],
    [new errors.JOSENotSupported("x"), "unknown_key"],
    [new errors.JWKSNoMatchingKey(), "unknown_key"],
    [new errors.JWKSTimeout(), "key_unavailable"],
    [new errors.JWSInvalid("x"), "malformed"],
    [new errors.JWTInvalid("x"), "malformed"],
    [new TypeError("fetch failed"), "key_unavailable"],
    [undefined, "key_unavailable"],
  ];
  for (const [err, want] of cases) assert.equal(joseFailureReason(err), want, String(err));
  for (const [, want] of cases) {
    assert.ok((AUTH_FAILURE_REASONS as readonly string[]).includes(want));
  }
  assert.equal(authFailureReason(new Error("other")), "malformed");
});
