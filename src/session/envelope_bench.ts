/** Benchmarks of inbound frame parsing: `deno bench src/session/envelope_bench.ts`.
 * A frame of one envelope, of 100, and hostile 64 KiB frames of 32 768 invalid lines, parsed
 * without limits (`parseFrame`) and as the gateway does (`parseFrameLimited` with a full bucket of
 * 400 tokens): the hostile frame then costs what 400 lines cost, not 32 768.
 * @module */

import { parseFrame, parseFrameLimited } from "../protocol/envelope.ts";
import { TokenBucket } from "./rate_limit.ts";

const ONE = JSON.stringify({
  op: "pub",
  target: "chat.room.1",
  data: { text: "hello" },
  inbox: "1",
});
const HUNDRED = Array.from({ length: 100 }, (_, i) => ONE.replace('"1"', `"${i}"`)).join("\n");
/** 32 768 lines that cannot start JSON: 64 KiB. */
const JUNK = Array(32768).fill("x").join("\n");
/** 32 768 lines that start like an object but are not JSON: 64 KiB. */
const BRACES = Array(32768).fill("{").join("\n");

function _limited(text: string): number {
  // As Session.receive does: a full bucket, one clock reading per frame.
  const now = performance.now();
  const bucket = new TokenBucket(200, 400, now);
  return parseFrameLimited(text, { maxLines: 400, take: () => bucket.take(now) }).results.length;
}

Deno.bench("parseFrame: 1 line", { group: "valid" }, () => {
  parseFrame(ONE);
});

Deno.bench("parseFrame: 100 lines", { group: "valid" }, () => {
  parseFrame(HUNDRED);
});

Deno.bench("parseFrameLimited: 100 lines", { group: "valid" }, () => {
  _limited(HUNDRED);
});

Deno.bench("parseFrame: 32768 invalid lines (x)", { group: "hostile" }, () => {
  parseFrame(JUNK);
});

Deno.bench("parseFrame: 32768 invalid lines ({)", { group: "hostile" }, () => {
  parseFrame(BRACES);
});

Deno.bench("parseFrameLimited: 32768 invalid lines (x), burst 400", { group: "hostile" }, () => {
  _limited(JUNK);
});

Deno.bench("parseFrameLimited: 32768 invalid lines ({), burst 400", { group: "hostile" }, () => {
  _limited(BRACES);
});
