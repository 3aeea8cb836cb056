/** `natsgate caps delete USER`: delete a user's document; asks on a terminal, `--yes` skips the
 * question, and without a terminal it refuses unless `--yes`.
 * @module */

import { withNats } from "../_nats.ts";
import { capsSubcommand, openBucket } from "./_command.ts";
import { confirmDestructive, contextOf } from "./_io.ts";
import { concurrent, isCasConflict } from "./_kv.ts";

/** Builds `caps delete`. */
export function deleteCommand() {
  return capsSubcommand("delete", [
    "natsgate caps delete alice            # asks [y/N] on a terminal",
    "natsgate caps delete alice --yes      # scripts: required when stdin is no terminal",
  ])
    .description("delete a user's capabilities (asks first on a terminal; --yes in scripts)")
    .argument("<user>", "user id")
    .option("-y, --yes", "do not ask for confirmation (required when stdin is no terminal)")
    .action(async (user, o, cmd) => {
      const ctx = contextOf(cmd);
      await withNats(o, async (nc) => {
        const bucket = await openBucket(nc, ctx, o, cmd, "existing");
        const cur = await bucket.require(user);
        await confirmDestructive(ctx, `delete the capabilities of ${user}?`, {
          yes: o.yes,
          action: "delete capabilities",
        });
        try {
          await bucket.remove(user, cur.revision);
        } catch (err) {
          if (isCasConflict(err)) throw concurrent(user);
          throw err;
        }
        ctx.note(`deleted capabilities of ${user}`);
      });
    });
}
