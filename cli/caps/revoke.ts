/** `natsgate caps revoke USER --subject P ...`: remove exact patterns from a user's capabilities.
 * Never creates a bucket or a user.
 * @module */

import { contextOf } from "../_common.ts";
import { deltaOf, grantOrRevoke, grantRevokeBase } from "./_grant_revoke.ts";

/** Builds `caps revoke`. */
export function revokeCommand() {
  return grantRevokeBase(
    "revoke",
    "remove exact patterns from a user's capabilities (empty bucket/stream entries go too)",
    [
      "natsgate caps revoke alice --publish chat.room.1",
      "natsgate caps revoke alice --bucket 'todos=user.alice.>' --json",
    ],
  )
    .action(async (user, o, cmd) => {
      await grantOrRevoke(contextOf(cmd), cmd, o, user, deltaOf(o), "revoke");
    });
}
