import assert from "node:assert/strict";
import { IpGate } from "./ip_gate.ts";

Deno.test("IpGate: connections per address are counted and given back", () => {
  const g = new IpGate({ maxConnsPerIp: 2 });
  assert.equal(g.admit("a", 0), undefined);
  assert.equal(g.admit("a", 0), undefined);
  assert.equal(g.admit("a", 0), "conns_per_ip");
  assert.equal(g.admit("b", 0), undefined, "another address is not affected");
  g.release("a");
  assert.equal(g.admit("a", 1), undefined, "a released slot is free again");
  g.release("a");
  g.release("a");
  g.release("b");
  assert.equal(g.size, 0, "no state is kept for idle addresses");
  g.release("a");
  assert.equal(g.admit("a", 2), undefined, "an extra release never goes below zero");
  assert.equal(g.admit("a", 2), undefined);
  assert.equal(g.admit("a", 2), "conns_per_ip");
});

Deno.test("IpGate: upgrade rate per address with a burst of twice the rate", () => {
  const g = new IpGate({ upgradeRatePerIp: 2 });
  const verdicts = [];
  for (let i = 0; i < 6; i++) {
    verdicts.push(g.admit("a", 0));
    g.release("a", 0);
  }
  assert.deepEqual(verdicts, [
    undefined,
    undefined,
    undefined,
    undefined,
    "upgrade_rate",
    "upgrade_rate",
  ]);
  assert.equal(g.admit("a", 500), undefined, "one token back after half a second at 2/s");
  assert.equal(g.admit("a", 500), "upgrade_rate");
  assert.equal(g.admit("b", 500), undefined, "per address");
});

Deno.test("IpGate: the abuse penalty doubles while abuse repeats, and lapses", () => {
  const g = new IpGate({ penaltyBaseMs: 1000, penaltyMaxMs: 4000 });
  assert.equal(g.penalize("a", 0), 1000);
  assert.equal(g.admit("a", 999), "penalty");
  assert.equal(g.admit("a", 1000), undefined, "back after the penalty");
  g.release("a", 1000);
  assert.equal(g.penalize("a", 1500), 2000, "abuse again soon: twice as long");
  assert.equal(g.penalize("a", 3600), 4000);
  assert.equal(g.penalize("a", 7700), 4000, "capped");
  assert.equal(g.admit("b", 0), undefined, "other addresses unaffected");
  g.release("b", 0);
  // 7700 + 4000 = 11700 banned until; lapsed after 2 × 4000 more.
  assert.equal(g.penalize("a", 11_700 + 8001), 1000, "a long-lapsed penalty starts over");
  g.sweep(1e9);
  assert.equal(g.size, 0, "sweep forgets lapsed penalties");
});
