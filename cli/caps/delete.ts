/** `natsgate caps delete USER`: delete a user's document; asks on a terminal, `--yes` skips the
 * question, and without a terminal it refuses unless `--yes`.
 * @module */

import { withNats } from "../_nats.ts";
import { type BucketFlags, capsSubcommand, openBucket, type SourceHolder } from "./_command.ts";
import { type CliContext, confirmDestructive, contextOf, yesOption } from "../_common.ts";
import { concurrent, isCasConflict, type Who } from "./_kv.ts";

/** Builds `caps delete`. */
export function deleteCommand() {
  return capsSubcommand("delete", [
    "natsgate caps delete alice            # asks [y/N] on a terminal",
    "natsgate caps delete alice --yes      # scripts: required when stdin is no terminal",
  ])
    .description("delete a user's capabilities (asks first on a terminal; --yes in scripts)")
    .argument("<user>", "user id")
    .addOption(yesOption())
    .action(async (user, o, cmd) => {
      await deleteDocument(contextOf(cmd), cmd, o, user, `capabilities of ${user}`);
    });
}

/**
 * Deletes a user's or a role's document (compare-and-set against the revision read) after
 * confirmation; `what` names it in the question and the result (`capabilities of bob`).
 */
export async function deleteDocument(
  ctx: CliContext,
  cmd: SourceHolder,
  o: BucketFlags & { yes?: boolean },
  who: Who,
  what: string,
  consequence = "",
): Promise<void> {
  await withNats(o, async (nc) => {
    const bucket = await openBucket(nc, ctx, o, cmd, "existing");
    const cur = await bucket.require(who);
    await confirmDestructive(ctx, `delete the ${what}?${consequence ? ` ${consequence}` : ""}`, {
      yes: o.yes,
      action: typeof who === "string" ? "delete capabilities" : `delete a ${who.kind}`,
    });
    try {
      await bucket.remove(who, cur.revision);
    } catch (err) {
      if (isCasConflict(err)) throw concurrent(who);
      throw err;
    }
    ctx.note(`deleted ${what}`);
  });
}
