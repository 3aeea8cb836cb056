/** `natsgate caps list`: every user with a one-line summary of their capabilities.
 * @module */

import { summarizeCapabilities } from "../../src/auth/capabilities.ts";
import { userKey } from "../../src/auth/user_key.ts";
import { withNats } from "../_nats.ts";
import { capsSubcommand, openBucket } from "./_command.ts";
import { parseStored, summary, tryParse } from "./_doc.ts";
import { contextOf, formatTable, paint, plural } from "../_common.ts";
import { roleTarget } from "./_target.ts";

/** Builds `caps list`. */
export function listCommand() {
  return capsSubcommand("list", [
    "natsgate caps list",
    "natsgate caps list --json | jq -r '.[] | select(.valid | not) | .user'",
    "natsgate caps list | cut -f1        # piped: tab-separated, no header",
  ])
    .description("list users with a one-line summary of their capabilities")
    .option("--role <name>", "only the users whose document lists this role")
    .option("--json", "print a JSON array")
    .action(async (o, cmd) => {
      const ctx = contextOf(cmd);
      const role = o.role === undefined ? undefined : roleTarget(o.role).name;
      await withNats(o, async (nc) => {
        const bucket = await openBucket(nc, ctx, o, cmd, "read");
        const users = await bucket.users();
        const rows = [...users.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
          .filter(([, s]) => role === undefined || _holds(s.text!, role));
        if (o.json) {
          ctx.print(JSON.stringify(rows.map(([user, s]) => {
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
        const table = ctx.tty.stdout ? [["USER", "REV", "CAPABILITIES"]] : [];
        let invalid = 0;
        for (const [user, s] of rows) {
          const valid = parseStored(s.text!).doc !== null;
          if (!valid) invalid++;
          const what = summary(s.text);
          table.push([user, String(s.revision), valid ? what : paint(ctx.color, 31, what)]);
        }
        if (rows.length > 0) {
          for (const line of formatTable(table, ctx.tty.stdout)) ctx.print(line);
        }
        ctx.note(
          rows.length === 0
            ? `no users${role ? ` holding role ${role}` : ""} in bucket ${bucket.name}`
            : `${plural(rows.length, "user")}${
              role ? ` holding role ${role}` : ""
            } in bucket ${bucket.name}` +
              (invalid ? `, ${invalid} invalid (they grant nothing)` : ""),
        );
      });
    });
}

/** Whether a stored user document (valid) lists `role`. */
function _holds(text: string, role: string): boolean {
  return parseStored(text).doc?.roles?.includes(role) ?? false;
}
