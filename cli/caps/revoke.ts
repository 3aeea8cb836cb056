/** `natsgate caps revoke USER --subject P ...`: remove exact patterns from a user's capabilities.
 * @module */

import { grantRevokeCommand } from "./_grant_revoke.ts";

/** Builds `caps revoke`. */
export function revokeCommand() {
  return grantRevokeCommand("revoke");
}
