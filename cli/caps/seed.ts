/** `natsgate caps seed FILE`: write many users' documents from one JSON file, validated whole
 * before anything is written. `--dry-run` shows the plan pattern by pattern; `--replace` also
 * removes users missing from the file and asks first (on a terminal; `--yes` in scripts).
 * @module */

import { type Capabilities, parseCapabilities } from "../../src/auth/capabilities.ts";
import {
  type CliContext,
  CliError,
  confirmDestructive,
  contextOf,
  paint,
  plural,
  yesOption,
} from "../_common.ts";
import { withNats } from "../_nats.ts";
import { bucketRef, capsSubcommand, openBucket } from "./_command.ts";
import { type Change, changesJson, diffCapabilities, formatChange } from "./_diff.ts";
import { serialize, tryParse } from "./_doc.ts";
import { AuthBucket, isCasConflict, message, MissingBucketError, type Stored } from "./_kv.ts";

/** The result of comparing a seed file with the bucket. */
export interface SeedPlan {
  /** Users in the file without a document. */
  added: string[];
  /** Users whose document differs. */
  changed: string[];
  /** Users not in the file (only with `--replace`). */
  removed: string[];
  /** Users whose document is the same. */
  unchanged: string[];
  /** What each added, changed or removed user gains and loses. */
  changes: Map<string, Change[]>;
}

/**
 * Compares the wanted documents with the current ones.
 *
 * @example
 * ```ts ignore
 * const plan = seedPlan(new Map([["u1", { subjects: ["a"] }]]), new Map(), false);
 * // plan.added = ["u1"], plan.changes.get("u1") = [{ op: "+", field: "subjects", value: "a" }]
 * ```
 */
export function seedPlan(
  wanted: ReadonlyMap<string, Capabilities>,
  current: ReadonlyMap<string, Stored>,
  replace: boolean,
): SeedPlan {
  const plan: SeedPlan = { added: [], changed: [], removed: [], unchanged: [], changes: new Map() };
  for (const [user, doc] of wanted) {
    const cur = current.get(user);
    const before = cur ? tryParse(cur.text!) ?? null : null;
    const changes = diffCapabilities(before, doc);
    if (!cur) plan.added.push(user);
    else if (changes.length === 0 && before !== null) {
      plan.unchanged.push(user);
      continue;
    } else plan.changed.push(user);
    plan.changes.set(user, changes);
  }
  if (replace) {
    for (const [user, s] of current) {
      if (wanted.has(user)) continue;
      plan.removed.push(user);
      plan.changes.set(user, diffCapabilities(tryParse(s.text!) ?? null, null));
    }
  }
  for (const list of [plan.added, plan.changed, plan.removed, plan.unchanged]) list.sort();
  return plan;
}

/** Builds `caps seed`. */
export function seedCommand() {
  return capsSubcommand("seed", [
    "natsgate caps seed users.json --dry-run           # the plan, pattern by pattern",
    "natsgate caps seed users.json",
    "natsgate caps seed users.json --replace --yes     # also remove users not in the file",
    "natsgate caps seed users.json --auth-bucket auth2 --create",
  ])
    .description("write many users' capabilities from a JSON file {user: capabilities}")
    .argument("<file>", "seed file (- for stdin)")
    .option("--dry-run", "print what would change and write nothing")
    .option("--replace", "also delete users that are not in the file (asks first)")
    .addOption(yesOption())
    .option("--create", "create the auth bucket when it does not exist")
    .option("--json", "print the plan as JSON")
    .action(async (file, o, cmd) => {
      const ctx = contextOf(cmd);
      let text: string;
      try {
        text = file === "-" ? await ctx.readText() : await Deno.readTextFile(file);
      } catch (err) {
        throw new CliError(`cannot read ${file === "-" ? "stdin" : file}: ${message(err)}`);
      }
      const wanted = _validateSeed(text);
      await withNats(o, async (nc) => {
        let bucket: AuthBucket | null = null;
        if (!o.dryRun) bucket = await openBucket(nc, ctx, o, cmd, "write", o.create);
        else if (await AuthBucket.exists(nc, o.authBucket)) {
          bucket = await openBucket(nc, ctx, o, cmd, "read");
        } else if (!o.create) throw new MissingBucketError(bucketRef(o, cmd), true);
        const current = bucket ? await bucket.users() : new Map<string, Stored>();
        const plan = seedPlan(wanted, current, o.replace === true);
        const print = _printer(ctx, plan, o.json === true, o.dryRun === true);
        if (!o.dryRun && plan.removed.length > 0 && bucket) {
          if (!o.yes && ctx.tty.stdin) print();
          await confirmDestructive(
            ctx,
            `remove ${plural(plan.removed.length, "user")} (${_names(plan.removed)}) ` +
              `from bucket ${bucket.name}?`,
            { yes: o.yes, action: "remove users with seed --replace" },
          );
        }
        if (bucket && !o.dryRun) await _apply(bucket, plan, wanted, current);
        print();
        const what = o.dryRun ? "would seed" : "seeded";
        ctx.note(
          `${what}${bucket ? "" : ` (would create bucket ${o.authBucket})`}: ` +
            `${plan.added.length} added, ${plan.changed.length} changed, ` +
            `${plan.removed.length} removed, ${plan.unchanged.length} unchanged`,
        );
      });
    });
}

