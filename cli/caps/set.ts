/** `natsgate caps set USER (--json DOC | --file PATH | -)`: validate and write a whole document.
 * @module */

import { withNats } from "../_nats.ts";
import { capsSubcommand, openBucket } from "./_command.ts";
import { readSource, serialize, validateText } from "./_doc.ts";
import { contextOf } from "../_common.ts";

/** Builds `caps set`. */
export function setCommand() {
  return capsSubcommand("set", [
    `natsgate caps set alice --json '{"subjects":["chat.>"],"publish":["chat.alice"]}'`,
    "natsgate caps set alice --file alice.json",
    "natsgate caps get alice --json | natsgate caps set bob -",
    `natsgate caps set alice --json '{}' --auth-bucket auth2 --create`,
  ])
    .description("validate and write a user's capabilities (from --json, --file or - for stdin)")
    .argument("<user>", "user id")
    .argument("[source]", "- to read the document from stdin")
    .option("--json <document>", "the capabilities document")
    .option("--file <path>", "read the document from a file")
    .option("--create", "create the auth bucket when it does not exist")
    .action(async (user, source, o, cmd) => {
      const ctx = contextOf(cmd);
      const text = await readSource(ctx, o, source);
      const doc = validateText(text);
      await withNats(o, async (nc) => {
        const bucket = await openBucket(nc, ctx, o, cmd, "write", o.create);
        const rev = await bucket.write(user, serialize(doc));
        ctx.note(`set capabilities of ${user} (revision ${rev})`);
      });
    });
}
