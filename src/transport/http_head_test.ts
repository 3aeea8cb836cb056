import assert from "node:assert/strict";
import { findHeadEnd, HeadError, parseHead } from "./http_head.ts";

const b = (s: string) => new TextEncoder().encode(s);

Deno.test("http_head: a request line and headers, values trimmed, order kept", () => {
  const h = parseHead(b("GET /ws?x=1 HTTP/1.1\r\nHost: a:1\r\nX-A:  v 1 \t\r\nx-a: 2\r\n\r\n"));
  assert.equal(h.method, "GET");
  assert.equal(h.target, "/ws?x=1");
  assert.equal(h.version, "HTTP/1.1");
  assert.deepEqual(h.headers, [["Host", "a:1"], ["X-A", "v 1"], ["x-a", "2"]]);
});

Deno.test("http_head: malformed heads are 400, other versions 505", () => {
  const bad = [
    "GET /\r\n\r\n",
    "GET  / HTTP/1.1\r\n\r\n",
    "G(T / HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\r\nHost a\r\n\r\n",
    "GET / HTTP/1.1\r\n: a\r\n\r\n",
    "GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
    "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
    "GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n",
    "GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n",
    "GET /a b HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\r\n",
    "GET / HTTPS/1.1\r\n\r\n",
  ];
  for (const s of bad) {
    assert.throws(() => parseHead(b(s)), (e) => e instanceof HeadError && e.status === 400, s);
  }
  assert.throws(
    () => parseHead(b("GET / HTTP/2.0\r\n\r\n")),
    (e) => (e as HeadError).status === 505,
  );
  assert.equal(parseHead(b("GET / HTTP/1.0\r\n\r\n")).version, "HTTP/1.0");
});

Deno.test("http_head: findHeadEnd scans from an offset and spans chunk borders", () => {
  const s = b("GET / HTTP/1.1\r\nA: b\r\n\r\nBODY");
  assert.equal(findHeadEnd(s, 0, s.length), s.length - 4);
  assert.equal(findHeadEnd(s, 0, s.length - 5), -1);
  assert.equal(findHeadEnd(s, s.length - 10, s.length), s.length - 4);
});
