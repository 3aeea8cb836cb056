/** `deno task nats:install`: makes sure nats-server >= 2.10 is available, fetching it if needed.
 * Prints the binary's path and version on stdout; errors go to stderr with exit code 1.
 * @module */

import { installNatsServer, natsServerVersion } from "../src/nats/install.ts";

if (import.meta.main) {
  try {
    const bin = await installNatsServer({ log: (l) => console.error(`nats:install: ${l}`) });
    console.log(`${bin} ${await natsServerVersion(bin)}`);
  } catch (err) {
    console.error(`nats:install: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
}
