/** `natsgate caps list`: every user with a one-line summary of their capabilities.
 * @module */

import { summarizeCapabilities } from "../../src/auth/capabilities.ts";
import { userKey } from "../../src/auth/user_key.ts";
import { withNats } from "../_nats.ts";
import { capsSubcommand } from "./_command.ts";
import { parseStored, summary, tryParse } from "./_doc.ts";
import { currentUsers, openKv, type Stored } from "./_kv.ts";

/** Builds `caps list`. */
export function listCommand() {
  return capsSubcommand("list")
    .description("list users with a one-line summary of their capabilities")
    .option("--json", "print a JSON array")
    .action(async (o) => {
      await withNats(o, async (nc) => {
        const kv = await openKv(nc, o.authBucket, false);
        const users = kv ? await currentUsers(kv) : new Map<string, Stored>();
        const rows = [...users.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
        if (o.json) {
          console.log(JSON.stringify(rows.map(([user, s]) => {
            const { doc, errors } = parseStored(s.text!);
            return {
              user,
              key: userKey(user),
              revision: s.revision,
              valid: doc !== null,
              ...(doc ? { summary: summarizeCapabilities(doc) } : { errors }),
              capabilities: tryParse(s.text!) ?? s.text,
            };
          })));
          return;
        }
        if (rows.length === 0) {
          console.log("no users");
          return;
        }
        const width = Math.max(4, ...rows.map(([u]) => u.length));
        console.log(`${"USER".padEnd(width)}  ${"REV".padStart(5)}  CAPABILITIES`);
        for (const [user, s] of rows) {
          console.log(
            `${user.padEnd(width)}  ${String(s.revision).padStart(5)}  ${summary(s.text)}`,
          );
        }
      });
    });
}
