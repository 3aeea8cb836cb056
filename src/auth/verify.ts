/** JWT verification (HS256 with a pinned algorithm list) and credential extraction from requests.
 * Tokens are never logged; errors carry no token material.
 * @module */

import {
  createRemoteJWKSet,
  errors as joseErrors,
  importSPKI,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import { joseFailureReason, TokenRejectedError } from "./auth_failure.ts";
import { validateUserId } from "./user_key.ts";

/** Options of {@link createTokenVerifier}; at least one key source is required. */
export interface JwtOptions {
  /** HS256 shared secret. */
  secret?: string;
  /** PEM public key (SPKI) for RS256, ES256 or EdDSA tokens. */
  publicKeyPem?: string;
  /** JWKS endpoint (asymmetric algorithms only); keys cached, refetched on an unknown `kid`. */
  jwksUrl?: string;
  /** Least time between two JWKS fetches, also for unknown `kid`s (default 30 s). */
  jwksCooldownMs?: number;
  /** Required `iss`, if set. */
  issuer?: string;
  /** Required `aud`, if set. */
  audience?: string;
  /** Refuse tokens without `exp` ("token has no exp"); default true. */
  requireExp?: boolean;
}

/** The identity a verified token carries. */
export interface VerifiedToken {
  /** The `sub` claim: the user id. */
  user: string;
  /** Expiry, seconds since the epoch, or null when the token has no `exp` (only accepted with
   * `requireExp: false`). */
  exp: number | null;
  /** Every claim of the token (for `{claim:NAME}` templates and `--jwt-roles-claim`). */
  claims: Readonly<Record<string, unknown>>;
}

/** Verifies a token; rejects with `unauthorized` on any failure. */
export type TokenVerifier = (token: string) => Promise<VerifiedToken>;

const _MAX_TOKEN = 8192;
const _MAX_USER = 256;

/** Asymmetric algorithms accepted from a public key or JWKS. */
export const ASYMMETRIC_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const;

/**
 * Creates a verifier. The accepted algorithms are pinned by the configured keys: HS256 with a
 * secret; RS256, ES256 or EdDSA (whichever the PEM key is) with a public key; the asymmetric set
 * with JWKS. `alg: none` and anything else are refused, and an HS256 token is never checked
 * against a public key (no algorithm confusion). A token without `exp` is refused ("token has no
 * exp") unless `requireExp` is false.
 */
export async function createTokenVerifier(opts: JwtOptions): Promise<TokenVerifier> {
  const secret = opts.secret ? new TextEncoder().encode(opts.secret) : undefined;
  const publicKeys = new Map<string, CryptoKey>();
  if (opts.publicKeyPem) {
    for (const alg of ASYMMETRIC_ALGORITHMS) {
      try {
        publicKeys.set(alg, await importSPKI(opts.publicKeyPem, alg) as CryptoKey);
      } catch {
        // not a key of this algorithm's type
      }
    }
    if (publicKeys.size === 0) {
      throw new Error("the public key is not an RSA, P-256 or Ed25519 SPKI PEM key");
    }
  }
  const jwks = opts.jwksUrl
    ? createRemoteJWKSet(new URL(opts.jwksUrl), {
      cooldownDuration: opts.jwksCooldownMs ?? 30_000,
    })
    : undefined;
  const algorithms: string[] = [];
  if (secret) algorithms.push("HS256");
  for (const alg of publicKeys.keys()) algorithms.push(alg);
  if (jwks) {
    for (const alg of ASYMMETRIC_ALGORITHMS) if (!algorithms.includes(alg)) algorithms.push(alg);
  }
  if (algorithms.length === 0) throw new Error("no JWT key configured");
  const requireExp = opts.requireExp ?? true;
  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === "HS256" && secret) return secret;
    const pk = header.alg ? publicKeys.get(header.alg) : undefined;
    if (pk && (!jwks || !header.kid)) return pk;
    if (jwks) return await jwks(header, token);
    if (pk) return pk;
    throw new joseErrors.JOSENotSupported("no key for this algorithm");
  };
  return async (token: string) => {
    if (typeof token !== "string" || token.length === 0 || token.length > _MAX_TOKEN) {
      throw new TokenRejectedError("malformed", "invalid token");
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        algorithms,
        issuer: opts.issuer,
        audience: opts.audience,
      }));
    } catch (err) {
      const reason = joseFailureReason(err);
      const message = reason === "expired" ? "token expired" : "invalid token";
      throw new TokenRejectedError(reason, message, { cause: err });
    }
    const exp = typeof payload.exp === "number" ? payload.exp : null;
    // A token without exp is a credential that never dies: refused unless the operator opts in.
    if (exp === null && requireExp) {
      throw new TokenRejectedError("invalid_claims", "token has no exp");
    }
    const user = payload.sub;
    if (typeof user !== "string" || user.length > _MAX_USER || validateUserId(user) !== null) {
      // Also refuses ids that cannot be a capability key (lone surrogates, too long encoded).
      throw new TokenRejectedError("invalid_claims", "token has no valid sub claim");
    }
    return { user, exp, claims: Object.freeze({ ...payload }) };
  };
}

/** Reads one cookie from a `Cookie` header. */
export function readCookie(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(value);
      } catch {
        return value;
      }
    }
  }
  return undefined;
}

/**
 * Finds the credentials of an upgrade request, in docs/protocol.md's order: `Authorization: Bearer`,
 * then the auth cookie, then the `token` query parameter. Undefined when none is present.
 */
export function requestToken(req: Request, url: URL, cookieName: string): string | undefined {
  const authz = req.headers.get("authorization");
  if (authz !== null) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authz);
    if (m) return m[1];
  }
  const cookie = readCookie(req.headers.get("cookie"), cookieName);
  if (cookie) return cookie;
  const q = url.searchParams.get("token");
  if (q) return q;
  return undefined;
}

/**
 * Decides whether an `Origin` is allowed: no Origin (non-browser) is allowed; `*` allows any;
 * otherwise the origin must be listed, or, with an empty list, match the request's own host.
 */
export function originAllowed(
  origin: string | null,
  allowed: readonly string[],
  host: string | null,
): boolean {
  if (origin === null) return true;
  if (allowed.includes("*")) return true;
  if (allowed.length === 0) {
    try {
      return host !== null && new URL(origin).host === host;
    } catch {
      return false;
    }
  }
  return allowed.includes(origin);
}
