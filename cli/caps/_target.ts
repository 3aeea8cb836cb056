/** Which document a `caps` subcommand works on: a user's (`users.<encoded id>`) or a role's
 * (`roles.<name>`), with the key, the words for messages and the parse options of each.
 * @module */

import type { ParseOptions } from "../../src/auth/capabilities.ts";
import { roleKey, validateRoleName } from "../../src/auth/roles.ts";
import { userKey } from "../../src/auth/user_key.ts";
import { CliError } from "../_common.ts";

/** A user's or a role's document. */
export interface DocTarget {
  /** `user` or `role`. */
  kind: "user" | "role";
  /** The user id or role name. */
  name: string;
  /** Its KV key. */
  key: string;
  /** How messages name the document: `capabilities of bob`, `role staff`. */
  label: string;
  /** The error when there is none: `no capabilities for bob`, `no role staff`. */
  missing: string;
  /** How it is parsed (a role may not list roles). */
  parse: ParseOptions;
}

/** A user's document. */
export function userTarget(user: string): DocTarget {
  return {
    kind: "user",
    name: user,
    key: userKey(user),
    label: `capabilities of ${user}`,
    missing: `no capabilities for ${user}`,
    parse: {},
  };
}

/** A role's document; a name that cannot be a role is a usage error (exit 2). */
export function roleTarget(name: string): DocTarget {
  const err = validateRoleName(name);
  if (err) throw new CliError(`invalid role name ${JSON.stringify(name)}: ${err}`, 2);
  return {
    kind: "role",
    name,
    key: roleKey(name),
    label: `role ${name}`,
    missing: `no role ${name}`,
    parse: { kind: "role" },
  };
}
