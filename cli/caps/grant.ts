/** `natsgate caps grant USER --subject P ...`: add patterns to a user's capabilities.
 * @module */

import { grantRevokeCommand } from "./_grant_revoke.ts";

/** Builds `caps grant`. */
export function grantCommand() {
  return grantRevokeCommand("grant");
}
