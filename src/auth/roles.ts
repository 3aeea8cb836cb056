/** Roles (docs/protocol.md section 5): named capability documents at `roles.<name>` in the auth
 * bucket, and which of them a session holds: the user document's `roles`, the gateway's default
 * role, and the role names of the token's roles claim. Pure functions.
 * @module */

/** Prefix of every role's key. */
export const ROLES_PREFIX = "roles.";

/** Longest role name, in bytes (`roles.<name>` stays a valid KV key). */
export const MAX_ROLE_NAME = 64;

const _NAME = /^[A-Za-z0-9_-]+$/;

/** How a session came to hold a role. */
export type RoleVia = "user" | "default" | "claim";

/** A role a session holds, with every way it holds it. */
export interface HeldRole {
  /** The role's name. */
  name: string;
  /** Where it came from: the user document, the default role, the token's claim. */
  via: RoleVia[];
}

/** Which roles apply besides the user document's: the gateway's role flags. */
export interface RolePolicy {
  /** `--default-role`: held by every authenticated user. */
  defaultRole?: string;
  /** `--jwt-roles-claim`: the claim whose role names apply too (roles that exist only). */
  rolesClaim?: string;
}

/**
 * Why `name` cannot be a role name, or null when it can: one KV token of `[A-Za-z0-9_-]`, at most
 * {@link MAX_ROLE_NAME} bytes. So a name can never be a pattern (`*`, `>`) nor reach another key.
 *
 * @example
 * ```ts
 * validateRoleName("staff"); // null
 * validateRoleName("a.b"); // "role names use only A-Z a-z 0-9 _ -"
 * ```
 */
export function validateRoleName(name: unknown): string | null {
  if (typeof name !== "string") return "role name must be a string";
  if (name.length === 0) return "empty role name";
  if (!_NAME.test(name)) return "role names use only A-Z a-z 0-9 _ -";
  if (name.length > MAX_ROLE_NAME) return `role name longer than ${MAX_ROLE_NAME} bytes`;
  return null;
}

/** The KV key of a role (`roles.<name>`); throws on a name {@link validateRoleName} refuses. */
export function roleKey(name: string): string {
  const err = validateRoleName(name);
  if (err !== null) throw new Error(err);
  return ROLES_PREFIX + name;
}

/** The role name of a key, or null when `key` is not a well-formed role key. */
export function roleFromKey(key: string): string | null {
  if (typeof key !== "string" || !key.startsWith(ROLES_PREFIX)) return null;
  const name = key.slice(ROLES_PREFIX.length);
  return validateRoleName(name) === null ? name : null;
}

/**
 * The role names a token's claim lists: an array of strings, or one string. Names that cannot be
 * roles are dropped; a missing or other-typed claim lists none.
 */
export function rolesFromClaim(
  claims: Readonly<Record<string, unknown>> | undefined,
  claim: string | undefined,
): string[] {
  if (!claims || claim === undefined || !Object.hasOwn(claims, claim)) return [];
  const v = claims[claim];
  const list = typeof v === "string" ? [v] : Array.isArray(v) ? v : [];
  return list.filter((n): n is string => validateRoleName(n) === null);
}

/**
 * The roles a session holds, in order: the user document's (`userRoles`), the default role, the
 * claim's; each
 * once, with every source. Invalid names are dropped.
 *
 * @example
 * ```ts
 * heldRoles(["staff"], { defaultRole: "base", rolesClaim: "roles" }, { roles: ["staff"] });
 * // [{ name: "staff", via: ["user", "claim"] }, { name: "base", via: ["default"] }]
 * ```
 */
export function heldRoles(
  userRoles: readonly unknown[] | undefined,
  policy: RolePolicy,
  claims?: Readonly<Record<string, unknown>>,
): HeldRole[] {
  const out = new Map<string, HeldRole>();
  const add = (name: unknown, via: RoleVia) => {
    if (validateRoleName(name) !== null) return;
    const n = name as string;
    const held = out.get(n);
    if (!held) out.set(n, { name: n, via: [via] });
    else if (!held.via.includes(via)) held.via.push(via);
  };
  for (const n of Array.isArray(userRoles) ? userRoles : []) add(n, "user");
  if (policy.defaultRole !== undefined) add(policy.defaultRole, "default");
  for (const n of rolesFromClaim(claims, policy.rolesClaim)) add(n, "claim");
  return [...out.values()];
}
