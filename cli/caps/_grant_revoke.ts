/** The shared body of `caps grant` and `caps revoke`: flags, validation and the compare-and-set
 * loop that retries when another writer wins.
 * @module */

import { Option } from "@commander-js/extra-typings";
import type { Capabilities } from "../../src/auth/capabilities.ts";
import { CliError } from "../_common.ts";
import { withNats } from "../_nats.ts";
import { type BucketFlags, capsSubcommand } from "./_command.ts";
import { applyDelta, collect, type Delta, deltaDoc, deltaLines, pairs } from "./_delta.ts";
import { parseStored, serialize, validateValue } from "./_doc.ts";
import {
  CAS_ATTEMPTS,
  concurrent,
  isCasConflict,
  openForUser,
  openKv,
  read,
  writeCas,
} from "./_kv.ts";

/** Grant or revoke `d` for `user`, printing what really changed. */
export async function grantOrRevoke(
  o: BucketFlags & { json?: boolean },
  user: string,
  d: Delta,
  mode: "grant" | "revoke",
): Promise<void> {
  if (deltaLines(d).length === 0) {
    throw new CliError(
      `nothing to ${mode}: pass --subject, --publish, --command, --bucket or --stream`,
      2,
    );
  }
  validateValue(deltaDoc(d), `${mode}`);
  await withNats(o, async (nc) => {
    const kv = mode === "grant"
      ? (await openKv(nc, o.authBucket, true))!
      : await openForUser(nc, o.authBucket, user);
    for (let attempt = 1;; attempt++) {
      const cur = await read(kv, user);
      let doc: Capabilities = {};
      if (cur.text !== null) {
        const parsed = parseStored(cur.text);
        if (!parsed.doc) {
          throw new CliError(
            `stored capabilities of ${user} are invalid (${parsed.errors.join("; ")}); ` +
              "fix them with caps edit or caps set",
          );
        }
        doc = JSON.parse(cur.text) as Capabilities;
      } else if (mode === "revoke") {
        throw new CliError(`no capabilities for ${user}`);
      }
      const { doc: next, changed } = applyDelta(doc, d, mode);
      const lines = deltaLines(changed);
      let revision = cur.revision;
      if (lines.length > 0) {
        validateValue(next);
        try {
          revision = await writeCas(kv, user, serialize(next), cur.revision);
        } catch (err) {
          if (!isCasConflict(err)) throw err;
          if (attempt >= CAS_ATTEMPTS) throw concurrent(user, `${attempt} attempts`);
          continue;
        }
      }
      if (o.json) {
        console.log(JSON.stringify({
          user,
          revision,
          changed: lines.length > 0,
          [mode === "grant" ? "granted" : "revoked"]: deltaDoc(changed),
          capabilities: next,
        }));
      } else if (lines.length === 0) {
        console.log(
          `${user}: nothing to ${mode} (${mode === "grant" ? "already granted" : "not granted"})`,
        );
      } else {
        const verb = mode === "grant" ? "granted to" : "revoked from";
        console.log(`${verb} ${user} (revision ${revision}):`);
        for (const l of lines) console.log(`  ${mode === "grant" ? "+" : "-"} ${l}`);
      }
      return;
    }
  });
}

/** The `grant` or `revoke` subcommand. */
export function grantRevokeCommand(mode: "grant" | "revoke") {
  const verb = mode === "grant" ? "grant" : "revoke";
  return capsSubcommand(mode)
    .description(
      mode === "grant"
        ? "add patterns to a user's capabilities (no duplicates)"
        : "remove exact patterns from a user's capabilities (empty bucket/stream entries go too)",
    )
    .argument("<user>", "user id (the token's sub claim)")
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
    .option("--json", "print the result as JSON")
    .action(async (user, o) => {
      const d: Delta = {
        subjects: [...new Set(o.subject)],
        publish: [...new Set(o.publish)],
        commands: [...new Set(o.command)],
        buckets: pairs(o.bucket, "--bucket"),
        streams: pairs(o.stream, "--stream"),
      };
      await grantOrRevoke(o, user, d, mode);
    });
}