/** Prints the plan once (stdout): per user `+`/`~`/`-` and the patterns it gains or loses. */
function _printer(ctx: CliContext, plan: SeedPlan, json: boolean, dryRun: boolean): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (json) {
      ctx.print(JSON.stringify({
        added: plan.added,
        changed: plan.changed,
        removed: plan.removed,
        unchanged: plan.unchanged,
        dry_run: dryRun,
        changes: Object.fromEntries(
          [...plan.changes].map(([user, changes]) => [user, changesJson(changes)]),
        ),
      }));
      return;
    }
    const colour = (op: string) => op === "+" ? 32 : op === "-" ? 31 : 33;
    for (const [sign, users] of [["+", plan.added], ["~", plan.changed], ["-", plan.removed]]) {
      for (const user of users as string[]) {
        ctx.print(paint(ctx.color, colour(sign as string), `${sign} ${user}`));
        for (const c of plan.changes.get(user) ?? []) {
          ctx.print(`    ${paint(ctx.color, colour(c.op), formatChange(c))}`);
        }
      }
    }
  };
}

async function _apply(
  bucket: AuthBucket,
  plan: SeedPlan,
  wanted: ReadonlyMap<string, Capabilities>,
  current: ReadonlyMap<string, Stored>,
): Promise<void> {
  let done = 0;
  const total = plan.added.length + plan.changed.length + plan.removed.length;
  for (const user of [...plan.added, ...plan.changed, ...plan.removed]) {
    const base = current.get(user)?.revision ?? (await bucket.read(user)).revision;
    try {
      if (plan.removed.includes(user)) await bucket.remove(user, base);
      else await bucket.write(user, serialize(wanted.get(user)), base);
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      throw new CliError(
        `capabilities of ${user} changed concurrently; stopped after ${done} of ` +
          `${total} changes (run seed again)`,
      );
    }
    done++;
  }
}

function _names(users: readonly string[]): string {
  return users.length <= 5 ? users.join(", ") : `${users.slice(0, 5).join(", ")}, ...`;
}

function _validateSeed(text: string): Map<string, Capabilities> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CliError(`invalid seed file: not JSON: ${message(err)}`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new CliError("invalid seed file: expected a JSON object of user id → capabilities");
  }
  const out = new Map<string, Capabilities>();
  const errors: string[] = [];
  for (const [user, caps] of Object.entries(value as Record<string, unknown>)) {
    if (user.length === 0) {
      errors.push('"": empty user id');
      continue;
    }
    const r = parseCapabilities(caps);
    if (!r.ok) {
      for (const e of r.errors) errors.push(`${JSON.stringify(user)}: ${e}`);
    } else out.set(user, caps as Capabilities);
  }
  if (errors.length) throw new CliError(`invalid seed file: ${errors.join("; ")}`);
  return out;
}
