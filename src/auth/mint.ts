/** Minting HS256 tokens the gateway accepts (dev mode, the `token` command, tests).
 * Production identity providers mint their own; this is for development and tooling.
 * @module */

import { SignJWT } from "jose";

/** Options of {@link mintToken}. */
export interface MintOptions {
  /** HS256 secret. */
  secret: string;
  /** The `sub` claim. */
  user: string;
  /** Lifetime in seconds (default 3600); `null` mints a token without `exp`. */
  ttlSeconds?: number | null;
  /** `iss` claim. */
  issuer?: string;
  /** `aud` claim. */
  audience?: string;
  /** More claims (for templates and a roles claim); `sub`, `exp`, `iat` are set from the rest. */
  claims?: Record<string, unknown>;
}

/** Mints an HS256 JWT. */
export async function mintToken(opts: MintOptions): Promise<string> {
  const jwt = new SignJWT({ ...opts.claims }).setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(opts.user).setIssuedAt();
  const ttl = opts.ttlSeconds === undefined ? 3600 : opts.ttlSeconds;
  if (ttl !== null) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + ttl);
  if (opts.issuer) jwt.setIssuer(opts.issuer);
  if (opts.audience) jwt.setAudience(opts.audience);
  return await jwt.sign(new TextEncoder().encode(opts.secret));
}

/** Parses a duration such as `90`, `250ms`, `30s`, `15m`, `1h`, `7d` into milliseconds. */
export function parseDuration(text: string, unitless: "s" | "ms" = "s"): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) {
    throw new Error(`invalid duration: ${JSON.stringify(text)} (use e.g. 500ms, 30s, 15m, 1h)`);
  }
  const n = Number(m[1]);
  const unit = m[2] ?? unitless;
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit]!;
  return Math.round(n * factor);
}
