/** `natsgate caps history USER`: the KV revisions of a user's document.
 * @module */

import type { KvEntry } from "@nats-io/kv";
import { userKey } from "../../src/auth/user_key.ts";
import { CliError } from "../_common.ts";
import { withNats } from "../_nats.ts";
import { capsSubcommand } from "./_command.ts";
import { summary, tryParse } from "./_doc.ts";
import { openForUser } from "./_kv.ts";

/** Builds `caps history`. */
export function historyCommand() {
  return capsSubcommand("history")
    .description("list the KV revisions of a user's capabilities")
    .argument("<user>", "user id")
    .option("--json", "print a JSON array")
    .action(async (user, o) => {
      await withNats(o, async (nc) => {
        const kv = await openForUser(nc, o.authBucket, user);
        const entries: KvEntry[] = [];
        for await (const e of await kv.history({ key: userKey(user) })) entries.push(e);
        if (entries.length === 0) throw new CliError(`no capabilities for ${user}`);
        entries.sort((a, b) => a.revision - b.revision);
        if (o.json) {
          console.log(JSON.stringify(entries.map((e) => ({
            revision: e.revision,
            time: e.created.toISOString(),
            operation: e.operation,
            ...(e.operation === "PUT" ? { capabilities: tryParse(e.string()) ?? e.string() } : {}),
          }))));
          return;
        }
        console.log(
          `${"REV".padStart(5)}  ${"TIME".padEnd(24)}  ${"OP".padEnd(5)}  CAPABILITIES`,
        );
        for (const e of entries) {
          const what = e.operation === "PUT" ? summary(e.string()) : "";
          console.log(
            `${String(e.revision).padStart(5)}  ${e.created.toISOString().padEnd(24)}  ${
              e.operation.padEnd(5)
            }  ${what}`.trimEnd(),
          );
        }
      });
    });
}
