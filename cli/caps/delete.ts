/** `natsgate caps delete USER`: delete a user's document after confirmation.
 * @module */

import { userKey } from "../../src/auth/user_key.ts";
import { CliError } from "../_common.ts";
import { confirmAction, withNats } from "../_nats.ts";
import { capsSubcommand } from "./_command.ts";
import { concurrent, isCasConflict, openForUser, read } from "./_kv.ts";

/** Builds `caps delete`. */
export function deleteCommand() {
  return capsSubcommand("delete")
    .description("delete a user's capabilities (asks first on a terminal)")
    .argument("<user>", "user id")
    .option("-y, --yes", "do not ask for confirmation")
    .action(async (user, o) => {
      await withNats(o, async (nc) => {
        const kv = await openForUser(nc, o.authBucket, user);
        const cur = await read(kv, user);
        if (cur.text === null) throw new CliError(`no capabilities for ${user}`);
        confirmAction(`delete the capabilities of ${user}?`, "delete capabilities", o.yes);
        try {
          await kv.delete(userKey(user), { previousSeq: cur.revision });
        } catch (err) {
          if (isCasConflict(err)) throw concurrent(user);
          throw err;
        }
        console.log(`deleted capabilities of ${user}`);
      });
    });
}
