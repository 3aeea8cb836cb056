/** `natsgate caps check USER OP TARGET`: whether a user may do an operation, with the deciding
 * rule, decided by the same engine and options as the gateway.
 * @module */

import {
  checkCommand as checkCmd,
  checkKv,
  checkPublish,
  checkStream,
  checkSubscribe,
  type Decision,
} from "../../src/auth/capabilities.ts";
import { decisionGrants, describeSource } from "../../src/auth/effective.ts";
import {
  validateBucketName,
  validateKvKey,
  validateStreamName,
  validateSubject,
} from "../../src/protocol/subject.ts";
import { CliError, contextOf, paint, UsageError } from "../_common.ts";
import { withNats } from "../_nats.ts";
import { capsSubcommand, openBucket } from "./_command.ts";
import { type Explained, explainUser, parseClaims } from "./_effective.ts";

/** Exit code of `caps check` when the operation is denied. */
export const CHECK_DENIED_EXIT = 3;

/** Operations `caps check` understands, as in the protocol. */
export const CHECK_OPS = ["sub", "pub", "cmd", "kv_sub", "js_sub"] as const;

/** Builds `caps check`. */
export function checkCommand() {
  return capsSubcommand("check", [
    "natsgate caps check alice sub chat.room.1",
    "natsgate caps check alice kv_sub todos --pattern 'user.alice.>'",
    "natsgate caps check alice js_sub CHAT --filter chat.room.1 --json",
    "natsgate caps check alice pub chat.room.1 && echo allowed   # exit 0 allow, 3 deny",
  ])
    .description(
      `explain whether USER may do OP on TARGET, with the deciding rule ` +
        `(exit 0 allow, ${CHECK_DENIED_EXIT} deny)`,
    )
    .argument("<user>", "user id")
    .argument("<op>", `one of ${CHECK_OPS.join(", ")}`)
    .argument("<target>", "subject (sub, pub, cmd), bucket (kv_sub) or stream (js_sub)")
    .option("--pattern <key>", "kv_sub key pattern (default >)")
    .option("--filter <subject>", "js_sub filter subject (default >)")
    .option("--default-role <name>", "the gateway's --default-role")
    .option("--jwt-roles-claim <claim>", "the gateway's --jwt-roles-claim")
    .option("--claims <json>", "the token's claims (for {claim:NAME} and the roles claim)")
    .option("--session <id>", "a session id for {session} templates (without: they grant nothing)")
    .option("--json", "print the verdict as JSON")
    .action(async (user, op, target, o, cmd) => {
      const ctx = contextOf(cmd);
      const claims = parseClaims(o.claims);
      if (!(CHECK_OPS as readonly string[]).includes(op)) {
        throw new UsageError(`unknown op ${JSON.stringify(op)}: use ${CHECK_OPS.join(", ")}`);
      }
      if (o.pattern !== undefined && op !== "kv_sub") {
        throw new UsageError("--pattern only applies to kv_sub");
      }
      if (o.filter !== undefined && op !== "js_sub") {
        throw new UsageError("--filter only applies to js_sub");
      }
      const invalid = validateTarget(op, target, o.pattern, o.filter);
      if (invalid) throw new UsageError(invalid);
      let explained: Explained | undefined;
      let decision = await withNats(o, async (nc): Promise<Decision> => {
        const bucket = await openBucket(nc, ctx, o, cmd, "read");
        explained = await explainUser(bucket, user, {
          policy: { defaultRole: o.defaultRole, rolesClaim: o.jwtRolesClaim },
          claims,
          session: o.session,
        });
        const set = explained.eff.set;
        switch (op) {
          case "sub":
            return checkSubscribe(set, target);
          case "pub":
            return checkPublish(set, target);
          case "cmd":
            return checkCmd(set, target);
          case "kv_sub":
            return checkKv(set, target, o.pattern ?? ">");
          default:
            return checkStream(set, target, o.filter ?? ">");
        }
      });
      const notes = explained?.notes ?? [];
      if (!decision.allowed && explained?.eff.roles.length === 0 && notes.length > 0) {
        // Nothing applied at all: the reason is the missing or invalid document.
        decision = { allowed: false, reason: notes.shift()! };
      }
      const grants = explained ? decisionGrants(explained.eff, decision) : [];
      const what = `${op} ${target}${
        op === "kv_sub" ? ` ${o.pattern ?? ">"}` : op === "js_sub" ? ` ${o.filter ?? ">"}` : ""
      }`;
      if (o.json) {
        ctx.print(JSON.stringify({
          user,
          op,
          target,
          ...(op === "kv_sub" ? { pattern: o.pattern ?? ">" } : {}),
          ...(op === "js_sub" ? { filter: o.filter ?? ">" } : {}),
          allowed: decision.allowed,
          ...(decision.allowed ? { rule: decision.rule } : { reason: decision.reason }),
          from: grants.map((g) => ({
            source: describeSource(g.source),
            pattern: g.pattern,
            template: g.template,
          })),
          roles: explained?.eff.roles ?? [],
          notes,
        }));
      } else if (decision.allowed) {
        ctx.print(
          `${paint(ctx.color, 32, "allow")}: ${user} may ${what}: granted by ${decision.rule}`,
        );
      } else {
        ctx.print(`${paint(ctx.color, 31, "deny")}: ${user} may not ${what}: ${decision.reason}`);
      }
      if (!o.json) {
        for (const g of grants) {
          const tpl = g.template === g.pattern ? "" : ` (expanded from ${g.template})`;
          ctx.print(`  from ${describeSource(g.source)}: ${g.pattern}${tpl}`);
        }
        for (const n of notes) ctx.print(`  note: ${n}`);
      }
      if (!decision.allowed) {
        throw new CliError(`denied: ${user} may not ${what}`, CHECK_DENIED_EXIT);
      }
    });
}

/** Why `target` (and `pattern`/`filter`) is invalid for `op`, or null when it is valid. */
export function validateTarget(
  op: string,
  target: string,
  pattern?: string,
  filter?: string,
): string | null {
  switch (op) {
    case "sub": {
      const err = validateSubject(target);
      return err ? `invalid subject ${JSON.stringify(target)}: ${err}` : null;
    }
    case "pub":
    case "cmd": {
      const err = validateSubject(target, { wildcards: false });
      return err ? `invalid subject ${JSON.stringify(target)}: ${err}` : null;
    }
    case "kv_sub": {
      const err = validateBucketName(target);
      if (err) return `invalid bucket ${JSON.stringify(target)}: ${err}`;
      const kErr = pattern === undefined ? null : validateKvKey(pattern);
      return kErr ? `invalid key pattern ${JSON.stringify(pattern)}: ${kErr}` : null;
    }
    default: {
      const err = validateStreamName(target);
      if (err) return `invalid stream ${JSON.stringify(target)}: ${err}`;
      const fErr = filter === undefined ? null : validateSubject(filter);
      return fErr ? `invalid filter ${JSON.stringify(filter)}: ${fErr}` : null;
    }
  }
}
