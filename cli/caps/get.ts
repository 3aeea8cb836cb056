/** `natsgate caps get USER`: print a user's stored capabilities document.
 * @module */

import { CliError } from "../_common.ts";
import { withNats } from "../_nats.ts";
import { capsSubcommand } from "./_command.ts";
import { compact, parseStored, pretty } from "./_doc.ts";
import { openForUser, read } from "./_kv.ts";

/** Builds `caps get`. */
export function getCommand() {
  return capsSubcommand("get")
    .description("print a user's stored capabilities document")
    .argument("<user>", "user id")
    .option("--json", "print compact JSON")
    .action(async (user, o) => {
      await withNats(o, async (nc) => {
        const kv = await openForUser(nc, o.authBucket, user);
        const cur = await read(kv, user);
        if (cur.text === null) throw new CliError(`no capabilities for ${user}`);
        console.log(o.json ? compact(cur.text) : pretty(cur.text));
        const { doc, errors } = parseStored(cur.text);
        if (!doc) {
          console.error(
            `warning: this document is invalid and grants nothing: ${errors.join("; ")}`,
          );
        }
      });
    });
}
