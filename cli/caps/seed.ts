/** `natsgate caps seed FILE`: write many users' documents from one JSON file, validated whole
 * before anything is written; `--replace` also removes users missing from the file.
 * @module */

import { type Capabilities, parseCapabilities } from "../../src/auth/capabilities.ts";
import { userKey } from "../../src/auth/user_key.ts";
import { CliError } from "../_common.ts";
import { withNats } from "../_nats.ts";
import { capsSubcommand } from "./_command.ts";
import { canonical, serialize, tryParse } from "./_doc.ts";
import {
  currentUsers,
  isCasConflict,
  message,
  openKv,
  read,
  type Stored,
  writeCas,
} from "./_kv.ts";

/** The result of comparing a seed file with the bucket. */
interface _SeedPlan {
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: string[];
}

/** Builds `caps seed`. */
export function seedCommand() {
  return capsSubcommand("seed")
    .description("write many users' capabilities from a JSON file {user: capabilities}")
    .argument("<file>", "seed file (- for stdin)")
    .option("--dry-run", "print what would change and write nothing")
    .option("--replace", "also delete users that are not in the file")
    .option("--json", "print the plan as JSON")
    .action(async (file, o) => {
      let text: string;
      try {
        text = file === "-"
          ? await new Response(Deno.stdin.readable).text()
          : await Deno.readTextFile(file);
      } catch (err) {
        throw new CliError(`cannot read ${file}: ${message(err)}`);
      }
      const wanted = _validateSeed(text);
      await withNats(o, async (nc) => {
        const kv = o.dryRun
          ? await openKv(nc, o.authBucket, false)
          : await openKv(nc, o.authBucket, true);
        const current = kv ? await currentUsers(kv) : new Map<string, Stored>();
        const plan: _SeedPlan = { added: [], changed: [], removed: [], unchanged: [] };
        for (const [user, doc] of wanted) {
          const cur = current.get(user);
          if (!cur) plan.added.push(user);
          else if (canonical(tryParse(cur.text!)) === canonical(doc)) {
            plan.unchanged.push(user);
          } else plan.changed.push(user);
        }
        if (o.replace) {
          for (const user of current.keys()) if (!wanted.has(user)) plan.removed.push(user);
        }
        for (const list of Object.values(plan)) list.sort();
        const print = () => {
          if (o.json) {
            console.log(JSON.stringify({ ...plan, dry_run: Boolean(o.dryRun) }));
            return;
          }
          for (const u of plan.added) console.log(`+ ${u}`);
          for (const u of plan.changed) console.log(`~ ${u}`);
          for (const u of plan.removed) console.log(`- ${u}`);
          console.log(
            `${o.dryRun ? "would seed" : "seeded"}: ${plan.added.length} added, ` +
              `${plan.changed.length} changed, ${plan.removed.length} removed, ` +
              `${plan.unchanged.length} unchanged`,
          );
        };
        if (o.dryRun || !kv) {
          print();
          return;
        }
        let done = 0;
        const total = plan.added.length + plan.changed.length + plan.removed.length;
        for (const user of [...plan.added, ...plan.changed, ...plan.removed]) {
          const base = plan.added.includes(user)
            ? (await read(kv, user)).revision
            : current.get(user)!.revision;
          try {
            if (plan.removed.includes(user)) {
              await kv.delete(userKey(user), { previousSeq: base });
            } else {
              await writeCas(kv, user, serialize(wanted.get(user)), base);
            }
          } catch (err) {
            if (!isCasConflict(err)) throw err;
            throw new CliError(
              `capabilities of ${user} changed concurrently; stopped after ${done} of ` +
                `${total} changes (run seed again)`,
            );
          }
          done++;
        }
        print();
      });
    });
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
