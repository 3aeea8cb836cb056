/** Tests of the inbound token bucket: burst, refill, and sustained abuse detection.
 * Uses an explicit clock, so the results do not depend on timing.
 * @module */

import assert from "node:assert/strict";
import { TokenBucket } from "./rate_limit.ts";
import {
  type ClientEnvelope,
  type EnvelopeFailure,
  isFailure,
  MAX_LIMITED_PER_FRAME,
  parseFrame,
  parseFrameLimited,
  RATE_LIMITED,
} from "../protocol/envelope.ts";

Deno.test("TokenBucket: burst then limited, refills at the rate", () => {
  const b = new TokenBucket(10, 5, 0);
  for (let i = 0; i < 5; i++) assert.equal(b.take(0), "ok", `burst ${i}`);
  assert.equal(b.take(0), "limited");
  assert.equal(b.take(100), "ok", "one token after 100 ms at 10/s");
  assert.equal(b.take(100), "limited");
  assert.equal(b.take(10_000), "ok", "refilled");
});

Deno.test("TokenBucket: sustained when over the rate for sustainMs; a pause ends the streak", () => {
  const b = new TokenBucket(1, 1, 0, 1000);
  assert.equal(b.take(0), "ok");
  assert.equal(b.take(10), "limited", "streak starts");
  assert.equal(b.take(500), "limited");
  assert.equal(b.take(1011), "ok", "a token came back, the streak goes on");
  assert.equal(b.take(1012), "sustained", "still over the rate a second into the streak");

  const c = new TokenBucket(1, 1, 0, 1000);
  assert.equal(c.take(0), "ok");
  assert.equal(c.take(1), "limited");
  assert.equal(c.take(3000), "ok", "a pause");
  assert.equal(c.take(3001), "limited", "new streak after a quiet second");
  assert.equal(c.take(3500), "limited");
  assert.equal(c.take(4002), "ok");
  assert.equal(c.take(4003), "sustained");
});

Deno.test("TokenBucket: strike counts as a limited op without taking a token", () => {
  const b = new TokenBucket(1, 2, 0, 1000);
  assert.equal(b.strike(0), "limited", "a strike starts a streak");
  assert.equal(b.take(0), "ok", "tokens untouched");
  assert.equal(b.take(0), "ok");
  assert.equal(b.strike(600), "limited");
  assert.equal(b.strike(1000), "sustained", "strikes for sustainMs are sustained abuse");
  const c = new TokenBucket(1, 2, 0, 1000);
  assert.equal(c.strike(0), "limited");
  assert.equal(c.strike(1500), "limited", "a quiet second ends the streak");
  assert.equal(c.strike(2000), "limited", "a new streak since 1500");
  assert.equal(c.take(2499), "ok");
  assert.equal(c.take(2499), "ok");
  assert.equal(c.take(2500), "sustained", "strikes and limited takes share one streak");
});

Deno.test("parseFrameLimited: with a real bucket a junk frame parses only the burst", () => {
  const bucket = new TokenBucket(200, 400, 0);
  const frame = Array(1000).fill("x").join("\n");
  const got = parseFrameLimited(frame, { maxLines: 1000, take: () => bucket.take(0) });
  const limited = (r: ClientEnvelope | EnvelopeFailure) => isFailure(r) && r.error === RATE_LIMITED;
  assert.equal(got.results.filter((r) => !limited(r)).length, 400, "the burst is parsed");
  assert.equal(got.results.filter(limited).length, MAX_LIMITED_PER_FRAME, "then a few refusals");
  assert.equal(got.sustained, true, "then the flood ends the frame and the client");
  const again = parseFrameLimited(frame, { maxLines: 1000, take: () => bucket.take(1) });
  assert.equal(again.results.length, MAX_LIMITED_PER_FRAME);
  assert.ok(again.results.every(limited));
  assert.equal(
    parseFrame(Array(32768).fill("x").join("\n")).length,
    32768,
    "parseFrame: no limits",
  );
});
