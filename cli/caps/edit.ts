/** `natsgate caps edit USER`: edit a document in `$EDITOR`; an invalid save re-opens the editor
 * with the errors on top, and the write is compare-and-set against the revision that was opened.
 * @module */

import { parseCapabilitiesJson } from "../../src/auth/capabilities.ts";
import { type CliContext, CliError, contextOf } from "../_common.ts";
import { withNats } from "../_nats.ts";
import { type BucketFlags, capsSubcommand, openBucket, type SourceHolder } from "./_command.ts";
import { canonical, pretty, serialize, tryParse } from "./_doc.ts";
import { type DocTarget, userTarget } from "./_target.ts";
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
      await editDocument(contextOf(cmd), cmd, o, userTarget(user));
    });
}

function _stripComments(text: string): string {
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length && lines[i].trimStart().startsWith(_COMMENT)) i++;
  return lines.slice(i).join("\n");
}

async function _runEditor(ctx: CliContext, path: string): Promise<number> {
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

/** Edits a user's or a role's document in `$EDITOR` (see the module doc). */
export async function editDocument(
  ctx: CliContext,
  cmd: SourceHolder,
  o: BucketFlags & { create?: boolean },
  target: DocTarget,
): Promise<void> {
  const user = target;
  await withNats(o, async (nc) => {
    const bucket = await openBucket(nc, ctx, o, cmd, "write", o.create);
    const cur = await bucket.read(user);
    if (cur.text === null && !o.create) {
      const hint = "pass --create to start a new document";
      if (target.kind === "role") throw new CliError(`${target.missing}; ${hint}`);
      throw new MissingUserError(target.name, hint);
    }
    const original = cur.text === null ? "{}" : pretty(cur.text);
    let body = original + "\n";
    let header: string[] = [
      `${_COMMENT} ${target.label} (${
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
        const r = parseCapabilitiesJson(edited, { strictTemplates: true, ...target.parse });
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
          ctx.note(`saved ${target.label} (revision ${rev})`);
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
