/** Tests of token minting helpers: durations as the CLI takes them.
 * @module */

import assert from "node:assert/strict";
import { parseDuration } from "./mint.ts";

Deno.test("parseDuration", () => {
  const cases: Array<[string, number]> = [
    ["5", 5000],
    ["250ms", 250],
    ["1.5s", 1500],
    ["2m", 120000],
    ["1h", 3600000],
    ["1d", 86400000],
  ];
  for (const [s, ms] of cases) assert.equal(parseDuration(s), ms, s);
  for (const bad of ["", "x", "-1s", "1w", "1 h"]) assert.throws(() => parseDuration(bad), bad);
});
