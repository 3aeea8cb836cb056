/** The browser SDK served at `/client.js` (src/client/dist/) is the bundle of the TypeScript
 * sources: rebuilt into a temporary folder, it must equal the committed files byte for byte.
 * @module */

import assert from "node:assert/strict";
import { staleFiles } from "../scripts/bundle_client.ts";

Deno.test("bundle: src/client/dist/client.js and client.d.ts match a fresh `deno task bundle`", async () => {
  const stale = await staleFiles();
  assert.deepEqual(stale, [], `stale: ${stale.join(", ")}; run \`deno task bundle\``);
});
