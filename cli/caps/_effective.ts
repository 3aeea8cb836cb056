/** A user's effective capabilities as the gateway would compute them for one session: the user
 * document and every role held (document, `--default-role`, the token's roles claim), templates
 * expanded with the given session id and claims. For `caps check`.
 * @module */

import type { Capabilities } from "../../src/auth/capabilities.ts";
import { type EffectiveCapabilities, effectiveCapabilities } from "../../src/auth/effective.ts";
import { heldRoles, type RolePolicy } from "../../src/auth/roles.ts";
import { CliError } from "../_common.ts";
import { parseStored } from "./_doc.ts";
import type { AuthBucket } from "./_kv.ts";
import { roleTarget } from "./_target.ts";

/** What the gateway knows about the session being explained. */
export interface SessionFacts {
  /** `--default-role` and `--jwt-roles-claim` of the gateway. */
  policy: RolePolicy;
  /** The token's claims. */
  claims?: Record<string, unknown>;
  /** The session id (`{session}` patterns grant nothing without one). */
  session?: string;
}

/** Effective capabilities with notes on what grants nothing (missing user, missing roles…). */
export interface Explained {
  /** The effective capabilities. */
  eff: EffectiveCapabilities;
  /** Why parts grant nothing, e.g. `role ghost does not exist: it grants nothing`. */
  notes: string[];
}

/** Parses `--claims`: a JSON object, else a usage error (exit 2). */
export function parseClaims(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CliError(`invalid --claims: ${(err as Error).message}`, 2);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new CliError("invalid --claims: must be a JSON object", 2);
  }
  return v as Record<string, unknown>;
}

/** Reads the user's document and held roles from `bucket` and computes the effective capabilities. */
export async function explainUser(
  bucket: AuthBucket,
  user: string,
  facts: SessionFacts,
): Promise<Explained> {
  const notes: string[] = [];
  const cur = await bucket.read(user);
  let userDoc: Capabilities | null = null;
  if (cur.text === null) notes.push(`no capabilities for ${user} (fail closed)`);
  else {
    const { doc, errors } = parseStored(cur.text);
    if (!doc) notes.push(`stored document is invalid, so it grants nothing: ${errors.join("; ")}`);
    userDoc = doc;
  }
  const roles = new Map<string, Capabilities | null>();
  for (const h of heldRoles(userDoc?.roles, facts.policy, facts.claims)) {
    const text = (await bucket.read(roleTarget(h.name))).text;
    const parsed = text === null ? null : parseStored(text, { kind: "role" });
    if (text === null) notes.push(`role ${h.name} does not exist: it grants nothing`);
    else if (!parsed!.doc) notes.push(`role ${h.name} is invalid: it grants nothing`);
    roles.set(h.name, parsed?.doc ?? null);
  }
  // The same engine and options as the gateway: the auth bucket is reserved.
  const eff = effectiveCapabilities({
    user,
    session: facts.session ?? "",
    claims: facts.claims,
    userDoc,
    roles,
    policy: facts.policy,
    compile: { reservedBuckets: [bucket.name] },
  });
  return { eff, notes };
}
