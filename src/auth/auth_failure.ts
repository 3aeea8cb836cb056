/** Why authentication failed, as a small closed set of reasons for the
 * `natsgate_auth_failures_total{reason}` counter and the log. Clients still see only their
 * protocol message (`invalid token`, `token expired`, …): the reason is for operators.
 * @module */

import { GatewayError } from "../protocol/errors.ts";

/** Every auth failure reason, in the order /metrics lists them. */
export const AUTH_FAILURE_REASONS = [
  "missing_token",
  "malformed",
  "bad_signature",
  "expired",
  "issuer_audience",
  "invalid_claims",
  "unknown_key",
  "key_unavailable",
  "wrong_user",
  "origin",
  "capabilities_unavailable",
] as const;

/**
 * An auth failure reason:
 * - `missing_token`: no token by the auth timeout, or a first frame that is not `auth`;
 * - `malformed`: not a JWT (or empty, or over 8 KiB);
 * - `bad_signature`: the signature does not verify with the configured key;
 * - `expired`: `exp` has passed (at connect or on a refresh);
 * - `issuer_audience`: `iss` or `aud` differ from `--jwt-issuer` / `--jwt-audience`;
 * - `invalid_claims`: no `exp` (without `--allow-no-exp`), no usable `sub`, or `nbf`/`iat` off;
 * - `unknown_key`: an algorithm or key id the gateway has no key for;
 * - `key_unavailable`: the JWKS could not be fetched;
 * - `wrong_user`: a refresh token for another user;
 * - `origin`: the upgrade's `Origin` is not allowed (HTTP 403);
 * - `capabilities_unavailable`: the user's capabilities could not be read (close 1011).
 */
export type AuthFailureReason = typeof AUTH_FAILURE_REASONS[number];

/** A token the verifier refused: `unauthorized` for the client, `reason` for operators. */
export class TokenRejectedError extends GatewayError {
  /** Why, for metrics and logs. */
  readonly reason: AuthFailureReason;

  /** Creates the error; `message` is what the client is told. */
  constructor(reason: AuthFailureReason, message: string, options?: { cause?: unknown }) {
    super("unauthorized", message, options);
    this.name = "TokenRejectedError";
    this.reason = reason;
  }
}

/**
 * Maps an error thrown by jose's `jwtVerify` (or by the key lookup it calls) to a reason.
 * jose errors carry a stable `code` (and `claim` for claim checks); anything without a code
 * came from fetching the key set.
 *
 * @example
 * ```ts
 * import { errors } from "jose";
 * import { joseFailureReason } from "./auth_failure.ts";
 * joseFailureReason(new errors.JWSSignatureVerificationFailed()); // "bad_signature"
 * ```
 */
export function joseFailureReason(err: unknown): AuthFailureReason {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !code.startsWith("ERR_")) return "key_unavailable";
  switch (code) {
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "bad_signature";
    case "ERR_JWT_EXPIRED":
      return "expired";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED": {
      const claim = (err as { claim?: unknown }).claim;
      return claim === "iss" || claim === "aud" ? "issuer_audience" : "invalid_claims";
    }
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JOSE_NOT_SUPPORTED":
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return "unknown_key";
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JWKS_INVALID":
      return "key_unavailable";
    default:
      return "malformed";
  }
}

/**
 * The reason of a failed token verification: the {@link TokenRejectedError}'s own, else
 * `malformed` (any other refusal of a presented token).
 *
 * @example
 * ```ts
 * import { authFailureReason, TokenRejectedError } from "./auth_failure.ts";
 * authFailureReason(new TokenRejectedError("expired", "token expired")); // "expired"
 * ```
 */
export function authFailureReason(err: unknown): AuthFailureReason {
  return err instanceof TokenRejectedError ? err.reason : "malformed";
}
