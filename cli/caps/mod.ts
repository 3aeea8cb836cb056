/** `natsgate caps`: read, write, edit, grant, revoke, seed and check user capabilities in KV.
 * One file per subcommand; every write is validated first and compare-and-set, so bad input or
 * a concurrent change writes nothing.
 * @module */

import { Command } from "@commander-js/extra-typings";
import { checkCommand } from "./check.ts";
import { deleteCommand } from "./delete.ts";
import { editCommand } from "./edit.ts";
import { getCommand } from "./get.ts";
import { grantCommand } from "./grant.ts";
import { historyCommand } from "./history.ts";
import { keyCommand } from "./key.ts";
import { roleCommand } from "./role.ts";
import { listCommand } from "./list.ts";
import { revokeCommand } from "./revoke.ts";
import { seedCommand } from "./seed.ts";
import { setCommand } from "./set.ts";

export { CHECK_DENIED_EXIT, CHECK_OPS } from "./check.ts";

/**
 * Builds the `caps` command group.
 *
 * @example
 * ```ts
 * import { Command } from "@commander-js/extra-typings";
 * import { capsCommand } from "./cli/caps/mod.ts";
 * const program = new Command("natsgate").addCommand(capsCommand());
 * ```
 */
export function capsCommand() {
  return new Command("caps")
    .description("manage user capabilities in the auth KV bucket (key users.<encoded id>)")
    .addCommand(getCommand())
    .addCommand(setCommand())
    .addCommand(editCommand())
    .addCommand(grantCommand())
    .addCommand(revokeCommand())
    .addCommand(listCommand())
    .addCommand(deleteCommand())
    .addCommand(historyCommand())
    .addCommand(seedCommand())
    .addCommand(checkCommand())
    .addCommand(roleCommand())
    .addCommand(keyCommand());
}
