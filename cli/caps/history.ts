/** `natsgate caps history USER`: every revision the bucket keeps of a user's document, with
 * when, who (the `Natsgate-Actor` header of CLI writes) and which patterns it added or removed.
 * @module */

import { withNats } from "../_nats.ts";
import { capsSubcommand, openBucket } from "./_command.ts";
import { changesJson, diffCapabilities, formatChange } from "./_diff.ts";
import { parseStored, tryParse } from "./_doc.ts";
import { type CliContext, contextOf, formatTable, paint } from "../_common.ts";
import type { ParseOptions } from "../../src/auth/capabilities.ts";
import { MissingUserError, type Revision } from "./_kv.ts";

/** Builds `caps history`. */
export function historyCommand() {
  return capsSubcommand("history", [
    "natsgate caps history alice",
    "natsgate caps history alice --json | jq '.[] | {revision, actor, added, removed}'",
    "natsgate caps history alice | grep -F '+ publish'   # piped: one tab-separated row per change",
  ])
    .description(
      "list the KV revisions of a user's capabilities: when, by whom, patterns added and removed",
    )
    .argument("<user>", "user id")
    .option("--json", "print a JSON array")
    .action(async (user, o, cmd) => {
      const ctx = contextOf(cmd);
      await withNats(o, async (nc) => {
        const bucket = await openBucket(nc, ctx, o, cmd, "read");
        const revisions = await bucket.history(user);
        if (revisions.length === 0) throw new MissingUserError(user);
        printHistory(ctx, revisions, o.json ?? false);
      });
    });
}

/**
 * Prints revisions with what each changed: a table (tab-separated rows when piped), or a JSON
 * array with `json`. `parse` says how a revision's document is validated (a role's: `kind: role`).
 */
export function printHistory(
  ctx: CliContext,
  revisions: readonly Revision[],
  json: boolean,
  parse: ParseOptions = {},
): void {
  const audit = auditTrail(revisions, parse);
  if (json) {
    ctx.print(JSON.stringify(audit.map((a) => ({
      revision: a.revision,
      time: a.created.toISOString(),
      operation: a.operation,
      actor: a.actor ?? null,
      ...changesJson(a.changes),
      ...(a.invalid ? { valid: false, errors: a.invalid } : {}),
      ...(a.text !== null ? { capabilities: tryParse(a.text) ?? a.text } : {}),
    }))));
    return;
  }
  const rows = ctx.tty.stdout ? [["REV", "TIME", "OP", "BY", "CHANGES"]] : [];
  for (const a of audit) {
    const lines = a.changes.map((c) =>
      paint(ctx.color, c.op === "+" ? 32 : c.op === "-" ? 31 : 33, formatChange(c))
    );
    if (a.invalid) {
      lines.push(paint(ctx.color, 31, `! INVALID (grants nothing): ${a.invalid.join("; ")}`));
    }
    if (lines.length === 0) lines.push("(no change)");
    const head = [String(a.revision), a.created.toISOString(), a.operation, a.actor ?? "-"];
    lines.forEach((line, i) => {
      const cells = i === 0 || !ctx.tty.stdout ? head : head.map(() => "");
      rows.push([...cells, line]);
    });
  }
  for (const line of formatTable(rows, ctx.tty.stdout)) ctx.print(line);
}

/** A revision with what it changed against the one before (a delete marker means "nothing"). */
export interface AuditEntry extends Revision {
  /** Patterns added and removed by this revision. */
  changes: ReturnType<typeof diffCapabilities>;
  /** Validation errors when this revision's document is invalid (it grants nothing). */
  invalid?: string[];
}

/**
 * Pairs each revision with its predecessor and diffs them, oldest first.
 *
 * @example
 * ```ts ignore
 * auditTrail(await bucket.history("alice")).map((a) => a.changes.map(formatChange));
 * ```
 */
export function auditTrail(
  revisions: readonly Revision[],
  parse: ParseOptions = {},
): AuditEntry[] {
  let before: unknown = null;
  return revisions.map((r) => {
    const after = r.text === null ? null : tryParse(r.text) ?? null;
    const changes = diffCapabilities(before, after);
    before = after;
    const invalid = r.text === null ? undefined : parseStored(r.text, parse).errors;
    return { ...r, changes, ...(invalid && invalid.length ? { invalid } : {}) };
  });
}
