/** `natsgate caps edit USER`: edit a document in `$EDITOR`; an invalid save re-opens the editor
 * with the errors on top, and the write is compare-and-set against the revision that was opened.
 * @module */

import { parseCapabilitiesJson } from "../../src/auth/capabilities.ts";
import { CliError } from "../_common.ts";
import { withNats } from "../_nats.ts";
import { type BucketFlags, capsSubcommand, openBucket, type SourceHolder } from "./_command.ts";
import { canonical, pretty, serialize, tryParse } from "./_doc.ts";
import { contextOf, type Ctx } from "./_io.ts";
import { concurrent, isCasConflict, message, MissingUserError } from "./_kv.ts";

/** Lines of the edit buffer starting with this are comments (stripped before parsing). */
const _COMMENT = "//";

/** Builds `caps edit`. */
export function editCommand() {
  return capsSubcommand("edit", [
    "natsgate caps edit alice",
    "EDITOR=nano natsgate caps edit alice",
    "natsgate caps edit newuser --create    # start from {} for a user with no document",
  ])
    .description("edit a user's capabilities in $EDITOR; validated, written compare-and-set")
    .argument("<user>", "user id")
    .option("--create", "start a new document when the user (or the auth bucket) is missing")
    .action(async (user, o, cmd) => {
      await _edit(contextOf(cmd), cmd, o, user);
    });
}

function _stripComments(text: string): string {
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length && lines[i].trimStart().startsWith(_COMMENT)) i++;
  return lines.slice(i).join("\n");
}

async function _runEditor(ctx: Ctx, path: string): Promise<number> {
  const editor = ctx.env("VISUAL") || ctx.env("EDITOR") || "vi";
  const stdio = { stdin: "inherit", stdout: "inherit", stderr: "inherit" } as const;
  const cmd = Deno.build.os === "windows"
    ? new Deno.Command("cmd", { args: ["/c", `${editor} "${path}"`], ...stdio })
    : new Deno.Command("sh", { args: ["-c", `${editor} "$1"`, "sh", path], ...stdio });
  try {
    return (await cmd.spawn().status).code;
  } catch (err) {
    throw new CliError(`cannot run editor ${JSON.stringify(editor)}: ${message(err)}`);
  }
}

async function _edit(
  ctx: Ctx,
  cmd: SourceHolder,
  o: BucketFlags & { create?: boolean },
  user: string,
): Promise<void> {
  await withNats(o, async (nc) => {
    const bucket = await openBucket(nc, ctx, o, cmd, "write", o.create);
    const cur = await bucket.read(user);
    if (cur.text === null && !o.create) {
      throw new MissingUserError(user, "pass --create to start a new document");
    }
    const original = cur.text === null ? "{}" : pretty(cur.text);
    let body = original + "\n";
    let header: string[] = [
      `${_COMMENT} capabilities of ${user} (${
        cur.text === null ? "new" : `revision ${cur.revision}`
      }); lines starting with ${_COMMENT} at the top are ignored`,
    ];
    const path = await Deno.makeTempFile({ prefix: "natsgate-caps-", suffix: ".json" });
    try {
      for (let round = 1;; round++) {
        await Deno.writeTextFile(path, [...header, body].join("\n"));
        const code = await _runEditor(ctx, path);
        if (code !== 0) throw new CliError(`editor exited with code ${code}; nothing written`);
        const edited = _stripComments(await Deno.readTextFile(path));
        if (edited.trim() === body.trim()) {
          if (round === 1) {
            ctx.note("no changes; nothing written");
            return;
          }
          throw new CliError(`still invalid and unchanged; nothing written: ${header[1] ?? ""}`);
        }
        const r = parseCapabilitiesJson(edited);
        if (!r.ok) {
          header = [
            `${_COMMENT} natsgate: invalid capabilities, fix and save (or save unchanged to abort):`,
            ...r.errors.map((e) => `${_COMMENT}   ${e.replace(/\n/g, " ")}`),
          ];
          body = edited;
          continue;
        }
        const doc = JSON.parse(edited);
        if (cur.text !== null && canonical(doc) === canonical(tryParse(cur.text))) {
          ctx.note("no changes; nothing written");
          return;
        }
        try {
          const rev = await bucket.write(user, serialize(doc), cur.revision);
          ctx.note(`saved capabilities of ${user} (revision ${rev})`);
          return;
        } catch (err) {
          if (!isCasConflict(err)) throw err;
          const now = await bucket.read(user);
          const keep = await Deno.makeTempFile({ prefix: "natsgate-caps-edit-", suffix: ".json" });
          await Deno.writeTextFile(keep, edited);
          throw concurrent(
            user,
            `revision ${cur.revision} became ${now.revision} while editing; your edit is in ${keep}`,
          );
        }
      }
    } finally {
      await Deno.remove(path).catch(() => {});
    }
  });
}
