/** `natsgate caps role get|set|edit|list|delete|history`: role documents (`roles.<name>`), with
 * the same validation, compare-and-set, prompts and audit trail as user documents.
 * @module */

import { Command } from "@commander-js/extra-typings";
import { withNats } from "../_nats.ts";
import { capsSubcommand, openBucket } from "./_command.ts";
import {
  compact,
  parseStored,
  pretty,
  readSource,
  serialize,
  summary,
  tryParse,
  validateText,
} from "./_doc.ts";
import { deleteDocument } from "./delete.ts";
import { editDocument } from "./edit.ts";
import { printHistory } from "./history.ts";
import { contextOf, formatTable, paint, plural } from "../_common.ts";
import { roleTarget } from "./_target.ts";

const _ROLE = { kind: "role" } as const;

/**
 * Builds `caps role`.
 *
 * @example
 * ```ts ignore
 * capsCommand().addCommand(roleCommand());
 * ```
 */
export function roleCommand() {
  return new Command("role")
    .description("manage roles: capability documents at roles.<name> that users hold")
    .addCommand(_get())
    .addCommand(_set())
    .addCommand(_edit())
    .addCommand(_list())
    .addCommand(_delete())
    .addCommand(_history());
}

function _get() {
  return capsSubcommand("get", ["natsgate caps role get viewer"])
    .description("print a role's document (pretty JSON; --json: one line)")
    .argument("<name>", "role name").option("--json", "print compact JSON")
    .action(async (name, o, cmd) => {
      const ctx = contextOf(cmd);
      const t = roleTarget(name);
      await withNats(o, async (nc) => {
        const bucket = await openBucket(nc, ctx, o, cmd, "read");
        const cur = await bucket.require(t);
        ctx.print(o.json ? compact(cur.text) : pretty(cur.text));
        const { doc, errors } = parseStored(cur.text, _ROLE);
        if (!doc) {
          ctx.note(`warning: this role is invalid and grants nothing: ${errors.join("; ")}`);
        }
      });
    });
}

function _set() {
  return capsSubcommand("set", [
    `natsgate caps role set viewer --json '{"subjects":["session.{user}.{session}.state"]}'`,
  ])
    .description("validate and write a role (from --json, --file or - for stdin)")
    .argument("<name>", "role name").argument("[source]", "- to read the document from stdin")
    .option("--json <document>", "the role document")
    .option("--file <path>", "read the document from a file")
    .option("--create", "create the auth bucket when it does not exist")
    .action(async (name, source, o, cmd) => {
      const ctx = contextOf(cmd);
      const t = roleTarget(name);
      const doc = validateText(await readSource(ctx, o, source), "role", _ROLE);
      await withNats(o, async (nc) => {
        const bucket = await openBucket(nc, ctx, o, cmd, "write", o.create);
        const rev = await bucket.write(t, serialize(doc));
        ctx.note(`set ${t.label} (revision ${rev})`);
      });
    });
}

function _edit() {
  return capsSubcommand("edit", ["natsgate caps role edit viewer"])
    .description("edit a role in $EDITOR; validated, written compare-and-set")
    .argument("<name>", "role name")
    .option("--create", "start a new role when it (or the auth bucket) is missing")
    .action(async (name, o, cmd) => {
      await editDocument(contextOf(cmd), cmd, o, roleTarget(name));
    });
}

function _list() {
  return capsSubcommand("list", ["natsgate caps role list", "natsgate caps role list --json"])
    .description("list roles with a one-line summary")
    .option("--json", "print a JSON array")
    .action(async (o, cmd) => {
      const ctx = contextOf(cmd);
      await withNats(o, async (nc) => {
        const bucket = await openBucket(nc, ctx, o, cmd, "read");
        const rows = [...(await bucket.roles()).entries()]
          .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
        if (o.json) {
          ctx.print(JSON.stringify(rows.map(([role, s]) => ({
            role,
            revision: s.revision,
            valid: parseStored(s.text!, _ROLE).doc !== null,
            capabilities: tryParse(s.text!) ?? s.text,
          }))));
          return;
        }
        const table = ctx.tty.stdout ? [["ROLE", "REV", "CAPABILITIES"]] : [];
        for (const [role, s] of rows) {
          const valid = parseStored(s.text!, _ROLE).doc !== null;
          const what = valid ? summary(s.text) : `INVALID (grants nothing)`;
          table.push([role, String(s.revision), valid ? what : paint(ctx.color, 31, what)]);
        }
        if (rows.length > 0) {
          for (const line of formatTable(table, ctx.tty.stdout)) ctx.print(line);
        }
        ctx.note(`${plural(rows.length, "role")} in bucket ${bucket.name}`);
      });
    });
}

function _delete() {
  return capsSubcommand("delete", [
    "natsgate caps role delete viewer        # asks [y/N] on a terminal",
    "natsgate caps role delete viewer --yes  # scripts",
  ])
    .description("delete a role: every session holding it loses its grants (asks first)")
    .argument("<name>", "role name")
    .option("-y, --yes", "do not ask for confirmation (required when stdin is no terminal)")
    .action(async (name, o, cmd) => {
      const t = roleTarget(name);
      await deleteDocument(contextOf(cmd), cmd, o, t, t.label, "every session holding it loses it");
    });
}

function _history() {
  return capsSubcommand("history", ["natsgate caps role history viewer --json"])
    .description("list the KV revisions of a role: when, by whom, patterns added and removed")
    .argument("<name>", "role name").option("--json", "print a JSON array")
    .action(async (name, o, cmd) => {
      const ctx = contextOf(cmd);
      const t = roleTarget(name);
      await withNats(o, async (nc) => {
        const bucket = await openBucket(nc, ctx, o, cmd, "read");
        const revisions = await bucket.history(t);
        if (revisions.length === 0) await bucket.require(t); // throws "no role NAME"
        printHistory(ctx, revisions, o.json ?? false, _ROLE);
      });
    });
}
