/** `natsgate caps key USER`: print a user's encoded token, as the gateway uses it in keys and
 * `{user}` templates (`bob.x` → `bob=2Ex`), for backends that publish to per-user subjects.
 * @module */

import { Command } from "@commander-js/extra-typings";
import { validateUserId } from "../../src/auth/user_key.ts";
import { encodeTemplateValue } from "../../src/auth/templates.ts";
import { CliError } from "../_common.ts";

/** Builds `caps key`. */
export function keyCommand() {
  return new Command("key")
    .description("print USER encoded as one subject token (users.<token>, {user} templates)")
    .argument("<user>", "user id (the token's sub claim)")
    .action((user) => {
      const err = validateUserId(user);
      const token = encodeTemplateValue(user);
      if (err !== null || token === null) throw new CliError(`invalid user id: ${err}`, 2);
      console.log(token);
    });
}
