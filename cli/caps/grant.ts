/** `natsgate caps grant USER --subject P ...`: add patterns to a user's capabilities.
 * @module */

import { contextOf } from "../_common.ts";
import { deltaOf, grantOrRevoke, grantRevokeBase } from "./_grant_revoke.ts";

/** Builds `caps grant`. */
export function grantCommand() {
  return grantRevokeBase(
    "grant",
    "add patterns to a user's capabilities (no duplicates; the user must exist unless --create)",
    [
      "natsgate caps grant alice --subject 'chat.room.*' --publish chat.room.1",
      "natsgate caps grant alice --bucket 'todos=user.alice.>' --stream 'CHAT=chat.>'",
      "natsgate caps grant newuser --subject 'news.>' --create    # no document yet",
    ],
  )
    .option("--create", "create the user (and the auth bucket) when missing")
    .action(async (user, o, cmd) => {
      await grantOrRevoke(contextOf(cmd), cmd, o, user, deltaOf(o), "grant");
    });
}
