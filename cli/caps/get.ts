/** `natsgate caps get USER`: print a user's stored capabilities document.
 * @module */

import { withNats } from "../_nats.ts";
import { capsSubcommand, openBucket } from "./_command.ts";
import { compact, parseStored, pretty } from "./_doc.ts";
import { contextOf } from "../_common.ts";

/** Builds `caps get`. */
export function getCommand() {
  return capsSubcommand("get", [
    "natsgate caps get alice",
    "natsgate caps get alice --json | jq '.subjects'",
  ])
    .description("print a user's stored capabilities document (pretty JSON; --json: one line)")
    .argument("<user>", "user id")
    .option("--json", "print compact JSON")
    .action(async (user, o, cmd) => {
      const ctx = contextOf(cmd);
      await withNats(o, async (nc) => {
        const bucket = await openBucket(nc, ctx, o, cmd, "read");
        const cur = await bucket.require(user);
        ctx.print(o.json ? compact(cur.text) : pretty(cur.text));
        const { doc, errors } = parseStored(cur.text);
        if (!doc) {
          ctx.note(`warning: this document is invalid and grants nothing: ${errors.join("; ")}`);
        }
      });
    });
}
