/** `natsgate caps set USER (--json DOC | --file PATH | -)`: validate and write a document.
 * @module */

import { userKey } from "../../src/auth/user_key.ts";
import { withNats } from "../_nats.ts";
import { capsSubcommand } from "./_command.ts";
import { readSource, serialize, validateText } from "./_doc.ts";
import { openKv } from "./_kv.ts";

/** Builds `caps set`. */
export function setCommand() {
  return capsSubcommand("set")
    .description("validate and write a user's capabilities (from --json, --file or - for stdin)")
    .argument("<user>", "user id")
    .argument("[source]", "- to read the document from stdin")
    .option("--json <document>", "the capabilities document")
    .option("--file <path>", "read the document from a file")
    .action(async (user, source, o) => {
      const text = await readSource(o, source);
      const doc = validateText(text);
      await withNats(o, async (nc) => {
        const kv = (await openKv(nc, o.authBucket, true))!;
        const rev = await kv.put(userKey(user), serialize(doc));
        console.log(`set capabilities of ${user} (revision ${rev})`);
      });
    });
}
