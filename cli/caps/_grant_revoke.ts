/** The shared body of `caps grant` and `caps revoke`: flags, validation and the compare-and-set
 * loop that retries when another writer wins. Neither creates anything unless `grant --create`.
 * @module */

import { Option } from "@commander-js/extra-typings";
import type { Capabilities } from "../../src/auth/capabilities.ts";
import { type CliContext, CliError, paint, UsageError } from "../_common.ts";
import { withNats } from "../_nats.ts";
import { type BucketFlags, capsSubcommand, openBucket, type SourceHolder } from "./_command.ts";
import { applyDelta, collect, type Delta, deltaDoc, deltaLines, pairs } from "./_delta.ts";
import { parseStored, serialize, validateValue } from "./_doc.ts";
import { CAS_ATTEMPTS, concurrent, isCasConflict, MissingUserError } from "./_kv.ts";
import { roleTarget, userTarget } from "./_target.ts";

/** Flags of grant and revoke. */
interface _Flags extends BucketFlags {
  json?: boolean;
  create?: boolean;
  /** Edit this role's document instead of a user's. */
  role?: string;
}

/** Grant or revoke `d` for `user` (or for the role `o.role`), printing what really changed. */
export async function grantOrRevoke(
  ctx: CliContext,
  cmd: SourceHolder,
  o: _Flags,
  user: string | undefined,
  d: Delta,
  mode: "grant" | "revoke",
): Promise<void> {
  if ((user === undefined) === (o.role === undefined)) {
    throw new CliError(`${mode}: give exactly one of USER or --role NAME`, 2);
  }
  const target = o.role !== undefined ? roleTarget(o.role) : userTarget(user!);
  const missing = (hint = "") =>
    target.kind === "user"
      ? new MissingUserError(target.name, hint)
      : new CliError(`${target.missing}${hint ? `; ${hint}` : ""}`);
  const who = target.kind === "user" ? target.name : target.label;
  if (deltaLines(d).length === 0) {
    throw new UsageError(
      `nothing to ${mode}: pass --subject, --publish, --command, --bucket or --stream`,
    );
  }
  validateValue(deltaDoc(d), `${mode}`);
  await withNats(o, async (nc) => {
    const bucket = mode === "grant"
      ? await openBucket(nc, ctx, o, cmd, "write", o.create)
      : await openBucket(nc, ctx, o, cmd, "existing");
    for (let attempt = 1;; attempt++) {
      const cur = await bucket.read(target);
      let doc: Capabilities = {};
      if (cur.text !== null) {
        const parsed = parseStored(cur.text, target.parse);
        if (!parsed.doc) {
          throw new CliError(
            `stored ${target.label} ${target.kind === "role" ? "is" : "are"} invalid (${
              parsed.errors.join("; ")
            }); ` +
              "fix them with caps edit or caps set",
          );
        }
        doc = JSON.parse(cur.text) as Capabilities;
      } else if (mode === "revoke") {
        throw missing();
      } else if (!o.create) {
        throw missing(`pass --create to grant to a new ${target.kind}`);
      }
      const { doc: next, changed } = applyDelta(doc, d, mode);
      const lines = deltaLines(changed);
      let revision = cur.revision;
      if (lines.length > 0) {
        validateValue(next, "capabilities", target.parse);
        try {
          revision = await bucket.write(target, serialize(next), cur.revision);
        } catch (err) {
          if (!isCasConflict(err)) throw err;
          if (attempt >= CAS_ATTEMPTS) throw concurrent(target, `${attempt} attempts`);
          continue;
        }
      }
      if (o.json) {
        ctx.print(JSON.stringify({
          [target.kind]: target.name,
          revision,
          changed: lines.length > 0,
          [mode === "grant" ? "granted" : "revoked"]: deltaDoc(changed),
          capabilities: next,
        }));
      } else if (lines.length === 0) {
        ctx.note(
          `${who}: nothing to ${mode} (${mode === "grant" ? "already granted" : "not granted"})`,
        );
      } else {
        const sign = mode === "grant" ? paint(ctx.color, 32, "+") : paint(ctx.color, 31, "-");
        for (const l of lines) ctx.print(`${sign} ${l}`);
        ctx.note(
          `${mode === "grant" ? "granted to" : "revoked from"} ${who} (revision ${revision})`,
        );
      }
      return;
    }
  });
}

/** The options `grant` and `revoke` share; the caller adds its own and the action. */
export function grantRevokeBase(mode: "grant" | "revoke", description: string, lines: string[]) {
  const verb = mode;
  return capsSubcommand(mode, lines)
    .description(description)
    .argument("[user]", "user id (the token's sub claim)")
    .option("--role <name>", `${verb} on a role's document (roles.<name>) instead of a user's`)
    .addOption(
      new Option("--subject <pattern>", `${verb} a sub pattern (repeatable)`)
        .argParser(collect).default([] as string[]),
    )
    .addOption(
      new Option("--publish <pattern>", `${verb} a pub pattern (repeatable)`)
        .argParser(collect).default([] as string[]),
    )
    .addOption(
      new Option("--command <pattern>", `${verb} a cmd pattern (repeatable)`)
        .argParser(collect).default([] as string[]),
    )
    .addOption(
      new Option("--bucket <bucket=key>", `${verb} a KV key pattern (repeatable; key default >)`)
        .argParser(collect).default([] as string[]),
    )
    .addOption(
      new Option("--stream <stream=filter>", `${verb} a stream filter (repeatable; default >)`)
        .argParser(collect).default([] as string[]),
    )
    .option("--json", "print the result as JSON");
}

/** The delta of the pattern flags. */
export function deltaOf(o: {
  subject: string[];
  publish: string[];
  command: string[];
  bucket: string[];
  stream: string[];
}): Delta {
  return {
    subjects: [...new Set(o.subject)],
    publish: [...new Set(o.publish)],
    commands: [...new Set(o.command)],
    buckets: pairs(o.bucket, "--bucket"),
    streams: pairs(o.stream, "--stream"),
  };
}
