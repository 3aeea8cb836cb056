import assert from "node:assert/strict";
import { addressKey, clientIp, inCidrs, parseCidr, parseIp } from "./client_ip.ts";

Deno.test("parseIp: table", () => {
  const cases: Array<[string, number[] | undefined]> = [
    ["127.0.0.1", [127, 0, 0, 1]],
    ["255.255.255.255", [255, 255, 255, 255]],
    ["256.0.0.1", undefined],
    ["1.2.3", undefined],
    ["1.2.3.4.5", undefined],
    ["01.2.3.x", undefined],
    ["::1", [...Array(15).fill(0), 1]],
    ["::", Array(16).fill(0)],
    ["fe80::1:2", [0xfe, 0x80, ...Array(10).fill(0), 0, 1, 0, 2]],
    ["::ffff:10.0.0.1", [...Array(10).fill(0), 255, 255, 10, 0, 0, 1]],
    ["1:2:3:4:5:6:7:8", [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]],
    ["1:2:3:4:5:6:7:8:9", undefined],
    ["1::2::3", undefined],
    ["12345::", undefined],
    ["", undefined],
  ];
  for (const [text, want] of cases) {
    const got = parseIp(text);
    assert.deepEqual(got ? [...got] : undefined, want, text);
  }
});

Deno.test("parseCidr: refuses bad blocks with a clear error", () => {
  for (const bad of ["10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/x", "nope/8", "::1/129", "1.2.3.4/"]) {
    assert.throws(() => parseCidr(bad), /invalid CIDR/, bad);
  }
  assert.equal(parseCidr("10.0.0.0/8").prefix, 8);
  assert.equal(parseCidr("::1").prefix, 128, "a bare address is a host block");
});

Deno.test("inCidrs: table", () => {
  const blocks = ["127.0.0.0/8", "10.1.0.0/16", "fd00::/8", "192.0.2.7"].map(parseCidr);
  const cases: Array<[string, boolean]> = [
    ["127.0.0.1", true],
    ["127.255.1.1", true],
    ["128.0.0.1", false],
    ["10.1.200.3", true],
    ["10.2.0.1", false],
    ["192.0.2.7", true],
    ["192.0.2.8", false],
    ["fd12::1", true],
    ["fe00::1", false],
    ["::ffff:127.0.0.1", true],
    ["garbage", false],
  ];
  for (const [ip, want] of cases) assert.equal(inCidrs(ip, blocks), want, ip);
  assert.equal(inCidrs("127.0.0.1", []), false, "no trusted blocks");
  assert.equal(inCidrs("1.2.3.4", [parseCidr("0.0.0.0/0")]), true, "/0 holds every v4 address");
});

Deno.test("clientIp: only trusted peers may name the client, right-most untrusted wins", () => {
  const trusted = [parseCidr("127.0.0.0/8"), parseCidr("10.0.0.0/8")];
  const h = (init: Record<string, string>) => new Headers(init);
  const cases: Array<[string, string, Record<string, string>, string]> = [
    [
      "untrusted peer: headers ignored",
      "198.51.100.1",
      { "x-forwarded-for": "1.1.1.1" },
      "198.51.100.1",
    ],
    ["trusted peer, no header", "127.0.0.1", {}, "127.0.0.1"],
    ["trusted peer, one hop", "127.0.0.1", { "x-forwarded-for": "203.0.113.9" }, "203.0.113.9"],
    ["client-supplied prefix is skipped", "127.0.0.1", {
      "x-forwarded-for": "6.6.6.6, 203.0.113.9",
    }, "203.0.113.9"],
    ["trusted hops in the chain are skipped", "127.0.0.1", {
      "x-forwarded-for": "203.0.113.9, 10.0.0.5",
    }, "203.0.113.9"],
    [
      "garbage stops the walk",
      "127.0.0.1",
      { "x-forwarded-for": "203.0.113.9, junk" },
      "127.0.0.1",
    ],
    ["garbage left of the client is ignored", "127.0.0.1", {
      "x-forwarded-for": "junk, 203.0.113.9",
    }, "203.0.113.9"],
    ["port on an IPv4 hop", "127.0.0.1", { "x-forwarded-for": "203.0.113.9:4711" }, "203.0.113.9"],
    ["IPv6 in brackets", "127.0.0.1", { "x-forwarded-for": "[2001:db8::1]:80" }, "2001:db8::1"],
    ["a client's own Forwarded is ignored", "127.0.0.1", {
      forwarded: 'for="[2001:db8::2]";proto=https',
      "x-forwarded-for": "1.1.1.1",
    }, "1.1.1.1"],
    [
      "all hops trusted: left-most",
      "127.0.0.1",
      { "x-forwarded-for": "10.0.0.9, 10.0.0.5" },
      "10.0.0.9",
    ],
  ];
  for (const [name, peer, headers, want] of cases) {
    assert.equal(clientIp(peer, h(headers), trusted), want, name);
  }
});

Deno.test("clientIp: with the Forwarded header configured, only it is read", () => {
  const trusted = [parseCidr("127.0.0.0/8")];
  const h = (init: Record<string, string>) => new Headers(init);
  const cases: Array<[string, Record<string, string>, string]> = [
    ["one hop, quoted IPv6", { forwarded: 'for="[2001:db8::2]";proto=https' }, "2001:db8::2"],
    ["two hops", { forwarded: "for=6.6.6.6, for=203.0.113.10" }, "203.0.113.10"],
    ["XFF is ignored", { "x-forwarded-for": "1.1.1.1" }, "127.0.0.1"],
    ["for=unknown stops the walk", { forwarded: "for=203.0.113.1, for=unknown" }, "127.0.0.1"],
  ];
  for (const [name, headers, want] of cases) {
    assert.equal(clientIp("127.0.0.1", h(headers), trusted, "forwarded"), want, name);
  }
});

Deno.test("addressKey: IPv6 by /64, IPv4 as is", () => {
  assert.equal(addressKey("203.0.113.9"), "203.0.113.9");
  assert.equal(addressKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  assert.equal(addressKey("2001:db8:1:2::ffff"), "2001:db8:1:2::/64", "same /64, same key");
  assert.notEqual(addressKey("2001:db8:1:3::1"), addressKey("2001:db8:1:2::1"));
  assert.equal(addressKey("::ffff:192.0.2.1"), "192.0.2.1");
  assert.equal(addressKey("::1"), "0:0:0:0::/64");
});
